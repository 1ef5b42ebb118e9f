"""Helpers to take a bundle archive apart and put a tampered copy back together, in the same order."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import zstandard

from core.archive.canonical import zstd_compressor


def read_members(bundle: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with bundle.open("rb") as fh:
        raw = zstandard.ZstdDecompressor().stream_reader(fh).read()
    out = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        for info in tar:
            f = tar.extractfile(info)
            out.append((info, f.read() if f else b""))
    return out


def write_members(target: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if info.isfile():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    # Compressed as the bundle writer compresses (one frame, its settings), so only the tar layer is tampered with.
    cobj = zstd_compressor(3).compressobj()
    target.write_bytes(cobj.compress(buf.getvalue()) + cobj.flush())
    return target


def flip(data: bytes, at: int | None = None) -> bytes:
    pos = len(data) // 2 if at is None else at
    return data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :]


def extract(bundle: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    for info, data in read_members(bundle):
        target = into / info.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(info.mode)
    return into
