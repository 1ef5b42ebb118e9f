"""Raw documents of a run into packs, in input order, from one pass over the store.

Reading documents in input order means a join per window of inputs, and every window re-reads the whole
``raw_documents`` table: quadratic, and most of a large build's system time (buffer re-reads under the store's
memory limit). Instead, the layout comes first: one sorted query of sizes only (no content) places every document
at its offset in its pack. Then one unordered query streams the contents in storage order, and each document is
written straight to its planned place (``PayloadWriter.scattered``). The pack's bytes are those the in-order
writer produced; each pack is hashed once it is complete.
"""

from __future__ import annotations

import contextlib
from array import array
from collections.abc import Iterator
from typing import Any

from adapters.profiles._records import SORTS, sorted_rows
from core.bundle import PayloadContext, ScatteredFile
from core.errors import Cancelled, IntegrityError

FETCH = 2048

#: The run's raw documents in input order, without their content; ``rowid`` places each in the contents scan.
LAYOUT = """
SELECT i.ordinal, r.sha256, r.kind, r.media_type, r.format, r.document_id, r.size, i.subject, r.rowid
  FROM export_inputs i
  JOIN raw_documents r ON r.tenant = i.tenant AND r.sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ?
 ORDER BY i.ordinal
"""

#: The tenant's raw documents' contents in storage order: one scan, no join (a join may choose the table of
#: contents as its hash side, which does not fit the store's memory limit), no sort.
CONTENTS = "SELECT rowid, sha256, content FROM raw_documents WHERE tenant = ?"

#: :data:`CONTENTS` of the listed rows only (a delta's new documents): a few rows, not every document's content.
SOME_CONTENTS = "SELECT rowid, sha256, content FROM raw_documents WHERE tenant = ? AND rowid IN (SELECT unnest(?))"


def layout_rows(cursor: Any, params: list[Any]) -> Iterator[tuple[Any, ...]]:
    """(ordinal, sha256, kind, media type, format, document id, size, subject, rowid) of every input, in order."""
    return sorted_rows(cursor, LAYOUT, params)


class Placement:
    """Where each document's bytes go, by its row in ``raw_documents``: a file index, an offset, a size (flat arrays).

    A document placed twice (a run that lists it twice ships it twice) keeps its further places aside. Each place
    remembers a hash of the document's digest, so a row that is not the document planned (the store changed under
    the build) is caught instead of written.
    """

    def __init__(self) -> None:
        self.file = array("i")
        self.offset = array("q")
        self.size = array("q")
        self.check = array("q")
        self.more: dict[int, list[tuple[int, int, int]]] = {}
        self.rows: list[int] = []

    def place(self, rowid: int, sha256: str, file: int, offset: int, size: int) -> None:
        if rowid >= len(self.file):
            grow = max(rowid + 1 - len(self.file), len(self.file) // 2)
            self.file.extend([-1] * grow)
            self.offset.extend([0] * grow)
            self.size.extend([0] * grow)
            self.check.extend([0] * grow)
        if self.file[rowid] >= 0:
            self.more.setdefault(rowid, []).append((file, offset, size))
            return
        self.file[rowid] = file
        self.offset[rowid] = offset
        self.size[rowid] = size
        self.check[rowid] = hash(sha256)
        self.rows.append(rowid)

    def places(self, rowid: int) -> list[tuple[int, int, int]]:
        first = (self.file[rowid], self.offset[rowid], self.size[rowid])
        return [first, *self.more.get(rowid, ())]


def scatter_contents(
    ctx: PayloadContext,
    cursor: Any,
    placement: Placement,
    files: list[ScatteredFile],
    *,
    only_placed: bool = False,
) -> None:
    """Write every placed document's content to its file and offset, reading the store once, in storage order.

    The query runs on a cursor made from ``cursor`` and closed at the end (this may run on a second thread). A
    document whose content lives in the blob directory is read from there. A row that is not the document planned,
    or a size that differs from the one the layout recorded, means the store changed or is damaged: an integrity
    failure, never a shifted pack. Progress counts one input per document written. With ``only_placed`` only the
    placed rows are read (a delta's few new documents) instead of scanning every document's content.
    """
    tenant = ctx.spec.tenant
    written_total = 0
    if only_placed and not placement.rows:
        return  # nothing new to read (a delta whose base holds every document)
    # One large query at a time in the store's memory (this scan holds buffers while it streams), on a cursor
    # closed when it ends.
    with SORTS, contextlib.closing(cursor.cursor()) as cur:
        if only_placed:
            cur.execute(SOME_CONTENTS, [tenant, placement.rows])
        else:
            cur.execute(CONTENTS, [tenant])
        while rows := cur.fetchmany(FETCH):
            if ctx.cancel.is_cancelled():
                raise Cancelled("export cancelled")
            written = 0
            for rowid, sha, content in rows:
                if rowid >= len(placement.file) or placement.file[rowid] < 0:
                    continue
                if placement.check[rowid] != hash(sha):
                    raise IntegrityError(
                        f"raw document {sha} is not the one planned at its place in the store",
                        hint="the store changed while the bundle was built; run the export again",
                    )
                data = content if content is not None else ctx.raw_bytes(sha)
                for file, offset, size in placement.places(rowid):
                    if len(data) != size:
                        raise IntegrityError(
                            f"raw document {sha} has {len(data)} bytes where the store records {size}",
                            hint="the store is damaged; import the document again",
                        )
                    files[file].put(offset, data)
                    written += 1
            if written:
                ctx.sink.advance(written)
                written_total += written
    expected = len(placement.rows) + sum(len(v) for v in placement.more.values())
    if written_total != expected:
        raise IntegrityError(
            f"{expected - written_total} planned raw documents were not found in the store",
            hint="the store changed while the bundle was built; run the export again",
        )
