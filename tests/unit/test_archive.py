"""Deterministic bundle archives (core.archive.writer.write_archive) and the fail-closed reader (SafeArchiveReader).

The writer's output is checked against the real tools a receiver has (GNU tar, zstd, gzip) and Python's tarfile;
the reader is fed hostile archives built here: unsafe names, links, devices, duplicates, truncations at several
cut points, a missing end marker, decompression bombs and too many entries.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tracemalloc
from pathlib import Path
from typing import IO, cast

import pytest
import zstandard

from core.archive.canonical import zstd_compressor
from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.archive.writer import ArchiveEntry, write_archive
from core.errors import BadInputError, Cancelled, EnvironmentFailure, ExitCode, IntegrityError
from core.progress import CancelToken, Check
from tests.conftest import ROOT, require_tool

MTIME = 1_700_000_000  # 2023-11-14T22:13:20Z
LONG_NAME = "data/raw/" + "osv-" * 30 + "GHSA-xxxx-yyyy-zzzz.json"  # over ustar's 100-byte name field
UNICODE_NAME = "data/raw/advisory-ü-é.json"


def _payload(tmp_path: Path) -> Path:
    # Compressible but not trivial, so compressed archives are long enough to cut in many places.
    lines = b"".join(b'{"id":"CVE-2024-%05d","score":%d.%d}\n' % (i, i % 10, i % 7) for i in range(12_000))
    path = tmp_path / "src" / "advisories.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lines)
    return path


def _entries(tmp_path: Path) -> list[ArchiveEntry]:
    """A bundle-shaped entry list, deliberately not in name order (the writer must keep the given order)."""
    return [
        ArchiveEntry("export.json", b'{"schema":"stella.export/v1"}'),
        ArchiveEntry("export.json.sig", b"MEUCIQ...==\n"),
        ArchiveEntry("checksums.txt", b"0" * 64 + b"  export.json\n"),
        ArchiveEntry("README.txt", b"Run ./verify.sh\n"),
        ArchiveEntry("verify.sh", b"#!/bin/sh\nexec sha256sum -c checksums.txt\n", 0o755),
        ArchiveEntry("data/advisories.jsonl", _payload(tmp_path)),
        ArchiveEntry("data/empty.json", b""),
        ArchiveEntry(LONG_NAME, b'{"long":true}'),
        ArchiveEntry(UNICODE_NAME, b'{"unicode":true}'),
    ]


def _expected(entries: list[ArchiveEntry]) -> list[tuple[str, bytes]]:
    return [(e.path, e.source if isinstance(e.source, bytes) else e.source.read_bytes()) for e in entries]


def _read_all(path: Path, limits: ReaderLimits | None = None, *, read_data: bool = True) -> list[tuple[str, bytes]]:
    """Iterate like the verifier does: member by member, data in chunks."""
    out = []
    with SafeArchiveReader(path, limits) as reader:
        for member in reader:
            data = b""
            if read_data:
                with member.stream() as src:
                    data = b"".join(iter(lambda: src.read(4096), b""))
            out.append((member.name, data))
    return out


class RecordingSink:
    def __init__(self, cancel_after: int | None = None, token: CancelToken | None = None) -> None:
        self.started: list[tuple[str, int | None]] = []
        self.advanced = 0
        self.finished: list[str] = []
        self._cancel_after = cancel_after
        self._token = token

    def start(self, phase: str, total: int | None = None) -> None:
        self.started.append((phase, total))

    def advance(self, units: int = 1, *, detail: str | None = None) -> None:
        self.advanced += units
        if self._cancel_after is not None and self.advanced >= self._cancel_after and self._token is not None:
            self._token.cancel()

    def finish(self, phase: str) -> None:
        self.finished.append(phase)

    def check(self, check: Check) -> None:
        return None

    def is_cancelled(self) -> bool:
        return False


# ---------------------------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_same_entries_give_byte_identical_archives(tmp_path: Path, compression: str) -> None:
    entries = _entries(tmp_path)
    first, second = tmp_path / "one.tar", tmp_path / "two.tar"
    digest, size = write_archive(first, entries, mtime=MTIME, compression=compression)  # type: ignore[arg-type]
    write_archive(second, entries, mtime=MTIME, compression=compression)  # type: ignore[arg-type]

    data = first.read_bytes()
    assert data == second.read_bytes()
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert _read_all(first) == _expected(entries)


_WRITER_SCRIPT = """
import os, sys
from pathlib import Path
sys.path.insert(0, {root!r})
os.umask(0o077)
from core.archive.writer import ArchiveEntry, write_archive
src = Path({src!r})
entries = [
    ArchiveEntry("export.json", b'{{"a":1}}'),
    ArchiveEntry("verify.sh", b"#!/bin/sh\\n", 0o755),
    ArchiveEntry("data/advisories.jsonl", src),
    ArchiveEntry({long!r}, b"x"),
    ArchiveEntry({uni!r}, b"y"),
]
for comp in ("zstd", "gzip"):
    write_archive(Path({out!r}) / ("sub." + comp), entries, mtime={mtime}, compression=comp)
"""


def test_bytes_do_not_depend_on_time_zone_locale_or_umask(tmp_path: Path) -> None:
    src = _payload(tmp_path)
    entries = [
        ArchiveEntry("export.json", b'{"a":1}'),
        ArchiveEntry("verify.sh", b"#!/bin/sh\n", 0o755),
        ArchiveEntry("data/advisories.jsonl", src),
        ArchiveEntry(LONG_NAME, b"x"),
        ArchiveEntry(UNICODE_NAME, b"y"),
    ]
    script = _WRITER_SCRIPT.format(
        root=str(ROOT), src=str(src), long=LONG_NAME, uni=UNICODE_NAME, out=str(tmp_path), mtime=MTIME
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TZ": "Pacific/Chatham",
        "LC_ALL": "tr_TR.UTF-8",
        "LANG": "ja_JP.eucJP",
        "PYTHONIOENCODING": "latin-1",
    }
    subprocess.run([sys.executable, "-c", script], env=env, check=True, cwd=tmp_path / "src")
    for comp in ("zstd", "gzip"):
        here = tmp_path / f"here.{comp}"
        write_archive(here, entries, mtime=MTIME, compression=comp)
        assert (tmp_path / f"sub.{comp}").read_bytes() == here.read_bytes(), comp


@pytest.mark.interop
@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_gnu_tar_lists_entries_in_given_order_with_fixed_metadata(tmp_path: Path, compression: str) -> None:
    tar = require_tool("tar")
    if compression == "zstd":
        require_tool("zstd")
    entries = [e for e in _entries(tmp_path) if e.path != UNICODE_NAME]
    out = tmp_path / "bundle.tar"
    write_archive(out, entries, mtime=MTIME, compression=compression)  # type: ignore[arg-type]

    env = {**os.environ, "TZ": "UTC", "LC_ALL": "C"}
    listing = subprocess.run(
        [tar, "-tvf", str(out), "--numeric-owner", "--full-time"], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    rows = [line.split(None, 5) for line in listing]
    assert [r[5] for r in rows] == [e.path for e in entries]
    assert {r[1] for r in rows} == {"0/0"}
    assert {(r[3], r[4]) for r in rows} == {("2023-11-14", "22:13:20")}
    modes = {r[5]: r[0] for r in rows}
    assert modes["verify.sh"] == "-rwxr-xr-x"
    assert {m for p, m in modes.items() if p != "verify.sh"} == {"-rw-r--r--"}

    # And GNU tar extracts the same bytes.
    dest = tmp_path / "x"
    dest.mkdir()
    subprocess.run([tar, "-xf", str(out), "-C", str(dest)], env=env, check=True)
    for name, data in _expected(entries):
        assert (dest / name).read_bytes() == data, name


@pytest.mark.interop
def test_zstd_and_gzip_tools_accept_the_output(tmp_path: Path) -> None:
    zstd_tool = require_tool("zstd")
    gzip_tool = require_tool("gzip")
    entries = _entries(tmp_path)
    zst, tgz = tmp_path / "b.tar.zst", tmp_path / "b.tgz"
    write_archive(zst, entries, mtime=MTIME, compression="zstd")
    write_archive(tgz, entries, mtime=MTIME, compression="gzip")
    subprocess.run([zstd_tool, "-q", "-t", str(zst)], check=True)
    subprocess.run([gzip_tool, "-t", str(tgz)], check=True)
    info = subprocess.run([zstd_tool, "-lv", str(zst)], capture_output=True, text=True, check=True).stdout
    assert "XXH64" in info  # the frame checksum is on


def test_zstd_frame_has_checksum_and_no_content_size(tmp_path: Path) -> None:
    out = tmp_path / "b.tar.zst"
    write_archive(out, _entries(tmp_path), mtime=MTIME, compression="zstd")
    params = zstandard.get_frame_parameters(out.read_bytes()[:18])
    assert params.has_checksum
    assert params.content_size == zstandard.CONTENTSIZE_UNKNOWN


def test_gzip_header_has_mtime_zero_and_no_file_name(tmp_path: Path) -> None:
    out = tmp_path / "secret-host-name.tgz"
    write_archive(out, _entries(tmp_path), mtime=MTIME, compression="gzip", level=9)
    head = out.read_bytes()[:10]
    assert head[:3] == b"\x1f\x8b\x08"
    assert head[3] & 0x08 == 0, "FNAME flag set: the temporary file's name leaked into the header"
    assert head[4:8] == b"\0\0\0\0"
    assert b"secret-host-name" not in out.read_bytes()


def test_python_tarfile_reads_back_with_no_varying_pax_records(tmp_path: Path) -> None:
    entries = _entries(tmp_path)
    out = tmp_path / "b.tar"
    write_archive(out, entries, mtime=MTIME, compression="none")
    with tarfile.open(out) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [e.path for e in entries]
        for member, (_, data) in zip(members, _expected(entries), strict=True):
            assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
            assert member.mtime == MTIME
            assert member.isreg()
            extracted = tar.extractfile(member)
            assert extracted is not None and extracted.read() == data
            # Only names that ustar cannot hold get a pax header, and it carries the path and nothing else.
            assert set(member.pax_headers) <= {"path"}, member.pax_headers
        by_name = {m.name: m for m in members}
        assert by_name[LONG_NAME].pax_headers == {"path": LONG_NAME}
        assert by_name["export.json"].pax_headers == {}
    assert b"mtime=" not in out.read_bytes() and b"atime=" not in out.read_bytes()


@pytest.mark.parametrize(
    "bad",
    ["../escape.json", "/etc/passwd", "data/../../x", "data\\x.json", "a//b", "./export.json", "dir/", "", "a\nb"],
)
def test_writer_refuses_unsafe_paths_and_leaves_nothing(tmp_path: Path, bad: str) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(IntegrityError) as exc:
        write_archive(out_dir / "b.tar.zst", [ArchiveEntry("export.json", b"{}"), ArchiveEntry(bad, b"x")], mtime=MTIME)
    assert exc.value.exit_code == ExitCode.INTEGRITY
    assert "b.tar.zst was not written" in exc.value.message
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("names", "problem"),
    [(["export.json", "data/a", "export.json"], "duplicate"), (["data", "data/a"], "both a file and a directory")],
)
def test_writer_refuses_duplicates_and_file_directory_clashes(tmp_path: Path, names: list[str], problem: str) -> None:
    with pytest.raises(IntegrityError, match=problem) as exc:
        write_archive(tmp_path / "b.tar", [ArchiveEntry(n, b"x") for n in names], mtime=MTIME, compression="none")
    assert exc.value.path in names
    assert not (tmp_path / "b.tar").exists()


def test_cancel_removes_the_partial_file_and_keeps_an_existing_archive(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(8 << 20))
    out = tmp_path / "b.tar.zst"
    out.write_bytes(b"previous bundle")
    token = CancelToken()
    sink = RecordingSink(cancel_after=1, token=token)
    entries = [ArchiveEntry("export.json", b"{}"), ArchiveEntry("data/big.bin", big)]
    with pytest.raises(Cancelled) as exc:
        write_archive(out, entries, mtime=MTIME, level=3, sink=sink, cancel=token)
    assert exc.value.exit_code == ExitCode.CANCELLED
    assert out.read_bytes() == b"previous bundle"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.tar.zst", "big.bin"]


def test_unreadable_source_is_an_environment_failure_and_leaves_nothing(tmp_path: Path) -> None:
    gone = tmp_path / "gone.json"
    with pytest.raises(EnvironmentFailure) as exc:
        write_archive(tmp_path / "b.tar", [ArchiveEntry("gone.json", gone)], mtime=MTIME, compression="none")
    assert exc.value.exit_code == ExitCode.ENVIRONMENT
    assert exc.value.path == str(gone)
    assert list(tmp_path.iterdir()) == []


def test_progress_is_reported_in_bytes(tmp_path: Path) -> None:
    entries = _entries(tmp_path)
    total = sum(len(d) for _, d in _expected(entries))
    sink = RecordingSink()
    write_archive(tmp_path / "b.tar.zst", entries, mtime=MTIME, level=3, sink=sink)
    assert sink.started == [("archive", total)]
    assert sink.advanced == total
    assert sink.finished == ["archive"]


def test_file_sources_are_streamed_not_loaded(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        for _ in range(48):
            fh.write(os.urandom(1 << 20))
    tracemalloc.start()
    try:
        write_archive(tmp_path / "b.tar", [ArchiveEntry("big.bin", big)], mtime=MTIME, compression="none")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 << 20, f"peak {peak >> 20} MiB while archiving a 48 MiB file"


# ---------------------------------------------------------------------------------------------------------------
# Reader: hostile archives
# ---------------------------------------------------------------------------------------------------------------


def _info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", pax_path: str | None = None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mtime = MTIME
    if pax_path is not None:
        info.pax_headers = {"path": pax_path}
    return info


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            info.size = len(data) if data is not None else 0
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _compress(data: bytes, codec: str) -> bytes:
    """Compressed as the bundle writer compresses, so only the tar layer of a test archive is hostile."""
    if codec == "zstd":
        cobj = zstd_compressor(3).compressobj()
        return cobj.compress(data) + cobj.flush()
    if codec == "gzip":
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
            gz.write(data)
        return buf.getvalue()
    return data


HOSTILE = [
    ("dotdot", [(_info("../evil.sh"), b"rm -rf /")], "../evil.sh", "'..'"),
    ("nested-dotdot", [(_info("data/../../evil"), b"x")], "data/../../evil", "'..'"),
    ("absolute", [(_info("/etc/passwd"), b"root::0:0")], "/etc/passwd", "absolute"),
    ("backslash", [(_info("data\\..\\evil"), b"x")], "data\\..\\evil", "backslash"),
    ("nul", [(_info("x", pax_path="ok.json\x00../../evil"), b"x")], "ok.json\\x00../../evil", "NUL"),
    ("control", [(_info("a\nb.json"), b"x")], "a\\x0ab.json", "control character"),
    ("symlink", [(_info("export.json", tarfile.SYMTYPE, "/etc/passwd"), None)], "export.json", "symbolic link"),
    (
        "hardlink",
        [(_info("a.json"), b"{}"), (_info("b.json", tarfile.LNKTYPE, "/etc/shadow"), None)],
        "b.json",
        "hard link",
    ),
    ("char-device", [(_info("dev/null", tarfile.CHRTYPE), None)], "dev/null", "character device"),
    ("block-device", [(_info("dev/sda", tarfile.BLKTYPE), None)], "dev/sda", "block device"),
    ("fifo", [(_info("pipe", tarfile.FIFOTYPE), None)], "pipe", "fifo"),
    ("duplicate", [(_info("export.json"), b"{}"), (_info("export.json"), b'{"evil":1}')], "export.json", "duplicate"),
    ("file-then-dir", [(_info("data"), b"x"), (_info("data/a.json"), b"{}")], "data/a.json", "both a file"),
    ("dir-with-data", [(_info("data", tarfile.DIRTYPE), b"hidden bytes")], "data", "a directory entry"),
    ("directory", [(_info("data/", tarfile.DIRTYPE), None), (_info("data/a.json"), b"{}")], "data", "directory entry"),
]


@pytest.mark.parametrize("codec", ["zstd", "gzip", "none"])
@pytest.mark.parametrize(("case", "members", "entry", "problem"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_entries_are_integrity_errors_naming_the_entry(
    tmp_path: Path,
    codec: str,
    case: str,
    members: list[tuple[tarfile.TarInfo, bytes | None]],
    entry: str,
    problem: str,
) -> None:
    path = tmp_path / f"{case}.tar"
    path.write_bytes(_compress(_tar(members), codec))
    seen: list[str] = []
    with pytest.raises(IntegrityError) as exc, SafeArchiveReader(path) as reader:
        for member in reader:
            seen.append(member.name)
    assert exc.value.exit_code == ExitCode.INTEGRITY
    assert exc.value.path == entry
    assert entry in exc.value.diagnostics()
    assert problem in exc.value.message
    assert entry not in seen or case == "duplicate"  # the hostile entry itself is never handed out
    assert seen.count(entry) <= 1


def _realistic(tmp_path: Path, codec: str) -> tuple[Path, list[tuple[str, bytes]]]:
    entries = _entries(tmp_path)
    path = tmp_path / f"bundle.{codec}"
    write_archive(path, entries, mtime=MTIME, compression=codec, level=3)  # type: ignore[arg-type]
    return path, _expected(entries)


@pytest.mark.parametrize("read_data", [True, False], ids=["read", "skip"])
@pytest.mark.parametrize("codec", ["zstd", "gzip"])
@pytest.mark.parametrize("cut", [1, 6, 40, 0.25, 0.5, 0.75, -20, -4, -1])
def test_truncated_compressed_archives_fail_before_iteration_ends(
    tmp_path: Path, codec: str, cut: float, read_data: bool
) -> None:
    full, expected = _realistic(tmp_path, codec)
    data = full.read_bytes()
    at = int(len(data) * cut) if isinstance(cut, float) else (cut if cut > 0 else len(data) + cut)
    cut_path = tmp_path / "cut.tar"
    cut_path.write_bytes(data[:at])
    assert _read_all(full) == expected  # the uncut archive is fine
    completed = False
    with pytest.raises(BadInputError) as exc:
        _read_all(cut_path, read_data=read_data)
        completed = True
    assert not completed
    assert exc.value.exit_code == ExitCode.BAD_INPUT
    assert exc.value.path == str(cut_path)


def _end_of_data(tar_bytes: bytes) -> int:
    """Offset just past the last member's data, where the end-of-archive marker starts."""
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        last = tar.getmembers()[-1]
    return last.offset_data + -(-last.size // 512) * 512


@pytest.mark.parametrize("codec", ["zstd", "gzip", "none"])
@pytest.mark.parametrize("where", ["in-header", "in-data", "no-end-marker", "half-end-marker"])
def test_truncated_tar_streams_fail_even_when_compression_is_intact(tmp_path: Path, codec: str, where: str) -> None:
    plain, _ = _realistic(tmp_path, "none")
    tar_bytes = plain.read_bytes()
    end = _end_of_data(tar_bytes)
    at = {"in-header": 700, "in-data": end // 2, "no-end-marker": end, "half-end-marker": end + 512}[where]
    path = tmp_path / "cut.tar"
    path.write_bytes(_compress(tar_bytes[:at], codec))
    with pytest.raises(BadInputError) as exc:
        _read_all(path)
    assert exc.value.path == str(path)
    if where in ("no-end-marker", "half-end-marker"):
        assert "end-of-archive marker" in exc.value.message


def test_python_tarfile_would_accept_what_the_reader_refuses(tmp_path: Path) -> None:
    """Why the reader has its own parser: tarfile's stream mode ends quietly without an end marker."""
    plain, expected = _realistic(tmp_path, "none")
    tar_bytes = plain.read_bytes()[: _end_of_data(plain.read_bytes())]
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r|") as tar:
        assert [m.name for m in tar] == [n for n, _ in expected]
    path = tmp_path / "cut.tar"
    path.write_bytes(tar_bytes)
    with pytest.raises(BadInputError, match="end-of-archive marker"):
        _read_all(path)


def test_data_after_the_end_marker_is_refused(tmp_path: Path) -> None:
    plain, _ = _realistic(tmp_path, "none")
    smuggled = _tar([(_info("extra.json"), b'{"smuggled":true}')])
    path = tmp_path / "appended.tar"
    path.write_bytes(plain.read_bytes() + smuggled)
    with pytest.raises(IntegrityError, match="data after its end-of-archive") as exc:
        _read_all(path)
    assert exc.value.path == str(path)


@pytest.mark.parametrize("codec", ["zstd", "gzip"])
def test_garbage_after_the_compressed_stream_is_refused(tmp_path: Path, codec: str) -> None:
    full, _ = _realistic(tmp_path, codec)
    path = tmp_path / "garbage.tar"
    path.write_bytes(full.read_bytes() + b"not part of the archive")
    with pytest.raises(IntegrityError, match=f"data after the {codec} (frame|member)") as exc:
        _read_all(path)
    assert exc.value.path == str(path)


@pytest.mark.parametrize("codec", ["zstd", "gzip"])
def test_corrupted_compressed_bytes_are_refused(tmp_path: Path, codec: str) -> None:
    full, _ = _realistic(tmp_path, codec)
    data = bytearray(full.read_bytes())
    data[len(data) // 2] ^= 0x55
    path = tmp_path / "flipped.tar"
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="corrupt: it fails its own check") as exc:  # changed bytes: integrity
        _read_all(path)
    assert exc.value.path == str(path)


def test_corrupt_header_checksum_is_refused(tmp_path: Path) -> None:
    tar_bytes = bytearray(_tar([(_info("export.json"), b"{}")]))
    tar_bytes[0] = ord("E")  # name changed, checksum not
    path = tmp_path / "bad.tar"
    path.write_bytes(bytes(tar_bytes))
    with pytest.raises(BadInputError, match="checksum") as exc:
        _read_all(path)
    assert exc.value.path == str(path)


def test_something_that_is_not_an_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_bytes(b'{"not":"an archive"}' * 100)
    with pytest.raises(BadInputError, match="not a tar") as exc:
        SafeArchiveReader(path)
    assert exc.value.path == str(path)


def _bomb(path: Path, codec: str, size: int) -> None:
    """One member of ``size`` zero bytes, compressed without holding it in memory."""
    info = tarfile.TarInfo("data/zeros.bin")
    info.size = size
    header = info.tobuf(tarfile.PAX_FORMAT)
    with path.open("wb") as raw:
        sink: IO[bytes]
        if codec == "zstd":
            sink = zstd_compressor(1).stream_writer(raw, closefd=False)
        else:
            sink = cast(IO[bytes], gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0, compresslevel=9))
        with sink:
            sink.write(header)
            zeros = bytes(4 << 20)
            for _ in range(size // len(zeros)):
                sink.write(zeros)
            sink.write(bytes(1024))


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["zstd", "gzip"])
def test_a_decompression_bomb_is_refused_early(tmp_path: Path, codec: str) -> None:
    path = tmp_path / f"bomb.{codec}"
    size = 256 << 20
    _bomb(path, codec, size)
    assert path.stat().st_size * 200 < size  # it really is over the ratio
    read = 0
    with pytest.raises(BadInputError, match="max_ratio") as exc, SafeArchiveReader(path) as reader:
        for member in reader:
            with member.stream() as src:
                while chunk := src.read(1 << 20):
                    read += len(chunk)
    assert exc.value.path == str(path)
    assert read < 64 << 20, f"read {read >> 20} MiB of a {size >> 20} MiB bomb before refusing it"


def test_more_entries_than_max_entries_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "many.tar"
    path.write_bytes(_tar([(_info(f"f{i}.json"), b"{}") for i in range(6)]))
    seen: list[str] = []
    with (
        pytest.raises(BadInputError, match="max_entries") as exc,
        SafeArchiveReader(path, ReaderLimits(max_entries=5)) as r,
    ):
        seen.extend(m.name for m in r)
    assert exc.value.path == str(path)
    assert seen == [f"f{i}.json" for i in range(5)]
    assert len(_read_all(path, ReaderLimits(max_entries=6))) == 6


@pytest.mark.parametrize(
    ("limits", "limit_name"),
    [(ReaderLimits(max_entry_bytes=1000), "max_entry_bytes"), (ReaderLimits(max_total_bytes=3000), "max_total_bytes")],
)
def test_size_limits_name_the_limit(tmp_path: Path, limits: ReaderLimits, limit_name: str) -> None:
    path = tmp_path / "big.tar"
    path.write_bytes(_tar([(_info("a.json"), b"a" * 900), (_info("b.json"), b"b" * 2000)]))
    with pytest.raises(BadInputError, match=limit_name) as exc:
        _read_all(path, limits)
    assert exc.value.path == str(path)


def test_member_data_is_unavailable_once_the_reader_moves_on(tmp_path: Path) -> None:
    path = tmp_path / "b.tar"
    path.write_bytes(_tar([(_info("a.json"), b"{}"), (_info("b.json"), b"[]")]))
    with SafeArchiveReader(path) as reader:
        members = iter(reader)
        first = next(members)
        second = next(members)
        with pytest.raises(RuntimeError, match="moved past"):
            first.stream().read()
        assert second.stream().read() == b"[]"


@pytest.mark.interop
@pytest.mark.parametrize("fmt", ["gnu", "pax", "ustar"])
def test_reader_refuses_what_gnu_tar_writes(tmp_path: Path, fmt: str) -> None:
    """GNU tar's archives hold the same files but not the writer's canonical bytes (directory entries, owner
    names, modes, times): a bundle reader refuses them, naming what differs."""
    tar = require_tool("tar")
    require_tool("zstd")
    src = tmp_path / "src"
    deep = src / "data" / ("d" * 60) / ("e" * 60)  # a path over 100 bytes: longname / pax path / ustar prefix
    deep.mkdir(parents=True)
    (deep / "advisory.json").write_bytes(b'{"id":"CVE-2024-0001"}')
    (src / "export.json").write_bytes(b"{}")
    out = tmp_path / "gnu.tar.zst"
    subprocess.run(
        [tar, f"--format={fmt}", "--zstd", "-cf", str(out), "-C", str(src), "export.json", "data"],
        check=True,
        env={**os.environ, "LC_ALL": "C"},
    )
    with pytest.raises(IntegrityError) as exc:
        _read_all(out)
    assert exc.value.exit_code == ExitCode.INTEGRITY


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_a_reader_stops_at_its_next_read_once_cancelled(tmp_path: Path, compression: str) -> None:
    bundle = tmp_path / f"b.{compression}"
    write_archive(bundle, _entries(tmp_path), mtime=MTIME, compression=compression)  # type: ignore[arg-type]
    token = CancelToken()
    seen = []
    with SafeArchiveReader(bundle, cancel=token) as reader, pytest.raises(Cancelled) as stopped:
        for member in reader:
            seen.append(member.name)
            token.cancel()  # as a surface's thread would, while this one reads
            with member.stream() as data:
                data.read()
    assert seen == ["export.json"]
    assert stopped.value.exit_code is ExitCode.CANCELLED and stopped.value.path == str(bundle)
    # An uncancelled token changes nothing.
    with SafeArchiveReader(bundle, cancel=CancelToken()) as reader:
        assert [m.name for m in reader][:2] == ["export.json", "export.json.sig"]
