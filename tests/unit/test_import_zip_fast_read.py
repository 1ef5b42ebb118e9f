"""Zip members read straight from the archive give the bytes and the count ``zipfile`` gives, and anything unusual
is left to ``zipfile`` (so a damaged member is reported as before)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from core.inputs import _count_zip_members, _is_plain_zip, count_documents, iter_inputs
from tests.conftest import ROOT

SAMPLES = sorted(p for p in (ROOT / "samples").rglob("*.json") if p.stat().st_size < 200_000)


def _zip(path: Path, *, comment: bytes = b"") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("dir/", b"")
        for n, sample in enumerate(SAMPLES):
            method = zipfile.ZIP_STORED if n % 2 else zipfile.ZIP_DEFLATED
            zf.writestr(f"dir/{n}-{sample.name}", sample.read_bytes(), compress_type=method)
        zf.writestr("émigré/naïve.json", b'{"id": "x"}')  # a UTF-8 name
        zf.comment = comment
    return path


@pytest.mark.parametrize("comment", [b"", b"a comment"])
def test_members_and_count_are_zipfiles(tmp_path: Path, comment: bytes) -> None:
    archive = _zip(tmp_path / "a.zip", comment=comment)
    with zipfile.ZipFile(archive) as zf:
        expected = {f"{archive}!{i.filename}": zf.read(i) for i in zf.infolist() if not i.is_dir()}
    got = {item.path: item.data for item in iter_inputs([archive])}
    assert got == expected
    assert count_documents([archive]) == _count_zip_members(archive) == len(expected) == len(SAMPLES) + 1


def test_a_damaged_member_is_reported_by_zipfile_as_before(tmp_path: Path) -> None:
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("good.json", b'{"a": 1}', compress_type=zipfile.ZIP_STORED)
        zf.writestr("bad.json", b'{"b": 2}', compress_type=zipfile.ZIP_STORED)
    data = archive.read_bytes()
    archive.write_bytes(data.replace(b'{"b": 2}', b'{"b": 3}', 1))  # same size, wrong CRC-32
    items = {item.path.rsplit("!", 1)[1]: item for item in iter_inputs([archive])}
    assert items["good.json"].data == b'{"a": 1}'
    bad = items["bad.json"]
    assert bad.error is not None and bad.error.message == "damaged archive member: Bad CRC-32 for file 'bad.json'"


def test_an_archive_without_a_readable_directory_is_counted_by_zipfile(tmp_path: Path) -> None:
    archive = tmp_path / "cut.zip"
    archive.write_bytes(_zip(tmp_path / "a.zip").read_bytes()[:-10])  # the end record cut short
    assert _count_zip_members(archive) is None
    assert count_documents([archive]) == 1  # what zipfile makes of it: one unreadable archive, one rejection


def _items(archive: Path) -> dict[str, bytes | str]:
    return {it.path: it.data if it.error is None else it.error.message for it in iter_inputs([archive])}


def _by_zipfile(archive: Path) -> dict[str, bytes | str]:
    with zipfile.ZipFile(archive) as zf:
        return {f"{archive}!{i.filename}": zf.read(i) for i in zf.infolist() if not i.is_dir()}


def test_a_zip64_archive_streams_its_directory_and_reads_as_zipfile_does(tmp_path: Path) -> None:
    # More than 65,535 members: the end record is a zip64 one (as in the 200k benchmark corpus).
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for n in range(66_000):
            zf.writestr(f"m/{n}.json", b"{}")
    assert _is_plain_zip(archive)
    assert _items(archive) == _by_zipfile(archive)
    assert count_documents([archive]) == 66_000


def test_odd_archives_read_as_zipfile_reads_them(tmp_path: Path) -> None:
    zip64_member = tmp_path / "zip64-member.zip"
    with zipfile.ZipFile(zip64_member, "w") as zf, zf.open("a.json", "w", force_zip64=True) as fh:
        fh.write(b'{"a": 1}')
    odd_name = tmp_path / "odd-name.zip"
    with zipfile.ZipFile(odd_name, "w") as zf:
        zf.writestr(".hidden/a.json", b'{"a": 1}')
    # A zip64 extra in the local header only (zipfile writes the directory's entry plain): read past it.
    assert _is_plain_zip(zip64_member)
    assert not _is_plain_zip(odd_name)
    for archive in (zip64_member, odd_name):
        assert _items(archive) == _by_zipfile(archive)
