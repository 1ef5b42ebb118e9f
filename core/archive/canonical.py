"""The canonical bytes of a bundle archive, defined once: the writer emits them and the reader demands them.

A bundle archive is deterministic, so there is exactly one encoding of a given list of members, and the reader
(:mod:`core.archive.reader`) compares every header it meets with :func:`member_header` of the member it
describes instead of interpreting it. Anything no signature covers therefore has exactly one allowed value:

- each member is a POSIX pax-format ustar header (magic ``ustar\\x0000``) for a regular file: mode 0644 or 0755,
  uid/gid 0, empty user and group names, no link name, no device numbers, no prefix, mtime the run's
  ``createdAt``; the name in the ``name`` field (ASCII, up to 100 bytes);
- a pax extended header (``x``, named ``././@PaxHeader``, all numbers 0) comes first only when ustar cannot hold a
  value: ``path`` for a name over 100 bytes or not ASCII (the ustar name is then its first 100 bytes, non-ASCII
  characters as ``?``), ``size`` for a file of 8 GiB or more (the ustar size is then 0); never a time;
- member data is padded with zero bytes to a 512-byte block;
- the archive ends with two zero blocks and zeros up to a multiple of 10,240 bytes (a tar record), and nothing
  after;
- compressed, it is one zstd frame (content checksum on, no content size, no dictionary, the window of the zstd
  level used) or one gzip member (no name, comment, extra field or header CRC, mtime 0, OS 255) and nothing after.

These are the bytes Python's ``tarfile`` writes in ``PAX_FORMAT`` for such a member, and ``gzip.GzipFile`` and
``zstandard`` for the compression; a unit test holds the writer to that.
"""

from __future__ import annotations

import functools

import zstandard

from core.compression import ZSTD_MAGIC

BLOCK = 512
#: tar pads the end of an archive to a whole record of 20 blocks.
RECORD = 20 * BLOCK
#: The modes an entry may have, fixed so the umask of the building machine never shows.
FILE_MODE = 0o644
EXEC_MODE = 0o755
MODES = (FILE_MODE, EXEC_MODE)
#: ustar's 11 octal digits; a later mtime would need a pax ``mtime`` record, which the format forbids.
MAX_MTIME = 8**11 - 1
#: The largest size the ustar field holds; a larger file gets a pax ``size`` record.
MAX_USTAR_SIZE = 8**11 - 1
NAME_FIELD = 100
PAX_NAME = b"././@PaxHeader"
USTAR_MAGIC = b"ustar\x0000"
REGULAR = b"0"
PAX = b"x"

#: Where each field of a ustar header lies, to name the one that differs from the canonical form.
FIELDS = (
    (0, 100, "name"),
    (100, 108, "mode"),
    (108, 116, "uid"),
    (116, 124, "gid"),
    (124, 136, "size"),
    (136, 148, "mtime"),
    (148, 156, "checksum"),
    (156, 157, "type"),
    (157, 257, "linkname"),
    (257, 265, "magic and version"),
    (265, 297, "uname"),
    (297, 329, "gname"),
    (329, 337, "devmajor"),
    (337, 345, "devminor"),
    (345, 500, "prefix"),
    (500, 512, "unused tail"),
)

#: The gzip header ``gzip.GzipFile(filename="", mtime=0)`` writes: deflate, no flags, mtime 0, OS 255 (unknown);
#: the extra-flags byte says 2 for level 9, 4 for level 1, 0 otherwise.
GZIP_HEADERS = tuple(b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes([xfl]) + b"\xff" for xfl in (0, 2, 4))
GZIP_HEADER_SIZE = 10


def member_header(name: str, size: int, mode: int, mtime: int) -> bytes:
    """The header blocks the writer emits before the data of member ``name``: a pax header (with its records)
    when ustar cannot hold the name or size, then the ustar header."""
    records = b""
    if not name.isascii() or len(name) > NAME_FIELD:
        records += _pax_record(b"path", name.encode("utf-8"))
    if size > MAX_USTAR_SIZE:
        records += _pax_record(b"size", str(size).encode("ascii"))
    ustar = _ustar(name.encode("ascii", "replace")[:NAME_FIELD], mode, size if size <= MAX_USTAR_SIZE else 0, mtime)
    if not records:
        return ustar
    return _ustar(PAX_NAME, 0, len(records), 0, PAX) + records + bytes(padding(len(records))) + ustar


def padding(size: int) -> int:
    """How many zero bytes follow ``size`` bytes of member data (or pax records) to fill the block."""
    return -size % BLOCK


def end_of_archive(offset: int) -> bytes:
    """The bytes that end a tar stream whose members end at ``offset``: two zero blocks, then zeros to a record."""
    return bytes(2 * BLOCK + -(offset + 2 * BLOCK) % RECORD)


def field_at(offset: int) -> str:
    """The ustar header field that holds byte ``offset`` (0..511) of a header block."""
    return next(name for start, end, name in FIELDS if start <= offset < end)


@functools.cache
def zstd_frame_headers() -> frozenset[bytes]:
    """The frame headers (magic, descriptor, window) the writer's zstd settings give, one per level.

    The descriptor is 0x04: content checksum, no single segment, no dictionary id, no content size. The window
    descriptor is the level's window log (the size is unknown when the frame starts) as an exponent, mantissa 0.
    A unit test holds this to what the compressor really writes.
    """
    return frozenset(
        ZSTD_MAGIC + bytes([0x04, (zstandard.ZstdCompressionParameters.from_level(level).window_log - 10) << 3])
        for level in range(1, zstandard.MAX_COMPRESSION_LEVEL + 1)
    )


#: Magic (4), frame header descriptor (1), window descriptor (1): no dictionary id, no content size.
ZSTD_FRAME_HEADER_SIZE = 6


def zstd_compressor(level: int) -> zstandard.ZstdCompressor:
    """The writer's zstd settings: single-threaded (the frame never depends on the core count), frame checksum on,
    no content size (the stream is written before its size is known)."""
    return zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=False, threads=0)


def _pax_record(key: bytes, value: bytes) -> bytes:
    # "<length> <key>=<value>\n" where <length> counts its own digits: grow it until it is stable.
    body = len(key) + len(value) + 3
    length = body
    while length != body + len(str(length)):
        length = body + len(str(length))
    return str(length).encode("ascii") + b" " + key + b"=" + value + b"\n"


def _ustar(name: bytes, mode: int, size: int, mtime: int, kind: bytes = REGULAR) -> bytes:
    block = bytearray(BLOCK)
    block[0 : len(name)] = name
    block[100:108] = _octal(mode, 8)
    block[108:116] = _octal(0, 8)
    block[116:124] = _octal(0, 8)
    block[124:136] = _octal(size, 12)
    block[136:148] = _octal(mtime, 12)
    block[148:156] = b" " * 8
    block[156:157] = kind
    block[257:265] = USTAR_MAGIC
    # devmajor/devminor stay NUL (not a device); uname, gname, linkname and prefix stay empty.
    block[148:155] = b"%06o\x00" % sum(block)
    return bytes(block)


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\x00" % (width - 1, value)
