"""core.pgzip: one gzip member whatever the block count, the same bytes for any thread count or write sizes, read
back by Python's gzip and by the gzip CLI; below one block, the bytes gzip.GzipFile writes at the same level."""

from __future__ import annotations

import gzip
import io
import random
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.pgzip import BLOCK, ParallelGzipWriter


def _text(size: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    words = [b"advisory", b"GHSA-", b"sha256:", b"pkg:npm/", b'"version":', b"\n", b"{", b"}", b"0123456789abcdef"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + bytes(rng.randrange(256) for _ in range(rng.randrange(4)))
    return bytes(out[:size])


def _pgzip(data: bytes, *, threads: int = 2, step: int = 65536, level: int = 6) -> bytes:
    out = io.BytesIO()
    with ParallelGzipWriter(out, level=level, threads=threads) as writer:
        for i in range(0, len(data), step):
            writer.write(data[i : i + step])
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 12345])
def test_round_trip_across_block_boundaries(size: int) -> None:
    data = _text(size)
    packed = _pgzip(data)
    assert gzip.decompress(packed) == data
    assert packed == _pgzip(data, threads=1, step=7919)  # thread count and write sizes do not change a byte
    assert packed == _pgzip(data, threads=4, step=size or 1)


def test_the_gzip_cli_reads_it_as_one_member() -> None:
    gz = shutil.which("gzip")
    assert gz is not None
    data = _text(2 * BLOCK + 999)
    done = subprocess.run([gz, "-d", "-c"], input=_pgzip(data), capture_output=True, check=True)
    assert done.stdout == data
    listed = subprocess.run([gz, "-t"], input=_pgzip(data), capture_output=True)
    assert listed.returncode == 0, listed.stderr


def test_below_one_block_it_is_what_gzipfile_writes() -> None:
    data = _text(BLOCK // 3)
    ref = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=ref, compresslevel=6, mtime=0) as g:
        g.write(data)
    assert _pgzip(data) == ref.getvalue()


def test_size_stays_within_a_fraction_of_one_stream() -> None:
    data = _text(4 * BLOCK)
    assert len(_pgzip(data)) <= 1.01 * len(gzip.compress(data, compresslevel=6, mtime=0))


def test_a_failed_write_leaves_no_trailer_and_no_thread() -> None:
    out = io.BytesIO()
    with pytest.raises(RuntimeError), ParallelGzipWriter(out) as writer:
        writer.write(_text(BLOCK + 1))
        raise RuntimeError("disk full")
    with pytest.raises(ValueError):
        writer.write(b"x")


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=4096), st.integers(min_value=1, max_value=4096))
def test_any_bytes_round_trip(data: bytes, step: int) -> None:
    assert gzip.decompress(_pgzip(data, step=step)) == data
