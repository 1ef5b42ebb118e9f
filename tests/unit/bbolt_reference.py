"""The bbolt writer as it was before it streamed (core/bbolt.py at a704daa): the oracle of the streaming writer.

``core.bbolt.write_bbolt`` and ``write_bbolt_entries`` now write a bucket's pages as its entries arrive; this is the
simple recursive writer they replaced, kept verbatim (only its name changed) so that tests can check that the
bytes did not change. Test-only: nothing in the product imports it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.bbolt import (
    BRANCH_PAGE,
    BUCKET_LEAF_FLAG,
    ELEMENT_SIZE,
    FIRST_DATA_PAGE,
    FREELIST_PAGE,
    FREELIST_PGID,
    LEAF_PAGE,
    MAX_KEY_SIZE,
    MAX_PAGE_SIZE,
    MAX_VALUE_SIZE,
    META_PAGE,
    PAGE_HEADER_SIZE,
    PAGE_SIZE,
    BboltWriteResult,
    Bucket,
    meta_bytes,
)
from core.errors import BadInputError

_PAGE_HEADER = struct.Struct("<QHHI")
_LEAF_ELEMENT = struct.Struct("<IIII")
_BRANCH_ELEMENT = struct.Struct("<IIQ")
_BUCKET_HEADER = struct.Struct("<QQ")


@dataclass(frozen=True)
class _Inode:
    flags: int
    key: bytes
    value: bytes


class _PageWriter:
    """Appends pages to the file in pgid order; the page id is the position, so writes stay sequential."""

    def __init__(self, fh: BinaryIO, page_size: int) -> None:
        self._fh = fh
        self.page_size = page_size
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
    elements = bytearray()
    data = bytearray()
    n = len(inodes)
    for i, node in enumerate(inodes):
        pos = (n - i) * ELEMENT_SIZE + len(data)
        elements += _LEAF_ELEMENT.pack(node.flags, pos, len(node.key), len(node.value))
        data += node.key
        data += node.value
    return bytes(elements + data)


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


def _write_tree(writer: _PageWriter, inodes: list[_Inode]) -> int:
    """Write a bucket's B+tree (leaves, then branch levels up to one root page) and return the root pgid."""
    if not inodes:
        return writer.write_page(LEAF_PAGE, 0, b"")
    level: list[tuple[bytes, int]] = []
    for start, stop in _pack((ELEMENT_SIZE + len(n.key) + len(n.value) for n in inodes), writer.page_size, 1):
        chunk = inodes[start:stop]
        level.append((chunk[0].key, writer.write_page(LEAF_PAGE, len(chunk), _leaf_body(chunk))))
    while len(level) > 1:
        parents: list[tuple[bytes, int]] = []
        for start, stop in _pack((ELEMENT_SIZE + len(k) for k, _ in level), writer.page_size, 2):
            group = level[start:stop]
            parents.append((group[0][0], writer.write_page(BRANCH_PAGE, len(group), _branch_body(group))))
        if len(parents) >= len(level):  # cannot happen with two or more elements per page; never loop forever
            raise AssertionError("bbolt branch level did not shrink")
        level = parents
    return level[0][1]


def _bucket_inodes(writer: _PageWriter, bucket: Bucket, where: str) -> tuple[list[_Inode], bool]:
    """Turn a bucket's entries into sorted leaf inodes, writing page-based sub-buckets on the way.

    Returns the inodes and whether any entry is a sub-bucket.
    """
    inodes: list[_Inode] = []
    has_sub = False
    keys = list(bucket)
    for key in keys:
        if not isinstance(key, bytes):
            raise BadInputError(f"bucket {where}: key {key!r} is not bytes")
    for key in sorted(keys):
        if not key or len(key) > MAX_KEY_SIZE:
            raise BadInputError(f"bucket {where}: key length {len(key)} is outside 1..{MAX_KEY_SIZE}")
        value = bucket[key]
        if isinstance(value, bytes):
            if len(value) > MAX_VALUE_SIZE:
                raise BadInputError(f"bucket {where}: value of key {key!r} is too large")
            inodes.append(_Inode(0, key, value))
            writer.keys += 1
        elif isinstance(value, Mapping):
            has_sub = True
            writer.buckets += 1
            inodes.append(_Inode(BUCKET_LEAF_FLAG, key, _bucket_value(writer, value, f"{where}/{key!r}")))
        else:
            raise BadInputError(f"bucket {where}: value of key {key!r} is neither bytes nor a bucket")
    return inodes, has_sub


def _bucket_value(writer: _PageWriter, bucket: Bucket, where: str) -> bytes:
    """The value stored under a sub-bucket's key: an inline bucket, or a header pointing at its written tree."""
    inodes, has_sub = _bucket_inodes(writer, bucket, where)
    size = PAGE_HEADER_SIZE + sum(ELEMENT_SIZE + len(n.key) + len(n.value) for n in inodes)
    if not has_sub and size <= writer.page_size // 4:
        page = _PAGE_HEADER.pack(0, LEAF_PAGE, len(inodes), 0) + _leaf_body(inodes)
        return _BUCKET_HEADER.pack(0, 0) + page
    return _BUCKET_HEADER.pack(_write_tree(writer, inodes), 0)


def write_bbolt_reference(path: Path, root: Bucket, *, page_size: int = PAGE_SIZE) -> BboltWriteResult:
    """Write ``root`` as a bbolt database at ``path`` and return what was written.

    Every entry of ``root`` must be a bucket (bbolt keeps only buckets at the top level). A bucket maps
    non-empty bytes keys to bytes values or to nested buckets; keys are written sorted bytewise. The output
    depends only on the input, so the same input gives the same bytes. The file is written in place; write to
    a temporary name and rename if readers may be watching.

    Raises :class:`BadInputError` for keys or values bbolt cannot store.
    """
    if page_size < 1024 or page_size > MAX_PAGE_SIZE or page_size & (page_size - 1):
        # The upper bound keeps every page below bbolt's 0xFFFF elements (at least 17 bytes each).
        raise BadInputError(f"page size {page_size} is not a power of two from 1024 to {MAX_PAGE_SIZE}")
    for key, value in root.items():
        if not isinstance(value, Mapping):
            raise BadInputError(f"top-level entry {key!r} is not a bucket (bbolt allows only buckets at the root)")
    with path.open("wb") as fh:
        fh.write(b"\0" * (FIRST_DATA_PAGE * page_size))
        writer = _PageWriter(fh, page_size)
        inodes, _ = _bucket_inodes(writer, root, "<root>")
        root_pgid = _write_tree(writer, inodes)
        high_water = writer.next_pgid
        fh.seek(0)
        for txid in (0, 1):
            page = _PAGE_HEADER.pack(txid, META_PAGE, 0, 0) + meta_bytes(
                page_size=page_size, root=root_pgid, freelist=FREELIST_PGID, high_water=high_water, txid=txid
            )
            fh.write(page + b"\0" * (page_size - len(page)))
        fh.write(_PAGE_HEADER.pack(FREELIST_PGID, FREELIST_PAGE, 0, 0))
    return BboltWriteResult(pages=high_water, root_pgid=root_pgid, buckets=writer.buckets, keys=writer.keys)
