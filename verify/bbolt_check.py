"""Check the structure of a bbolt database file without trusting it, and read it back.

This is the receiving side's view of a ``trivy.db``: it re-derives every format fact on its own (it does not use
the writer in ``core.bbolt``), so a mistake in the writer is not mirrored here. Checks, in the spirit of bbolt's
``Tx.Check`` plus the stricter rules of bbolt >= 1.3.8 that Trivy runs:

* both meta pages: page header, magic, format version 2, FNV-1a checksum (at least one must be valid; the valid one
  with the higher txid is used, as bbolt does);
* every page reference is inside the high-water mark and inside the file, a page header's id equals its position,
  and branch/leaf/freelist pages carry the type expected where they are referenced;
* every page is reached exactly once (no cycles, no shared pages) or is on the freelist, never both;
* element offsets stay inside their page, keys are non-empty, strictly ascending within a page and inside the key
  range their parent branch gives them.

Any violation raises :class:`~core.errors.IntegrityError` naming the page and the problem.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from core.errors import IntegrityError

Tree: TypeAlias = dict[bytes, "Tree | bytes"]
"""A bucket read back: keys mapping to values or to nested buckets."""

_MAGIC = 0xED0CDAED
_VERSION = 2
_BRANCH = 0x01
_LEAF = 0x02
_META = 0x04
_FREELIST = 0x10
_BUCKET_FLAG = 0x01
_HEADER = struct.Struct("<QHHI")
_META_STRUCT = struct.Struct("<IIIIQQQQQQ")
_LEAF_ELEM = struct.Struct("<IIII")
_BRANCH_ELEM = struct.Struct("<IIQ")
_BUCKET = struct.Struct("<QQ")
_NO_FREELIST = 0xFFFFFFFFFFFFFFFF
_MAX_DEPTH = 64
_MAX_LEVELS = 64
_MAX_PAGE_SIZE = 16 << 20


def _fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


@dataclass(frozen=True)
class MetaStatus:
    """One meta page as found on disk: whether it is valid and, if not, why."""

    page: int
    valid: bool
    problem: str | None
    txid: int | None


@dataclass(frozen=True)
class BboltReport:
    """The result of :func:`check_bbolt` for a file that passed every check."""

    path: str
    page_size: int
    metas: tuple[MetaStatus, MetaStatus]
    meta_used: int
    txid: int
    root_pgid: int
    freelist_pgid: int | None
    high_water: int
    branch_pages: int
    leaf_pages: int
    overflow_pages: int
    free_pages: int
    buckets: int
    inline_buckets: int
    keys: int
    max_bucket_depth: int


@dataclass(frozen=True)
class _Meta:
    page_size: int
    root: int
    freelist: int
    high_water: int
    txid: int


def _parse_meta(data: bytes | mmap.mmap, offset: int, page: int) -> tuple[_Meta | None, str | None]:
    if len(data) < offset + 16 + _META_STRUCT.size:
        return None, "file too short to hold it"
    pid, flags, _count, _overflow = _HEADER.unpack_from(data, offset)
    fields = _META_STRUCT.unpack_from(data, offset + 16)
    magic, version, page_size, _mflags, root, _seq, freelist, high_water, txid, checksum = fields
    if magic != _MAGIC:
        return None, f"bad magic 0x{magic:08x}"
    if version != _VERSION:
        return None, f"unsupported format version {version}"
    if checksum != _fnv1a64(bytes(data[offset + 16 : offset + 16 + 56])):
        return None, "checksum mismatch"
    if pid != page or flags != _META:
        return None, f"page header says id {pid}, flags 0x{flags:x} (expected id {page}, meta flag 0x04)"
    if page_size < 1024 or page_size > _MAX_PAGE_SIZE or page_size & (page_size - 1):
        return None, f"implausible page size {page_size}"
    return _Meta(page_size, root, freelist, high_water, txid), None


class _Checker:
    def __init__(self, path: Path, data: bytes | mmap.mmap, collect: bool) -> None:
        self.where = str(path)
        self.data = data
        self.collect = collect
        self.page_size = 0
        self.high_water = 0
        self.seen: set[int] = set()
        self.freed: set[int] = set()
        self.branch_pages = 0
        self.leaf_pages = 0
        self.overflow_pages = 0
        self.buckets = 0
        self.inline_buckets = 0
        self.keys = 0
        self.max_bucket_depth = 0

    def fail(self, pgid: int | None, problem: str) -> IntegrityError:
        text = f"page {pgid}: {problem}" if pgid is not None else problem
        return IntegrityError(
            f"bbolt database is damaged: {text}",
            path=self.where,
            hint="rebuild the database; do not hand this file to a scanner",
        )

    def metas(self) -> tuple[_Meta, int, tuple[MetaStatus, MetaStatus]]:
        meta0, problem0 = _parse_meta(self.data, 0, 0)
        meta1: _Meta | None = None
        problem1: str | None = "not found at any plausible page size"
        if meta0 is not None:
            meta1, problem1 = _parse_meta(self.data, meta0.page_size, 1)
        else:
            # Like bbolt: without a valid first meta, probe page sizes for the second one.
            size = 1024
            while size <= _MAX_PAGE_SIZE and size < len(self.data):
                candidate, problem = _parse_meta(self.data, size, 1)
                if candidate is not None and candidate.page_size == size:
                    meta1, problem1 = candidate, None
                    break
                if size == 4096:
                    problem1 = problem
                size <<= 1
        statuses = (
            MetaStatus(0, meta0 is not None, problem0, meta0.txid if meta0 else None),
            MetaStatus(1, meta1 is not None, problem1, meta1.txid if meta1 else None),
        )
        if meta0 is None and meta1 is None:
            raise self.fail(None, f"both meta pages are invalid (page 0: {problem0}; page 1: {problem1})")
        if meta0 is not None and meta1 is not None and meta0.page_size != meta1.page_size:
            raise self.fail(1, f"page size {meta1.page_size} differs from page 0's {meta0.page_size}")
        if meta1 is not None and (meta0 is None or meta1.txid > meta0.txid):
            return meta1, 1, statuses
        assert meta0 is not None
        return meta0, 0, statuses

    def claim(self, pgid: int, expected: int, what: str) -> tuple[int, int, int]:
        """Mark a page (and its overflow) as used; return (flags, count, byte offset)."""
        if pgid < 2:
            raise self.fail(pgid, f"{what} points at a meta page")
        if pgid >= self.high_water:
            raise self.fail(pgid, f"{what} is beyond the high-water mark {self.high_water}")
        offset = pgid * self.page_size
        if offset + 16 > len(self.data):
            raise self.fail(pgid, f"{what} lies past the end of the file")
        pid, flags, count, overflow = _HEADER.unpack_from(self.data, offset)
        if pid != pgid:
            raise self.fail(pgid, f"page header carries id {pid}")
        if flags != expected:
            raise self.fail(pgid, f"{what} has page flags 0x{flags:x}, expected 0x{expected:x}")
        last = pgid + overflow
        if last >= self.high_water:
            raise self.fail(pgid, f"overflow of {overflow} pages runs past the high-water mark {self.high_water}")
        if (last + 1) * self.page_size > len(self.data):
            raise self.fail(pgid, "overflow runs past the end of the file")
        for p in range(pgid, last + 1):
            if p in self.seen:
                raise self.fail(p, "referenced twice (a cycle or a shared page)")
            if p in self.freed:
                raise self.fail(p, "reachable but also on the freelist")
            self.seen.add(p)
        self.overflow_pages += overflow
        return flags, count, offset

    def freelist(self, pgid: int) -> None:
        _flags, count, offset = self.claim(pgid, _FREELIST, "freelist")
        end = (pgid + 1 + _HEADER.unpack_from(self.data, offset)[3]) * self.page_size
        start = offset + 16
        if count == 0xFFFF:
            if start + 8 > end:
                raise self.fail(pgid, "freelist count overflows its page")
            (count,) = struct.unpack_from("<Q", self.data, start)
            start += 8
        if start + 8 * count > end:
            raise self.fail(pgid, f"freelist of {count} ids overflows its page")
        for i in range(count):
            (freed,) = struct.unpack_from("<Q", self.data, start + 8 * i)
            if freed < 2 or freed >= self.high_water:
                raise self.fail(freed, f"freelist entry is outside 2..{self.high_water - 1}")
            if freed in self.freed:
                raise self.fail(freed, "freed twice")
            if freed in self.seen:
                raise self.fail(freed, "on the freelist but used by the freelist itself")
            self.freed.add(freed)

    def elements(
        self, buf: bytes | mmap.mmap, base: int, end: int, count: int, leaf: bool, pgid: int
    ) -> list[tuple[int, bytes, bytes, int]]:
        """Parse ``count`` elements of the page at ``base``; return (flags, key, value, child pgid) tuples."""
        out: list[tuple[int, bytes, bytes, int]] = []
        if base + 16 + 16 * count > end:
            raise self.fail(pgid, f"{count} elements do not fit in the page")
        for i in range(count):
            at = base + 16 + 16 * i
            if leaf:
                flags, pos, ksize, vsize = _LEAF_ELEM.unpack_from(buf, at)
                child = 0
            else:
                pos, ksize, child = _BRANCH_ELEM.unpack_from(buf, at)
                flags = vsize = 0
            kstart = at + pos
            if ksize == 0:
                raise self.fail(pgid, f"element {i} has an empty key")
            if kstart + ksize + vsize > end:
                raise self.fail(pgid, f"element {i} points outside the page")
            key = bytes(buf[kstart : kstart + ksize])
            value = bytes(buf[kstart + ksize : kstart + ksize + vsize])
            out.append((flags, key, value, child))
        return out

    def keys_in_order(
        self, items: list[tuple[int, bytes, bytes, int]], lo: bytes | None, hi: bytes | None, pgid: int
    ) -> None:
        prev: bytes | None = None
        for i, (_f, key, _v, _c) in enumerate(items):
            if prev is not None and key <= prev:
                raise self.fail(pgid, f"keys not sorted: element {i} {key[:40]!r} after {prev[:40]!r}")
            if lo is not None and key < lo:
                raise self.fail(pgid, f"key {key[:40]!r} is below its parent branch key {lo[:40]!r}")
            if hi is not None and key >= hi:
                raise self.fail(pgid, f"key {key[:40]!r} is not below the next branch key {hi[:40]!r}")
            prev = key

    def tree(self, pgid: int, lo: bytes | None, hi: bytes | None, out: Tree, depth: int, level: int) -> None:
        """Walk one bucket's B+tree from ``pgid``; ``depth`` is the bucket nesting, ``level`` the tree level."""
        if level > _MAX_LEVELS:
            raise self.fail(pgid, "B+tree is implausibly deep")
        offset = pgid * self.page_size
        if pgid >= 2 and pgid < self.high_water and offset + 16 <= len(self.data):
            flags = _HEADER.unpack_from(self.data, offset)[1]
            expected = _BRANCH if flags == _BRANCH else _LEAF
        else:
            expected = _LEAF
        _flags, count, offset = self.claim(pgid, expected, "tree page")
        end = (pgid + 1 + _HEADER.unpack_from(self.data, offset)[3]) * self.page_size
        if expected == _BRANCH:
            self.branch_pages += 1
            if count == 0:
                raise self.fail(pgid, "branch page has no elements")
            items = self.elements(self.data, offset, end, count, False, pgid)
            self.keys_in_order(items, lo, hi, pgid)
            for i, (_f, key, _v, child) in enumerate(items):
                upper = items[i + 1][1] if i + 1 < len(items) else hi
                self.tree(child, key, upper, out, depth, level + 1)
        else:
            self.leaf_pages += 1
            if count == 0 and level > 0:
                raise self.fail(pgid, "empty leaf page under a branch")
            items = self.elements(self.data, offset, end, count, True, pgid)
            self.keys_in_order(items, lo, hi, pgid)
            self.leaf_items(items, out, depth, pgid)

    def leaf_items(self, items: list[tuple[int, bytes, bytes, int]], out: Tree, depth: int, pgid: int) -> None:
        for flags, key, value, _c in items:
            if flags & ~_BUCKET_FLAG:
                raise self.fail(pgid, f"key {key[:40]!r} has unknown leaf flags 0x{flags:x}")
            if depth == 0 and not flags & _BUCKET_FLAG:
                raise self.fail(pgid, f"top-level key {key[:40]!r} is not a bucket")
            if flags & _BUCKET_FLAG:
                child: Tree = {}
                self.bucket(value, child, depth + 1, pgid, key)
                if self.collect:
                    out[key] = child
            else:
                self.keys += 1
                if self.collect:
                    out[key] = value

    def bucket(self, value: bytes, out: Tree, depth: int, pgid: int, key: bytes) -> None:
        """Open a sub-bucket from its leaf value (inline or page-based)."""
        self.buckets += 1
        self.max_bucket_depth = max(self.max_bucket_depth, depth)
        if depth > _MAX_DEPTH:
            raise self.fail(pgid, "buckets are nested implausibly deep")
        if len(value) < 16:
            raise self.fail(pgid, f"bucket {key[:40]!r} has a {len(value)}-byte header")
        root, _seq = _BUCKET.unpack_from(value, 0)
        if root != 0:
            self.tree(root, None, None, out, depth, 0)
            return
        self.inline_buckets += 1
        if len(value) < 32:
            raise self.fail(pgid, f"inline bucket {key[:40]!r} is too short to hold a page header")
        _pid, flags, count, _overflow = _HEADER.unpack_from(value, 16)
        if flags != _LEAF:
            raise self.fail(pgid, f"inline bucket {key[:40]!r} has page flags 0x{flags:x}, expected a leaf")
        items = self.elements(value, 16, len(value), count, True, pgid)
        self.keys_in_order(items, None, None, pgid)
        self.leaf_items(items, out, depth, pgid)


def _run(path: Path, collect: bool) -> tuple[BboltReport, Tree]:
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise IntegrityError(f"cannot open bbolt database: {exc.strerror}", path=str(path)) from exc
    with fh:
        if path.stat().st_size < 1024:
            raise IntegrityError("bbolt database is damaged: file is too short", path=str(path))
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            checker = _Checker(path, data, collect)
            meta, used, statuses = checker.metas()
            checker.page_size = meta.page_size
            checker.high_water = meta.high_water
            if meta.high_water < 3:
                raise checker.fail(None, f"high-water mark {meta.high_water} leaves no room for a root page")
            if len(data) < meta.high_water * meta.page_size:
                raise checker.fail(
                    None, f"file is {len(data)} bytes, shorter than {meta.high_water} pages of {meta.page_size}"
                )
            checker.seen.update((0, 1))
            freelist: int | None = None
            if meta.freelist != _NO_FREELIST:
                freelist = meta.freelist
                checker.freelist(meta.freelist)
            root: Tree = {}
            checker.tree(meta.root, None, None, root, 0, 0)
            if freelist is not None:
                for p in range(2, meta.high_water):
                    if p not in checker.seen and p not in checker.freed:
                        raise checker.fail(p, "unreachable and not on the freelist")
            free = len(checker.freed) if freelist is not None else meta.high_water - len(checker.seen)
            report = BboltReport(
                path=str(path),
                page_size=meta.page_size,
                metas=statuses,
                meta_used=used,
                txid=meta.txid,
                root_pgid=meta.root,
                freelist_pgid=freelist,
                high_water=meta.high_water,
                branch_pages=checker.branch_pages,
                leaf_pages=checker.leaf_pages,
                overflow_pages=checker.overflow_pages,
                free_pages=free,
                buckets=checker.buckets,
                inline_buckets=checker.inline_buckets,
                keys=checker.keys,
                max_bucket_depth=checker.max_bucket_depth,
            )
            return report, root


def check_bbolt(path: Path) -> BboltReport:
    """Validate the structure of the bbolt database at ``path`` and describe it.

    Raises :class:`~core.errors.IntegrityError` naming the page and the problem when the file is damaged.
    A report can still show one invalid meta page (``metas``): bbolt then opens the file from the other one.
    """
    report, _ = _run(path, collect=False)
    return report


def read_bbolt(path: Path) -> Tree:
    """Check the database at ``path`` and return its whole content as nested dicts (for tests and small files)."""
    _, root = _run(path, collect=True)
    return root
