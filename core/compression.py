"""Compressed streams the tool reads: magic numbers and a strict streaming zstd reader.

Both the import walker (``core.inputs``) and the bundle archive reader (``core.archive.reader``) detect gzip and
zstd by these magic bytes and read zstd through :class:`ZstdReader`, which refuses a truncated frame.
"""

from __future__ import annotations

import io
from typing import IO, Any

import zstandard

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ZstdReader(io.RawIOBase):
    """Streaming zstd decompression that raises on a truncated frame instead of ending quietly."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._dobj = self._dctx.decompressobj()
        self._pending = b""
        self._offset = 0
        self._in_frame = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._offset >= len(self._pending):
            # Small compressed steps: zstd can expand ~32,000x, so a 1 MiB step could mean gigabytes at once.
            chunk = self._raw.read(4096)
            if not chunk:
                if self._in_frame:
                    raise EOFError("zstd stream ends in the middle of a frame (truncated)")
                return 0
            self._pending, self._offset = b"", 0
            while chunk:
                self._in_frame = True
                self._pending += self._dobj.decompress(chunk)
                if self._dobj.eof:
                    chunk = self._dobj.unused_data
                    self._dobj = self._dctx.decompressobj()
                    self._in_frame = False
                else:
                    chunk = b""
        n = min(len(buffer), len(self._pending) - self._offset)
        buffer[:n] = self._pending[self._offset : self._offset + n]
        self._offset += n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()
