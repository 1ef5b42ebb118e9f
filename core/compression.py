"""Compressed streams the tool reads: magic numbers and a strict streaming zstd reader.

Both the import walker (``core.inputs``) and the bundle archive reader (``core.archive.reader``) detect gzip and
zstd by these magic bytes and read zstd through :class:`ZstdReader`, which refuses a truncated frame. The bundle
reader asks for exactly one zstd frame (``single_frame=True``) or one gzip member (:class:`GzipMemberReader`):
anything after it, a skippable frame included, raises :class:`TrailingData`.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import IO, Any

import zstandard

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


#: What a stream that fails its own checks raises while it is read: a zstd frame whose content checksum does not match
#: or whose blocks are corrupted, a gzip member whose deflate data is invalid or whose CRC-32 or size does not match.
#: Bytes changed after they were written: an integrity failure, where a stream that ends early (EOFError) is
#: truncated input.
CORRUPT = (zstandard.ZstdError, zlib.error)


class TrailingData(Exception):
    """Compressed bytes a strict reader does not accept although a decompressor would ignore them: anything after
    the one frame or member, or set padding bits; ``offset`` is where they are."""

    def __init__(self, what: str, offset: int) -> None:
        super().__init__(f"{what} at offset {offset}")
        self.what = what
        self.offset = offset


class ZstdReader(io.RawIOBase):
    """Streaming zstd decompression that raises on a truncated frame instead of ending quietly.

    With ``single_frame`` the stream must be exactly one frame: any byte after it (a second frame, a skippable
    frame, garbage) raises :class:`TrailingData` instead of being decompressed or skipped.
    """

    def __init__(self, raw: IO[bytes], *, single_frame: bool = False) -> None:
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._dobj = self._dctx.decompressobj()
        self._pending = b""
        self._offset = 0
        self._in_frame = False
        self._single = single_frame
        self._consumed = 0  # compressed bytes read so far
        self._ended = False  # the single frame has ended

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
            if self._ended:
                raise TrailingData("data after the zstd frame", self._consumed)
            self._consumed += len(chunk)
            self._pending, self._offset = b"", 0
            while chunk:
                self._in_frame = True
                self._pending += self._dobj.decompress(chunk)
                if self._dobj.eof:
                    chunk = self._dobj.unused_data
                    self._dobj = self._dctx.decompressobj()
                    self._in_frame = False
                    if self._single:
                        if chunk:
                            raise TrailingData("data after the zstd frame", self._consumed - len(chunk))
                        self._ended = True
                else:
                    chunk = b""
        n = min(len(buffer), len(self._pending) - self._offset)
        buffer[:n] = self._pending[self._offset : self._offset + n]
        self._offset += n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


class GzipMemberReader(io.RawIOBase):
    """Streaming decompression of exactly one gzip member whose header has no optional fields.

    Raises EOFError for a truncated member, ``zlib.error`` for a corrupt one or a trailer (CRC-32, size) that
    does not match, and :class:`TrailingData` for any byte after the member (a second member, zero padding,
    garbage), which ``gzip.GzipFile`` would accept, and for set bits in the padding after the deflate stream's
    last code, which every inflater ignores (zlib's deflate writes them as zeros).
    """

    HEADER = 10  # magic, method, flags (none), mtime, extra flags, OS
    TRAILER = 8  # CRC-32 and size mod 2**32, little-endian

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._dobj = zlib.decompressobj(-zlib.MAX_WBITS)
        self._pending = b""
        self._offset = 0
        self._consumed = 0
        self._crc = 0
        self._size = 0
        self._started = False
        self._done = False

    def readable(self) -> bool:
        return True

    def _read_raw(self, n: int) -> bytes:
        data = self._raw.read(n)
        self._consumed += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        if not self._started:
            header = b""
            while len(header) < self.HEADER and (more := self._read_raw(self.HEADER - len(header))):
                header += more
            if len(header) < self.HEADER:
                raise EOFError("gzip stream ends inside its header (truncated)")
            if header[:3] != b"\x1f\x8b\x08" or header[3]:
                raise zlib.error("not a gzip member without optional header fields")
            self._started = True
        while self._offset >= len(self._pending):
            dobj = self._dobj
            if dobj.eof:
                self._finish()
                return 0
            data = dobj.unconsumed_tail or self._read_raw(1 << 16)
            if not data:
                raise EOFError("gzip stream ends in the middle of its member (truncated)")
            saved = dobj.copy()
            # Bounded output per step: deflate expands up to ~1,000x, so one input chunk could mean gigabytes.
            out = dobj.decompress(data, 1 << 20)
            if self._dobj.eof:  # this step reached the end of the deflate stream
                self._check_final_padding(saved, data, out)
            self._crc = zlib.crc32(out, self._crc)
            self._size += len(out)
            self._pending, self._offset = out, 0
        n = min(len(buffer), len(self._pending) - self._offset)
        buffer[:n] = self._pending[self._offset : self._offset + n]
        self._offset += n
        return n

    def _check_final_padding(self, saved: Any, data: bytes, out: bytes) -> None:
        """The bits after the last deflate code fill its byte and are ignored: accept only zeros there."""
        last = len(data) - len(self._dobj.unused_data) - 1
        for used in range(8):
            trial = saved.copy()
            byte = data[last] & ((1 << used) - 1)
            if trial.decompress(data[:last] + bytes([byte])) == out and trial.eof:
                if byte != data[last]:
                    at = self._consumed - len(self._dobj.unused_data) - len(self._dobj.unconsumed_tail) - 1
                    raise TrailingData("set bits in the padding after the deflate stream's end", at)
                return

    def _finish(self) -> None:
        if self._done:
            return
        trailer = self._dobj.unused_data
        while len(trailer) < self.TRAILER and (more := self._read_raw(self.TRAILER - len(trailer))):
            trailer += more
        if len(trailer) < self.TRAILER:
            raise EOFError("gzip stream ends inside its trailer (truncated)")
        if trailer[:8] != struct.pack("<II", self._crc, self._size & 0xFFFFFFFF):
            raise zlib.error("the gzip trailer's CRC-32 or size does not match the data")
        end = self._consumed - (len(trailer) - self.TRAILER)
        if len(trailer) > self.TRAILER or self._raw.read(1):
            raise TrailingData("data after the gzip member", end)
        self._done = True

    def close(self) -> None:
        self._raw.close()
        super().close()


class PlaintextTooLarge(Exception):
    """A frame decompressed to more bytes than the signed manifest says its plaintext has."""


class ZstdFrameWriter:
    """Decompresses exactly one zstd frame written into it, passing the output on to ``dst``.

    The write side of :class:`ZstdReader` with ``single_frame``: an encrypted payload file is a zstd frame inside
    age (compressed, then encrypted), and the decrypter writes what it authenticated into this. Input is fed in
    4 KiB steps (zstd can expand ~32,000x), and more output than ``limit`` raises :class:`PlaintextTooLarge` at
    once. Raises ``zstandard.ZstdError`` for a corrupt frame or checksum, :class:`TrailingData` for any byte after
    the frame, and EOFError from :meth:`close` when the frame did not end.
    """

    STEP = 4096

    def __init__(self, dst: Any, *, limit: int | None = None) -> None:
        self._dst = dst
        self._dobj = zstandard.ZstdDecompressor().decompressobj()
        self._limit = limit
        self._consumed = 0
        self._ended = False
        self.size = 0

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        for start in range(0, len(view), self.STEP):
            piece = view[start : start + self.STEP]
            if self._ended:
                raise TrailingData("data after the zstd frame", self._consumed)
            out = self._dobj.decompress(piece)
            if self._dobj.eof:
                self._ended = True
                if self._dobj.unused_data:
                    raise TrailingData(
                        "data after the zstd frame", self._consumed + len(piece) - len(self._dobj.unused_data)
                    )
            self._consumed += len(piece)
            if out:
                self.size += len(out)
                if self._limit is not None and self.size > self._limit:
                    raise PlaintextTooLarge(f"the frame decompresses to more than {self._limit} bytes")
                self._dst.write(out)
        return len(data)

    def close(self) -> None:
        """Require the frame to have ended (a frame cut short is truncated input)."""
        if not self._ended:
            raise EOFError("zstd stream ends in the middle of a frame (truncated)")


#: How an encrypted payload file's plaintext is compressed inside age (``encryption.compression`` in the manifest);
#: absent: not compressed (bundles written before compression came first).
PAYLOAD_COMPRESSIONS = ("zstd",)
#: What a plaintext sink raises for a frame that does not give the signed plaintext's bytes.
BAD_FRAME = (*CORRUPT, EOFError, TrailingData, PlaintextTooLarge)


class _Plain:
    """The sink of an uncompressed plaintext (the earlier layout): bytes pass through unchanged."""

    def __init__(self, dst: Any) -> None:
        self._dst = dst

    def write(self, data: bytes) -> int:
        self._dst.write(data)
        return len(data)

    def close(self) -> None:
        pass


def plaintext_sink(dst: Any, compression: object, *, limit: int) -> ZstdFrameWriter | _Plain:
    """Where a decrypter writes an encrypted payload file's content so that ``dst`` gets the plaintext.

    ``compression`` is the manifest's ``encryption.compression``: ``None`` (absent) passes the bytes through,
    ``"zstd"`` decompresses exactly one frame of at most ``limit`` bytes of output (the signed plaintext size).
    Call ``close()`` at the end: a frame cut short raises there. Anything else raises ValueError before a byte
    is read: a layout this version does not know is refused, never guessed at.
    """
    if compression is None:
        return _Plain(dst)
    if compression == "zstd":
        return ZstdFrameWriter(dst, limit=limit)
    raise ValueError(f"unknown payload compression {compression!r}")
