"""Input walking: directories and archives, streamed, with hostile and damaged archives refused."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
import zstandard

from core.errors import BadInputError
from core.inputs import InputLimits, iter_inputs

DOCS = {"a/one.json": b'{"id": "1"}', "b/two.json": b'{"id": "2"}', "three.csv": b"cve,epss,percentile\n"}


def _tar_bytes(extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in DOCS.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)
    return buf.getvalue()


def _items(path: Path) -> dict[str, bytes]:
    return {it.path.split("!", 1)[-1]: it.data for it in iter_inputs([path]) if it.error is None}


def test_directory_is_walked_in_sorted_order(tmp_path: Path) -> None:
    for name, data in DOCS.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    paths = [it.path for it in iter_inputs([tmp_path])]
    assert paths == [str(tmp_path / "a/one.json"), str(tmp_path / "b/two.json"), str(tmp_path / "three.csv")]


def test_zip_members_are_yielded(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in DOCS.items():
            zf.writestr(name, data)
    assert _items(archive) == DOCS


@pytest.mark.parametrize("codec", ["gz", "zst", "plain"])
def test_tar_archives_are_streamed(tmp_path: Path, codec: str) -> None:
    raw = _tar_bytes()
    data = {
        "gz": lambda b: gzip.compress(b, mtime=0),
        "zst": zstandard.ZstdCompressor().compress,
        "plain": bytes,
    }[codec](raw)
    archive = tmp_path / f"docs.tar.{codec}"
    archive.write_bytes(data)
    assert _items(archive) == DOCS


@pytest.mark.parametrize("codec", ["gz", "zst"])
def test_truncated_tar_is_refused_before_any_member(tmp_path: Path, codec: str) -> None:
    raw = _tar_bytes()
    data = gzip.compress(raw, mtime=0) if codec == "gz" else zstandard.ZstdCompressor().compress(raw)
    archive = tmp_path / f"docs.tar.{codec}"
    archive.write_bytes(data[: len(data) * 2 // 3])
    gen = iter_inputs([archive])
    with pytest.raises(BadInputError) as err:
        next(gen)
    assert err.value.path == str(archive)
    assert "nothing from it was imported" in err.value.message or "truncated" in err.value.message


def test_truncated_zip_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in DOCS.items():
            zf.writestr(name, data)
    blob = archive.read_bytes()
    archive.write_bytes(blob[: len(blob) - 30])
    with pytest.raises(BadInputError) as err:
        list(iter_inputs([archive]))
    assert "truncated" in err.value.message


def test_link_and_device_members_are_rejected_not_followed(tmp_path: Path) -> None:
    link = tarfile.TarInfo("evil-link")
    link.type = tarfile.SYMTYPE
    link.linkname = "../../etc/passwd"
    dev = tarfile.TarInfo("dev")
    dev.type = tarfile.CHRTYPE
    archive = tmp_path / "x.tar"
    archive.write_bytes(_tar_bytes([link, dev]))
    items = list(iter_inputs([archive]))
    errors = {it.path.split("!")[1]: it.error for it in items if it.error}
    assert set(errors) == {"evil-link", "dev"}
    assert "a link" in errors["evil-link"].message  # type: ignore[union-attr]
    assert "not a regular file" in errors["dev"].message  # type: ignore[union-attr]


def test_symlink_in_directory_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "outside.json"
    target.write_bytes(b"{}")
    d = tmp_path / "in"
    d.mkdir()
    os.symlink(target, d / "link.json")
    items = list(iter_inputs([d]))
    assert len(items) == 1 and items[0].error is not None
    assert "symbolic link" in items[0].error.message


def test_zip_bomb_member_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("zeros.json", b"0" * (20 << 20))
    (item,) = list(iter_inputs([archive]))
    assert item.error is not None and "zip bomb" in item.error.message


def test_oversized_document_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2048)
    (item,) = list(iter_inputs([big], InputLimits(max_document_bytes=1024)))
    assert item.error is not None and "over the 1024-byte limit" in item.error.message


def test_single_gzip_document(tmp_path: Path) -> None:
    csv = b"#model_version:v2023.03.01,score_date:2025-02-20T00:00:00+0000\ncve,epss,percentile\n"
    path = tmp_path / "epss.csv.gz"
    path.write_bytes(gzip.compress(csv, mtime=0))
    (item,) = list(iter_inputs([path]))
    assert item.data == csv and item.error is None


def test_missing_path_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as err:
        list(iter_inputs([tmp_path / "nope"]))
    assert "no such file" in err.value.message
