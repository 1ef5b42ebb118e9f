"""The archive reader's fast path gives the reference bytes: the zstd frame decompressed in steps of whole blocks
(walked from their headers) equals what zstandard and tarfile read, each step stays about a MiB however high the
ratio, and the file's sha256 comes from the one pass that reads it (equal to hashlib's over the file)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from core.archive.reader import (
    ZSTD_BLOCK_MAX,
    ZSTD_STEP,
    ReaderLimits,
    SafeArchiveReader,
    _RawFile,
    _ZstdFrame,
)
from core.archive.writer import ArchiveEntry, write_archive
from core.errors import IntegrityError

MTIME = 1_700_000_000
RAW_BLOCK, RLE_BLOCK, COMPRESSED_BLOCK = 0, 1, 2


def _json_lines(n: int) -> bytes:
    return b"".join(b'{"id":"GHSA-%06d","score":%d.%d,"pkg":"p%d"}\n' % (i, i % 10, i % 7, i % 997) for i in range(n))


def _payloads() -> dict[str, bytes]:
    """Payloads that make the compressor emit each kind of block: raw (random), RLE (zeros), compressed (text)."""
    return {
        "data/random.bin": os.urandom(3 << 20),
        "data/zeros.bin": bytes(5 << 20),
        "data/advisories.jsonl": _json_lines(60_000),
        "data/small.json": b'{"small":true}',
        "data/empty.json": b"",
    }


def _block_kinds(frame: bytes) -> set[int]:
    """The block types in a zstd frame, walked independently of the reader (6-byte header, no dictionary)."""
    kinds, pos = set(), 6
    while True:
        header = int.from_bytes(frame[pos : pos + 3], "little")
        kind, size = (header >> 1) & 3, header >> 3
        kinds.add(kind)
        pos += 3 + (1 if kind == RLE_BLOCK else size)
        if header & 1:
            return kinds


def _reference(path: Path) -> list[tuple[str, bytes]]:
    """The members as zstandard (whole-stream) and Python's tarfile read them."""
    with path.open("rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as plain:
        tar_bytes = plain.read()
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]


def _read(path: Path) -> tuple[list[tuple[str, bytes]], str | None]:
    with SafeArchiveReader(path, ReaderLimits()) as reader:
        members = []
        for member in reader:
            with member.stream() as src:
                members.append((member.name, src.read()))
        return members, reader.file_sha256


@pytest.mark.parametrize("level", [1, 3, 9, 19])
def test_stepped_zstd_reading_gives_the_reference_bytes_and_the_files_sha256(tmp_path: Path, level: int) -> None:
    payloads = _payloads()
    path = tmp_path / f"b{level}.tar.zst"
    write_archive(path, [ArchiveEntry(n, d) for n, d in payloads.items()], mtime=MTIME, level=level)
    data = path.read_bytes()
    assert _block_kinds(data) == {RAW_BLOCK, RLE_BLOCK, COMPRESSED_BLOCK}  # every kind of block is walked
    members, sha = _read(path)
    assert members == _reference(path) == list(payloads.items())
    assert sha == hashlib.sha256(data).hexdigest()
    steps = _steps(path)
    with path.open("rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as plain:
        assert b"".join(steps) == plain.read()
    total = sum(map(len, steps))
    assert max(map(len, steps)) <= ZSTD_STEP + ZSTD_BLOCK_MAX
    assert len(steps) <= total // (ZSTD_STEP // 4) + 8  # steps near a MiB, not 4 KiB: the walk found the blocks


def _steps(path: Path) -> list[bytes]:
    """The decompressed steps of the reader's zstd frame, in order."""
    with path.open("rb") as fh:
        frame = _ZstdFrame(_RawFile(fh))
        steps = []
        while step := frame.read():
            steps.append(step)
    return steps


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_the_files_sha256_comes_from_the_one_pass_for_every_compression(tmp_path: Path, compression: str) -> None:
    path = tmp_path / f"b.{compression}"
    entries = [ArchiveEntry("data/advisories.jsonl", _json_lines(20_000)), ArchiveEntry("data/x.json", b"{}")]
    write_archive(path, entries, mtime=MTIME, compression=compression)  # type: ignore[arg-type]
    members, sha = _read(path)
    assert [name for name, _ in members] == ["data/advisories.jsonl", "data/x.json"]
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_files_sha256_is_known_only_once_the_archive_was_read_to_its_end(tmp_path: Path) -> None:
    path = tmp_path / "b.tar.zst"
    write_archive(path, [ArchiveEntry(f"data/{i}.json", _json_lines(2_000)) for i in range(3)], mtime=MTIME)
    with SafeArchiveReader(path) as reader:
        assert reader.file_sha256 is None
        members = iter(reader)
        next(members)
        assert reader.file_sha256 is None  # part of the file is unread: no digest yet
        for _ in members:
            pass
        assert reader.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    garbage = tmp_path / "garbage.tar.zst"
    garbage.write_bytes(path.read_bytes() + b"appended")
    with SafeArchiveReader(garbage) as reader, pytest.raises(IntegrityError, match="after the zstd frame"):
        try:
            for _ in reader:
                pass
        finally:
            assert reader.file_sha256 is None  # a refused archive has no digest


def test_each_step_of_a_bomb_decompresses_to_about_a_mebibyte(tmp_path: Path) -> None:
    """Zeros compress about 30,000 to 1 (RLE blocks): the walk still feeds the decompressor a MiB of output a step."""
    path = tmp_path / "zeros.zst"
    size = 40 << 20
    with path.open("wb") as fh, zstandard.ZstdCompressor(level=3, write_checksum=True).stream_writer(fh) as sink:
        for _ in range(size >> 20):
            sink.write(bytes(1 << 20))
    assert path.stat().st_size * 1000 < size
    steps = [len(step) for step in _steps(path)]
    assert sum(steps) == size
    assert max(steps) <= ZSTD_STEP + ZSTD_BLOCK_MAX
    assert len(steps) >= size // (ZSTD_STEP + ZSTD_BLOCK_MAX)


def test_a_block_type_the_walk_does_not_know_is_refused_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "b.tar.zst"
    write_archive(path, [ArchiveEntry("data/advisories.jsonl", _json_lines(20_000))], mtime=MTIME)
    data = bytearray(path.read_bytes())
    data[6] |= 0b110  # the first block's type becomes 3, reserved
    bad = tmp_path / "reserved.tar.zst"
    bad.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="corrupt: it fails its own check") as exc:
        _read(bad)
    assert exc.value.path == str(bad)
