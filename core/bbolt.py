"""Write a bbolt database file (the etcd-io/bbolt on-disk format) in one pass.

Trivy's main DB (``trivy.db``) is a bbolt file. No usable Python writer exists, so this module builds one
bottom-up, without transactions: every bucket is laid out as a B+tree of leaf pages (plus branch pages when a
bucket needs more than one leaf), children before parents, so page ids only grow and pages go to disk in order.

File layout::

    page 0, 1   meta pages (identical apart from txid 0/1 and their checksums)
    page 2      freelist (empty: a bulk write wastes no pages)
    page 3...   tree pages, each bucket's subtree written depth-first, the root bucket's tree last

Format facts (all integers little-endian), from the bbolt sources (etcd-io/bbolt ``page.go``,
``db.go``; ``verify/bbolt_check.py`` reads them back independently):

* page header, 16 bytes: ``id u64 | flags u16 | count u16 | overflow u32``; ``overflow`` counts the extra
  contiguous pages of a page whose content exceeds one page.
* meta (at offset 16 of pages 0 and 1): ``magic u32 | version u32 | pageSize u32 | flags u32 | root pgid u64 |
  root sequence u64 | freelist u64 | pgid (high-water mark) u64 | txid u64 | checksum u64``, the checksum being
  FNV-1a 64 over the 56 bytes before it.
* leaf element ``flags u32 | pos u32 | ksize u32 | vsize u32``, branch element ``pos u32 | ksize u32 | pgid u64``;
  ``pos`` is measured from the element itself to its key; value bytes follow the key.
* a sub-bucket is a leaf entry with flag ``0x01`` whose value is ``root pgid u64 | sequence u64``; with root 0
  an inline leaf page follows in the value. bbolt inlines a bucket when it has no sub-buckets and
  ``16 + sum(16 + len(key) + len(value)) <= pageSize / 4``; this writer applies the same rule.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, TypeAlias

from core.errors import BadInputError

Bucket: TypeAlias = Mapping[bytes, "Bucket | bytes"]
"""A bucket: bytes keys mapping to bytes values or to nested buckets."""

PAGE_SIZE = 4096
MAX_PAGE_SIZE = 65536
MAGIC = 0xED0CDAED
VERSION = 2
MAX_KEY_SIZE = 32768
MAX_VALUE_SIZE = (1 << 31) - 2

BRANCH_PAGE = 0x01
LEAF_PAGE = 0x02
META_PAGE = 0x04
FREELIST_PAGE = 0x10
BUCKET_LEAF_FLAG = 0x01

PAGE_HEADER_SIZE = 16
ELEMENT_SIZE = 16  # both leaf and branch elements are 16 bytes
FIRST_DATA_PAGE = 3
FREELIST_PGID = 2

_PAGE_HEADER = struct.Struct("<QHHI")
_LEAF_ELEMENT = struct.Struct("<IIII")
_BRANCH_ELEMENT = struct.Struct("<IIQ")
_BUCKET_HEADER = struct.Struct("<QQ")
_META_FIELDS = struct.Struct("<IIIIQQQQQ")

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1


def fnv1a64(data: bytes) -> int:
    """FNV-1a 64-bit hash, the function bbolt uses for its meta page checksum."""
    h = _FNV_OFFSET
    for byte in data:
        h ^= byte
        h = (h * _FNV_PRIME) & _MASK64
    return h


def meta_bytes(*, page_size: int, root: int, freelist: int, high_water: int, txid: int, sequence: int = 0) -> bytes:
    """The 64-byte meta struct (fields plus checksum) as it sits at offset 16 of a meta page."""
    fields = _META_FIELDS.pack(MAGIC, VERSION, page_size, 0, root, sequence, freelist, high_water, txid)
    return fields + struct.pack("<Q", fnv1a64(fields))


@dataclass(frozen=True)
class BboltWriteResult:
    """What :func:`write_bbolt` wrote: the page count (high-water mark) and what the tree holds."""

    pages: int
    root_pgid: int
    buckets: int
    keys: int


_Inode: TypeAlias = tuple[int, bytes, bytes]
"""A leaf element to be: (flags, key, value)."""


class _PageWriter:
    """Appends pages to the file in pgid order; the page id is the position, so writes stay sequential."""

    def __init__(self, fh: BinaryIO, page_size: int, scratch: Path) -> None:
        self._fh = fh
        self.page_size = page_size
        self.scratch = scratch
        self.next_pgid = FIRST_DATA_PAGE
        self.buckets = 0
        self.keys = 0

    def write_page(self, flags: int, count: int, body: bytes) -> int:
        """Write one logical page (header + body), spanning overflow pages when needed; return its pgid."""
        size = PAGE_HEADER_SIZE + len(body)
        span = max(1, -(-size // self.page_size))
        pgid = self.next_pgid
        header = _PAGE_HEADER.pack(pgid, flags, count, span - 1)
        self._fh.write(header)
        self._fh.write(body)
        self._fh.write(b"\0" * (span * self.page_size - size))
        self.next_pgid += span
        return pgid


def _leaf_body(inodes: list[_Inode]) -> bytes:
    """Elements then packed key/value data, exactly as bbolt lays out a leaf page after its header."""
    pack = _LEAF_ELEMENT.pack
    elements: list[bytes] = []
    data: list[bytes] = []
    # The i-th element's pos: from itself, past the elements after it, to its key: (n - i) * 16 + data so far.
    pos = len(inodes) * ELEMENT_SIZE
    for flags, key, value in inodes:
        elements.append(pack(flags, pos, len(key), len(value)))
        data.append(key)
        data.append(value)
        pos += len(key) + len(value) - ELEMENT_SIZE
    return b"".join(elements) + b"".join(data)


def _branch_body(children: list[tuple[bytes, int]]) -> bytes:
    elements = bytearray()
    data = bytearray()
    n = len(children)
    for i, (key, pgid) in enumerate(children):
        pos = (n - i) * ELEMENT_SIZE + len(data)
        elements += _BRANCH_ELEMENT.pack(pos, len(key), pgid)
        data += key
    return bytes(elements + data)


def _pack(sizes: Iterable[int], page_size: int, min_per_page: int) -> list[tuple[int, int]]:
    """Split elements greedily into pages of at most ``page_size`` bytes, returning ``(start, stop)`` ranges.

    A page takes at least ``min_per_page`` elements even when they overflow it: 1 for leaves (a lone large
    value), 2 for branches, so that each branch level is shorter than the one below and the tree converges.
    """
    ranges: list[tuple[int, int]] = []
    start = 0
    stop = 0
    used = PAGE_HEADER_SIZE
    for i, size in enumerate(sizes):
        if i - start >= min_per_page and used + size > page_size:
            ranges.append((start, i))
            start = i
            used = PAGE_HEADER_SIZE
        used += size
        stop = i + 1
    if stop > start:
        ranges.append((start, stop))
    return ranges


#: Leaf pages of one bucket kept in memory before they go to a scratch file (see :class:`_Leaves`).
SPOOL_MEMORY = 8 << 20


class _Leaves:
    """The leaf pages of one bucket, packed as its entries arrive (the greedy split of :func:`_pack`, done by
    :func:`_bucket`).

    A bucket's pages follow those of its sub-buckets, which are written while its entries are still arriving,
    so finished leaf pages wait in a spool (memory up to :data:`SPOOL_MEMORY`, then a scratch file) until the
    bucket ends; only their first keys and sizes stay in memory.
    """

    def __init__(self, writer: _PageWriter) -> None:
        self._writer = writer
        self.page: list[_Inode] = []  # the page being filled (by _bucket)
        self._spool: IO[bytes] | None = None
        self._done: list[tuple[bytes, int, int]] = []  # (first key, element count, body size) per finished page

    @property
    def single_page(self) -> bool:
        """No page has been finished yet: every entry is in :attr:`page`."""
        return not self._done

    def finish_page(self) -> None:
        """Put :attr:`page` (full) in the spool and start an empty one."""
        if self._spool is None:
            # Closed by write() or discard(), whichever ends the bucket.
            self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY, dir=str(self._writer.scratch))  # noqa: SIM115
        body = _leaf_body(self.page)
        self._spool.write(body)
        self._done.append((self.page[0][1], len(self.page), len(body)))
        self.page = []

    def write(self) -> list[tuple[bytes, int]]:
        """Write every leaf page, in order; returns (first key, pgid) per page for the branch level above."""
        if not self._done and not self.page:
            return [(b"", self._writer.write_page(LEAF_PAGE, 0, b""))]
        level: list[tuple[bytes, int]] = []
        if self._spool is not None:
            self._spool.seek(0)
            for first, count, size in self._done:
                level.append((first, self._writer.write_page(LEAF_PAGE, count, self._spool.read(size))))
            self._spool.close()
        if self.page:
            level.append((self.page[0][1], self._writer.write_page(LEAF_PAGE, len(self.page), _leaf_body(self.page))))
        return level

    def discard(self) -> None:
        if self._spool is not None:
            self._spool.close()


def _write_branches(writer: _PageWriter, level: list[tuple[bytes, int]]) -> int:
    """Write the branch levels above a bucket's leaf pages, up to one root page; return the root pgid."""
    while len(level) > 1:
        parents: list[tuple[bytes, int]] = []
        for start, stop in _pack((ELEMENT_SIZE + len(k) for k, _ in level), writer.page_size, 2):
            group = level[start:stop]
            parents.append((group[0][0], writer.write_page(BRANCH_PAGE, len(group), _branch_body(group))))
        if len(parents) >= len(level):  # cannot happen with two or more elements per page; never loop forever
            raise AssertionError("bbolt branch level did not shrink")
        level = parents
    return level[0][1]


def _bucket(writer: _PageWriter, entries: Entries, where: str, *, inline_allowed: bool) -> bytes | int:
    """Consume a bucket's entries (ascending keys) and write its pages: children first, then its own B+tree.

    Returns the inline bucket value when the bucket is small enough (bbolt's rule), else its root pgid.
    """
    leaves = _Leaves(writer)
    has_sub = False
    previous = b""  # keys are never empty: every valid first key sorts after it
    page_size = writer.page_size
    # The page being filled, kept in locals (the hot loop of a large build); _Leaves takes it when it is full.
    page = leaves.page
    used = PAGE_HEADER_SIZE
    total = PAGE_HEADER_SIZE
    keys = 0
    try:
        for key, value in entries:
            if type(key) is not bytes or key <= previous or len(key) > MAX_KEY_SIZE:
                _refuse_key(key, previous, where)
            previous = key
            if type(value) is bytes:
                if len(value) > MAX_VALUE_SIZE:
                    raise BadInputError(f"bucket {where}: value of key {key!r} is too large")
                inode: _Inode = (0, key, value)
                keys += 1
            elif isinstance(value, bytes):
                if len(value) > MAX_VALUE_SIZE:
                    raise BadInputError(f"bucket {where}: value of key {key!r} is too large")
                inode = (0, key, value)
                keys += 1
            elif hasattr(value, "__iter__") and not isinstance(value, (str, bytearray, memoryview)):
                has_sub = True
                writer.buckets += 1
                sub = _bucket(writer, value, f"{where}/{key!r}", inline_allowed=True)
                inode = (BUCKET_LEAF_FLAG, key, sub if isinstance(sub, bytes) else _BUCKET_HEADER.pack(sub, 0))
            else:
                raise BadInputError(f"bucket {where}: value of key {key!r} is neither bytes nor a bucket")
            size = ELEMENT_SIZE + len(key) + len(inode[2])
            if page and used + size > page_size:
                leaves.page = page
                leaves.finish_page()
                page = leaves.page
                used = PAGE_HEADER_SIZE
            page.append(inode)
            used += size
            total += size
    except BaseException:
        leaves.discard()
        raise
    finally:
        writer.keys += keys
    leaves.page = page
    if inline_allowed and not has_sub and leaves.single_page and total <= page_size // 4:
        return _BUCKET_HEADER.pack(0, 0) + _PAGE_HEADER.pack(0, LEAF_PAGE, len(page), 0) + _leaf_body(page)
    return _write_branches(writer, leaves.write())


def _refuse_key(key: object, previous: bytes, where: str) -> None:
    """Raise what is wrong with a key the fast check of :func:`_bucket` did not pass (``previous``: b"" first)."""
    if not isinstance(key, bytes):
        raise BadInputError(f"bucket {where}: key {key!r} is not bytes")
    if not key or len(key) > MAX_KEY_SIZE:
        raise BadInputError(f"bucket {where}: key length {len(key)} is outside 1..{MAX_KEY_SIZE}")
    if previous and key <= previous:
        raise BadInputError(f"bucket {where}: key {key!r} does not follow {previous!r} (keys must ascend)")


Entries: TypeAlias = Iterable[tuple[bytes, "bytes | Entries"]]
"""A bucket as a stream: (key, value) pairs in ascending key order, a value being bytes or a nested bucket."""


def sorted_entries(bucket: Bucket, where: str = "<root>") -> Iterator[tuple[bytes, bytes | Entries]]:
    """A bucket mapping as :data:`Entries`: keys sorted bytewise, nested mappings turned into entries too."""
    keys = list(bucket)
    for key in keys:
        if not isinstance(key, bytes):
            raise BadInputError(f"bucket {where}: key {key!r} is not bytes")
    for key in sorted(keys):
        value = bucket[key]
        if isinstance(value, Mapping):
            yield key, sorted_entries(value, f"{where}/{key!r}")
        elif isinstance(value, bytes):
            yield key, value
        else:
            raise BadInputError(f"bucket {where}: value of key {key!r} is neither bytes nor a bucket")


def write_bbolt(path: Path, root: Bucket, *, page_size: int = PAGE_SIZE) -> BboltWriteResult:
    """Write ``root`` as a bbolt database at ``path`` and return what was written.

    Every entry of ``root`` must be a bucket (bbolt keeps only buckets at the top level). A bucket maps
    non-empty bytes keys to bytes values or to nested buckets; keys are written sorted bytewise. The output
    depends only on the input, so the same input gives the same bytes. The file is written in place; write to
    a temporary name and rename if readers may be watching.

    Raises :class:`BadInputError` for keys or values bbolt cannot store.
    """
    for key, value in root.items():
        if not isinstance(value, Mapping):
            raise BadInputError(f"top-level entry {key!r} is not a bucket (bbolt allows only buckets at the root)")
    return write_bbolt_entries(path, sorted_entries(root), page_size=page_size)


def write_bbolt_entries(path: Path, root: Entries, *, page_size: int = PAGE_SIZE) -> BboltWriteResult:
    """Write a bbolt database from buckets given as streams of entries, in ascending key order at every level.

    The bytes are those :func:`write_bbolt` writes for the same tree, but nothing is held in memory beyond one
    page per open bucket (finished leaf pages of a bucket wait in a scratch file beside ``path`` until its
    sub-buckets are written). Keys out of order, and what :func:`write_bbolt` refuses, raise
    :class:`BadInputError`.
    """
    if page_size < 1024 or page_size > MAX_PAGE_SIZE or page_size & (page_size - 1):
        # The upper bound keeps every page below bbolt's 0xFFFF elements (at least 17 bytes each).
        raise BadInputError(f"page size {page_size} is not a power of two from 1024 to {MAX_PAGE_SIZE}")

    def buckets_only(entries: Entries) -> Iterator[tuple[bytes, bytes | Entries]]:
        for key, value in entries:
            if isinstance(value, bytes):
                raise BadInputError(f"top-level entry {key!r} is not a bucket (bbolt allows only buckets at the root)")
            yield key, value

    with path.open("wb") as fh:
        fh.write(b"\0" * (FIRST_DATA_PAGE * page_size))
        writer = _PageWriter(fh, page_size, path.parent)
        root_pgid = _bucket(writer, buckets_only(root), "<root>", inline_allowed=False)
        assert isinstance(root_pgid, int)
        high_water = writer.next_pgid
        fh.seek(0)
        for txid in (0, 1):
            page = _PAGE_HEADER.pack(txid, META_PAGE, 0, 0) + meta_bytes(
                page_size=page_size, root=root_pgid, freelist=FREELIST_PGID, high_water=high_water, txid=txid
            )
            fh.write(page + b"\0" * (page_size - len(page)))
        fh.write(_PAGE_HEADER.pack(FREELIST_PGID, FREELIST_PAGE, 0, 0))
    return BboltWriteResult(pages=high_water, root_pgid=root_pgid, buckets=writer.buckets, keys=writer.keys)
