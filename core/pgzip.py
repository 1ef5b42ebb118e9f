"""A deterministic gzip stream compressed on several threads: one gzip member whose deflate data is made of
blocks of ``BLOCK`` input bytes, each compressed on its own (primed with the 32 KiB of input before it, so the ratio
stays close to one stream's) and ended with a sync flush, the last with the final block.

Any gzip reader reads it as one member (``gzip -d``, ``tar -xzf``, Python's :mod:`gzip`); the bytes depend only on
the input, the level and ``BLOCK``, never on the number of threads or their timing. zlib releases the GIL while it
compresses, so two cores compress about twice as fast as :class:`gzip.GzipFile`.
"""

from __future__ import annotations

import struct
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

BLOCK = 1 << 20  # input bytes per independently compressed block (part of the format: fixed)
WINDOW = 32 * 1024  # deflate's window: how much of the previous block primes the next
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # gzip, deflate, no flags, mtime 0, no extra flags, OS unknown


def _deflate(data: bytes, primer: bytes, level: int, last: bool) -> bytes:
    args = (level, zlib.DEFLATED, -zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY)
    comp = zlib.compressobj(*args, zdict=primer) if primer else zlib.compressobj(*args)
    return comp.compress(data) + comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class ParallelGzipWriter:
    """Write a gzip member into ``out`` (a binary file), compressing ``BLOCK``-sized blocks on ``threads`` threads.

    Use as a context manager (or call :meth:`close`): the last block, the CRC-32 and the size are written on close;
    ``out`` itself is left open. A failure of the underlying write raises from the next :meth:`write` or from close.
    """

    def __init__(self, out: BinaryIO, *, level: int = 6, threads: int = 2) -> None:
        self._out = out
        self._level = level
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="pgzip")
        self._pending: deque[Future[bytes]] = deque()
        self._limit = 2 * max(1, threads)
        self._buf = bytearray()
        self._primer = b""
        self._crc = 0
        self._size = 0
        self._closed = False
        out.write(HEADER)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError("write to a closed ParallelGzipWriter")
        view = memoryview(data).cast("B")
        self._crc = zlib.crc32(view, self._crc)
        self._size += len(view)
        self._buf += view
        while len(self._buf) >= BLOCK:
            block = bytes(self._buf[:BLOCK])
            del self._buf[:BLOCK]
            self._submit(block, last=False)
        return len(view)

    def _submit(self, block: bytes, *, last: bool) -> None:
        self._pending.append(self._pool.submit(_deflate, block, self._primer, self._level, last))
        self._primer = block[-WINDOW:]
        while len(self._pending) >= self._limit:
            self._out.write(self._pending.popleft().result())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._submit(bytes(self._buf), last=True)
            self._buf = bytearray()
            while self._pending:
                self._out.write(self._pending.popleft().result())
            self._out.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))
        finally:
            for future in self._pending:
                future.cancel()
            self._pool.shutdown(wait=True)

    def __enter__(self) -> ParallelGzipWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:  # an error while writing: stop the threads, write no trailer
            self._closed = True
            for future in self._pending:
                future.cancel()
            self._pool.shutdown(wait=True)
