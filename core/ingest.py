"""The import pipeline: inputs -> detect format -> validate/normalize -> store, in batches.

Each document is all-or-nothing: it is fully parsed before any of its rows are written, and a
batch is written in one transaction (rolled back, blobs included, on failure). Importing the same
bytes again changes nothing: raw documents are keyed by (tenant, sha256) and duplicates are
recognised before parsing. Results are reported per document through ``on_result``, in input
order; nothing is printed here.

A large import (:data:`PARALLEL_MIN` documents or more, counted before it starts) parses on every
core: worker processes (:mod:`core.ingest_workers`) detect, validate and normalize batches into
Arrow tables while this process reads the inputs and is the store's one writer. Both ways run the
same :func:`parse_documents`, and the writer decides every duplicate in input order, so a parallel
import stores the same rows and reports the same outcomes as one in a single process.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import itertools
import os
import queue
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from core.clock import utcnow
from core.errors import BadInputError, Cancelled, ExitCode, IntegrityError, StellaError
from core.inputs import InputItem, InputLimits, count_documents, iter_inputs
from core.progress import NullObserver, Observer
from core.records import EpssScore, ParsedDocument
from core.sources import Candidate, SourceFormat
from core.store import BLOB_THRESHOLD, Store, transaction
from core.store.tables import RowBatch, StagedDocument
from core.tenants import DEFAULT_TENANT, validate_tenant

if TYPE_CHECKING:
    import duckdb

    from core.ingest_workers import ParserPool

DEFAULT_BATCH = 2000
#: Rows of one large table (EPSS scores) written per insert, so a file of millions of rows never becomes one batch.
ROW_CHUNK = 100_000
#: A batch is also written once its documents' bytes reach this, so large documents are not held many at a time.
BATCH_BYTES = 64 << 20
#: An import of at least this many documents (counted before it starts) parses in worker processes; a smaller one
#: would spend more on starting them (about half a second) than it gains.
PARALLEL_MIN = 4000
#: Worker processes of a parallel import: one per core, at most this many.
MAX_WORKERS = 4
#: Overrides the choice of worker processes (0: parse in the importing process), for operators and benchmarks.
WORKERS_ENV = "STELLA_IMPORT_WORKERS"
#: A parallel import's batches are smaller in bytes: several are in flight at once, each held by two processes.
PARALLEL_BATCH_BYTES = 16 << 20
#: ... and at most this many documents: the importer holds a few batches in flight (their bytes, then their rows),
#: and the writer commits several waiting batches together anyway (:data:`WRITE_GROUP`).
PARALLEL_BATCH = 1000
#: Parsed batches the writer thread commits together when they are waiting for it.
WRITE_GROUP = 4
_CANCELLED = "import cancelled; documents already committed stay, nothing partial"


class Outcome(StrEnum):
    IMPORTED = "imported"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    SKIPPED = "skipped"  # documentation beside the documents in a directory walk (core.inputs.is_documentation)


@dataclass
class FileResult:
    """What happened to one input document."""

    path: str
    outcome: Outcome
    sha256: str | None = None
    format: str | None = None
    kind: str | None = None
    document_id: str | None = None
    error: StellaError | None = None
    warnings: list[str] = field(default_factory=list)

    def __reduce__(self) -> tuple[type[FileResult], tuple[object, ...]]:
        # A worker sends thousands a batch: rebuilt by the constructor, unpickling takes about half the time.
        fields = (self.path, self.outcome, self.sha256, self.format, self.kind, self.document_id, self.error)
        return FileResult, (*fields, self.warnings)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"path": self.path, "outcome": str(self.outcome)}
        for key in ("sha256", "format", "kind", "document_id"):
            value = getattr(self, key)
            if value is not None:
                out["documentId" if key == "document_id" else key] = value
        if self.error is not None:
            out["reason"] = self.error.message
            out["error"] = self.error.code
            if self.error.pointer is not None:
                out["pointer"] = self.error.pointer
        if self.warnings:
            out["warnings"] = self.warnings
        return out


@dataclass
class ImportSummary:
    """Counts of one import, per outcome and per format."""

    import_id: str
    tenant: str
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    by_format: Counter[str] = field(default_factory=Counter)
    hostile_archives: int = 0

    @property
    def exit_code(self) -> ExitCode:
        """4 when an archive was refused as hostile (unsafe member names), else 3 when anything was rejected."""
        if self.hostile_archives:
            return ExitCode.INTEGRITY
        return ExitCode.BAD_INPUT if self.rejected else ExitCode.OK

    def to_dict(self) -> dict[str, object]:
        return {
            "importId": self.import_id,
            "tenant": self.tenant,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "byFormat": dict(sorted(self.by_format.items())),
        }


def detect(candidate: Candidate, sources: Sequence[SourceFormat]) -> SourceFormat | None:
    """The first adapter, in registry order, that recognises ``candidate``."""
    for source in sources:
        if source.sniff(candidate):
            return source
    return None


@functools.lru_cache(maxsize=8)
def _first_askers(sources: tuple[SourceFormat, ...]) -> tuple[tuple[SourceFormat, frozenset[str]], ...]:
    """The adapters that can say a document is theirs before the ones listed ahead of them are asked
    (``sniff_first``), each with the names of those ahead of it."""
    return tuple(
        (source, frozenset(s.name for s in sources[:index]))
        for index, source in enumerate(sources)
        if hasattr(source, "sniff_first")
    )


def _detect_first(candidate: Candidate, sources: tuple[SourceFormat, ...]) -> SourceFormat | None:
    """The adapter :func:`detect` would find, when one says so without asking those ahead of it; else None."""
    for source, before in _first_askers(sources):
        if source.sniff_first(candidate, before):  # type: ignore[attr-defined]
            return source
    return None


# -- parsing (in this process or in a worker) ---------------------------------------------------


@dataclass(frozen=True)
class ParseJob:
    """What parsing needs besides the documents. Sent once to each worker process, so it pickles: the adapters
    are module-level objects, pickled by reference to their class."""

    sources: tuple[SourceFormat, ...]
    forced: SourceFormat | None
    limits: InputLimits
    tenant: str


#: One document to parse: its index in its batch, its path, bytes and sha256.
Document = tuple[int, str, bytes, str]


@dataclass
class ParsedBatch:
    """What parsing a batch's documents produced.

    ``results`` has an outcome per document, by its index in the batch (a duplicate of an earlier document of the
    batch is one), and ``tables`` the rows of the imported ones, per store table. A worker leaves out the outcome
    of an EPSS snapshot, whose score rows stream from its bytes: the writer parses it again (``local`` holds its
    bytes). ``epss`` lists, in this process, the snapshots whose scores the writer streams.
    """

    results: dict[int, FileResult]
    tables: dict[str, pa.Table]
    epss: list[tuple[str, Collection[EpssScore]]] = field(default_factory=list)
    local: dict[int, bytes] = field(default_factory=dict)


def parse_document(job: ParseJob, path: str, data: bytes) -> ParsedDocument:
    """Detect (or take the forced format) and parse one document; raises the adapter's :class:`StellaError`."""
    candidate = Candidate(path=path, data=data)
    if len(data) > job.limits.max_parsed_document_bytes:
        # Too large to parse whole (detection itself would parse JSON): only a streaming format may take it.
        streaming = [s for s in ([job.forced] if job.forced else job.sources) if s.streams]
        source = detect(candidate, streaming)
        if source is None:
            raise BadInputError(
                f"document is {len(data)} bytes, over the {job.limits.max_parsed_document_bytes}-byte "
                "limit for a document parsed whole (every format but EPSS CSV)",
                path=path,
                hint="split the document; stella holds a parsed document in memory",
            )
        return source.parse(candidate)
    # The likely format (OSV, in a feed of advisories) first, when it proves no format ahead of it would claim it.
    source = job.forced or _detect_first(candidate, job.sources) or detect(candidate, job.sources)
    if source is None:
        reason = candidate.json_error if candidate.json is None and candidate.data[:1] in (b"{", b"[") else None
        raise BadInputError(
            reason or "unrecognised format: not any of the formats stella imports",
            path=path,
            hint="force one with --format; see `stella import --help` for the list",
        )
    return source.parse(candidate)


def parse_documents(
    job: ParseJob, documents: Iterable[Document], imported_at: datetime, *, in_worker: bool = False
) -> ParsedBatch:
    """Parse each document and turn the imported ones into rows: the work a worker process does for a batch.

    A document whose bytes repeat an earlier one's that imported is a duplicate; one that fails is rejected with
    its error (its path set). Documents over :data:`core.store.BLOB_THRESHOLD` get no content column (their bytes
    go to the blob directory).
    """
    batch = RowBatch()
    results: dict[int, FileResult] = {}
    epss: list[tuple[str, Collection[EpssScore]]] = []
    local: dict[int, bytes] = {}
    seen: set[str] = set()
    for index, path, data, sha in documents:
        if sha in seen:
            results[index] = FileResult(path, Outcome.DUPLICATE, sha256=sha)
            continue
        try:
            parsed = parse_document(job, path, data)
        except StellaError as exc:
            if exc.path is None:
                exc.path = path
            results[index] = FileResult(path, Outcome.REJECTED, sha256=sha, error=exc)
            continue
        if parsed.epss is not None:
            if in_worker:  # its score rows stream from its bytes in the writer, which parses it again
                local[index] = data
                continue
            epss.append((sha, parsed.epss.scores))
        seen.add(sha)
        # A worker leaves the content out: the writer holds the bytes and puts them in (see _with_content), so they
        # cross the pipe once.
        content = None if in_worker or len(data) > BLOB_THRESHOLD else data
        batch.add(job.tenant, StagedDocument(sha, len(data), path, parsed, content), imported_at)
        results[index] = FileResult(
            path,
            Outcome.IMPORTED,
            sha256=sha,
            format=parsed.format,
            kind=str(parsed.kind),
            document_id=parsed.document_id,
            warnings=list(parsed.warnings),
        )
    return ParsedBatch(results, batch.arrow_tables(), epss, local)


# -- the importer ------------------------------------------------------------------------------


class Importer:
    """Imports documents into one tenant of a store."""

    def __init__(
        self,
        store: Store,
        sources: Sequence[SourceFormat],
        *,
        tenant: str = DEFAULT_TENANT,
        forced_format: SourceFormat | None = None,
        sink: Observer | None = None,
        on_result: Callable[[FileResult], None] | None = None,
        batch_size: int = DEFAULT_BATCH,
        limits: InputLimits | None = None,
        workers: int | None = None,
    ) -> None:
        """``workers``: parser processes; ``None`` chooses by size (one per core from :data:`PARALLEL_MIN`
        counted documents on), ``0`` parses in this process."""
        self.store = store
        self.sources = sources
        self.tenant = validate_tenant(tenant)
        self.forced = forced_format
        self.sink = sink or NullObserver()
        self.on_result = on_result or (lambda _r: None)
        self.batch_size = batch_size
        self.limits = limits or InputLimits()
        self.workers = workers

    def run(
        self, paths: Sequence[Path], *, readers: Mapping[Path, Callable[[], Iterator[InputItem]]] | None = None
    ) -> ImportSummary:
        """Import everything under ``paths``; returns the summary (rejections do not raise).

        ``readers`` reads a path otherwise than as files and archives: the documents of a verified bundle.
        """
        summary = ImportSummary(import_id=str(uuid.uuid4()), tenant=self.tenant)
        started = utcnow()
        # Counted first (a directory walk, a zip's central directory), so progress shows a real total.
        total = None if readers else count_documents(list(paths))
        self.sink.start("import", total)
        job = ParseJob(tuple(self.sources), self.forced, self.limits, self.tenant)
        workers = self._worker_count(total)
        batch_bytes = BATCH_BYTES if workers == 0 else PARALLEL_BATCH_BYTES
        batch_size = self.batch_size if workers == 0 else min(self.batch_size, PARALLEL_BATCH)
        with _collector_tuned(), self.store.bulk_writes(), _Pipeline(self, summary, job, workers, total) as pipeline:
            pending: list[InputItem] = []
            pending_bytes = 0
            for path in paths:
                try:
                    read = (readers or {}).get(path)
                    for item in read() if read is not None else iter_inputs([path], self.limits):
                        if self.sink.is_cancelled():
                            raise Cancelled(_CANCELLED)
                        if item.error is not None:
                            pipeline.emit(FileResult(item.path, Outcome.REJECTED, error=item.error))
                            continue
                        if item.skipped is not None:
                            pipeline.emit(FileResult(item.path, Outcome.SKIPPED, warnings=[item.skipped]))
                            continue
                        pending.append(item)
                        pending_bytes += len(item.data)
                        if len(pending) >= batch_size or pending_bytes >= batch_bytes:
                            pipeline.submit(pending)
                            pending, pending_bytes = [], 0
                except (BadInputError, IntegrityError) as exc:
                    # A damaged or hostile container: refused as a whole, before any of its members was staged.
                    pipeline.submit(pending)
                    pending, pending_bytes = [], 0
                    pipeline.emit(FileResult(exc.path or str(path), Outcome.REJECTED, error=exc))
            pipeline.submit(pending)
            pipeline.finish()
        self._log(summary, started, paths)
        self.sink.finish("import")
        return summary

    # -- internals -------------------------------------------------------------------------
    def _worker_count(self, total: int | None) -> int:
        if self.workers is not None:
            return max(0, self.workers)
        if os.environ.get(WORKERS_ENV, "").isdigit():
            return int(os.environ[WORKERS_ENV])
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        # In the single binary a spawned worker starts the binary again; app/cli.py's freeze_support() makes it one.
        if total is None or total < PARALLEL_MIN or cores < 2:
            return 0
        return min(cores, MAX_WORKERS)

    def _emit(self, summary: ImportSummary, result: FileResult) -> None:
        if result.outcome is Outcome.IMPORTED:
            summary.imported += 1
            summary.by_format[result.format or "?"] += 1
        elif result.outcome is Outcome.DUPLICATE:
            summary.duplicates += 1
        elif result.outcome is Outcome.SKIPPED:
            summary.skipped += 1
        else:
            summary.rejected += 1
            if isinstance(result.error, IntegrityError):
                summary.hostile_archives += 1
        self.sink.advance(1, detail=result.path)
        self.on_result(result)

    def _write_epss_scores(
        self, sha256: str, scores: Iterable[EpssScore], *, cur: duckdb.DuckDBPyConnection | None = None
    ) -> None:
        """Stream a snapshot's scores into the open transaction, :data:`ROW_CHUNK` rows at a time."""
        rows = iter(scores)
        while chunk := list(itertools.islice(rows, ROW_CHUNK)):
            batch = RowBatch()
            batch.add_epss_scores(self.tenant, sha256, chunk)
            self.store.write_batch(batch, cur=cur)

    def _log(self, summary: ImportSummary, started: object, paths: Sequence[Path]) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO import_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    self.tenant,
                    summary.import_id,
                    started,
                    utcnow(),
                    summary.imported,
                    summary.duplicates,
                    summary.rejected,
                    [str(p) for p in paths],
                ],
            )


@contextlib.contextmanager
def _collector_tuned() -> Iterator[None]:
    """Run an import with Python's cycle collector out of the way.

    An import allocates millions of short-lived containers (parsed JSON, records) and creates no cycles worth
    collecting while it runs; the default thresholds would walk the young generation every 700 allocations and the
    long-lived heap (modules, schemas) at every full collection. The heap as it is when the import starts is frozen
    (never scanned), young collections are rarer, and both come back as they were when it ends.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], 50_000), thresholds[1], thresholds[2])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@dataclass
class _Batch:
    """A batch between being read and being written: every document's path and digest, in input order."""

    seq: int
    documents: list[tuple[str, str]]  # (path, sha256)
    existing: set[str]  # already in the store when the batch was read
    overlap: set[str]  # also in a batch still in flight when this one was read: decided when it is written
    big: dict[str, bytes]  # bytes over BLOB_THRESHOLD, for the blob directory (a worker never gets them)
    small: dict[str, bytes]  # the other documents' bytes, for the content column (a worker does not send them back)
    imported_at: datetime
    parsed: ParsedBatch | None = None
    results: list[FileResult] | None = None  # set once the batch is committed


class _Pipeline:
    """Batches in input order: parsed here or by worker processes, written one at a time, outcomes emitted in order.

    Without workers a batch is parsed, written and reported before the next one is read, as it always was. With
    workers this thread reads and hashes the inputs and hands batches out, a writer thread writes them (DuckDB does
    not hold the GIL while it inserts and commits, so reading goes on meanwhile), and this thread reports each
    batch once it is committed. Outcomes come in the order a single-process import gives them: an input-level
    rejection right away when no batch is in flight, else after the batches read before it.
    """

    def __init__(
        self, importer: Importer, summary: ImportSummary, job: ParseJob, workers: int, total: int | None
    ) -> None:
        self.importer = importer
        self.store = importer.store
        self.summary = summary
        self.job = job
        self.workers = workers
        self.pool: ParserPool | None = None
        self.queue: deque[_Batch | FileResult] = deque()
        self.in_flight: Counter[str] = Counter()
        self.total = total
        self.committed: _DigestFilter | None = None
        self.batches = 0
        self.handed = 0  # batches given to the writer thread, in order
        self.unwritten = 0
        self.writer: threading.Thread | None = None
        self.to_write: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self.stopping = False
        self.failure: BaseException | None = None

    def __enter__(self) -> _Pipeline:
        if self.workers:
            from core.ingest_workers import ParserPool  # only a large import starts processes

            self.pool = ParserPool(self.workers, self.job)
            if not self.store.has_documents(self.importer.tenant):
                # Nothing of this tenant was stored before: only what this import commits can be a duplicate, and
                # the store is asked only about digests the filter has seen (not scanned for every batch).
                self.committed = _DigestFilter(self.total or 0)
            self.writer = threading.Thread(target=self._write_all, name="stella-import-writer", daemon=True)
            self.writer.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            if self.writer is not None:
                # After an error or a cancel the writer finishes the transaction it is in and writes no more.
                self.stopping = exc_type is not None
                self.to_write.put(None)
                self.writer.join()
                if exc_type is not None and issubclass(exc_type, Cancelled):
                    self._emit_ready()  # what was committed before the cancel is reported, as it always was
        finally:
            if self.pool is not None:
                # The workers are stopped at once after an error or a cancel; what they held is not written.
                self.pool.close(stop=exc_type is not None)

    def emit(self, result: FileResult) -> None:
        if self.queue:
            self.queue.append(result)
        else:
            self.importer._emit(self.summary, result)

    def submit(self, items: list[InputItem]) -> None:
        """Hash a batch, set aside what the store already holds, and parse the rest (here or in a worker)."""
        if not items:
            return
        digests = [hashlib.sha256(it.data).hexdigest() for it in items]
        if self.committed is None:
            existing = self.store.existing_digests(self.importer.tenant, set(digests))
        else:
            maybe = {sha for sha in digests if sha in self.committed}
            existing = self.store.existing_digests(self.importer.tenant, maybe) if maybe else set()
        overlap = {sha for sha in digests if sha not in existing and self.in_flight[sha]}
        documents: list[Document] = []
        big: dict[str, bytes] = {}
        small: dict[str, bytes] = {}
        for index, (item, sha) in enumerate(zip(items, digests, strict=True)):
            if sha in existing:
                continue
            if len(item.data) > BLOB_THRESHOLD:
                big[sha] = item.data
                if self.pool is not None:
                    continue  # parsed by the writer, which holds its bytes anyway
            elif self.pool is not None:
                small[sha] = item.data
            documents.append((index, item.path, item.data, sha))
        paths = [(it.path, sha) for it, sha in zip(items, digests, strict=True)]
        batch = _Batch(self.batches, paths, existing, overlap, big, small, utcnow())
        self.batches += 1
        if self.pool is None:
            batch.parsed = parse_documents(self.job, documents, batch.imported_at)
            for result in self._write(batch, None):
                self.importer._emit(self.summary, result)
            return
        self.queue.append(batch)
        self.unwritten += 1
        self.in_flight.update(digests)
        self.pool.submit(batch.seq, (documents, batch.imported_at))
        self._pump(wait_all=False)

    def finish(self) -> None:
        """Write every batch still in flight and emit what is left, in order."""
        if self.pool is not None:
            self._pump(wait_all=True)

    def _pump(self, *, wait_all: bool) -> None:
        assert self.pool is not None
        while True:
            if self.failure is not None:
                raise self.failure
            self._emit_ready()
            if not self.queue:
                return
            for batch in self.queue:  # parsed batches go to the writer in input order
                if isinstance(batch, _Batch) and batch.seq == self.handed and batch.parsed is not None:
                    self.to_write.put(batch)
                    self.handed += 1
            must_wait = wait_all or self.unwritten >= self.pool.window
            replies = self.pool.collect(timeout=0.01 if must_wait else 0)
            by_seq = {b.seq: b for b in self.queue if isinstance(b, _Batch)}
            for seq, parsed in replies:
                by_seq[seq].parsed = parsed
            if not replies and not must_wait:
                return
            if self.importer.sink.is_cancelled():
                raise Cancelled(_CANCELLED)

    def _emit_ready(self) -> None:
        while self.queue:
            head = self.queue[0]
            if isinstance(head, _Batch):
                if head.results is None:
                    return
                self.unwritten -= 1
                in_flight = self.in_flight
                for _, sha in head.documents:  # each was counted once per occurrence when the batch was read
                    left = in_flight[sha] - 1
                    if left:
                        in_flight[sha] = left
                    else:
                        del in_flight[sha]
                results = head.results
                if self.committed is not None:
                    for result in results:
                        if result.outcome is Outcome.IMPORTED and result.sha256 is not None:
                            self.committed.add(result.sha256)
            else:
                results = [head]
            self.queue.popleft()
            for result in results:
                self.importer._emit(self.summary, result)

    def _write_all(self) -> None:
        """The writer thread: batches in order, with its own cursor; the first failure stops it.

        The batches already parsed and waiting when the writer is free (at most :data:`WRITE_GROUP`) are written in
        one transaction: each still whole or not at all, and a commit costs about as much for one batch as for
        several.
        """
        cur = self.store.cursor()
        try:
            ended = False
            while not ended and (batch := self.to_write.get()) is not None:
                group = [batch]
                while len(group) < WRITE_GROUP:
                    try:
                        more = self.to_write.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        ended = True
                        break
                    group.append(more)
                if self.stopping or self.failure is not None:
                    continue
                try:
                    written = self._write_group(group, cur)
                except BaseException as exc:  # raised again in the importer's thread
                    self.failure = exc
                    continue
                for each, results in zip(group, written, strict=True):
                    each.results = results
        finally:
            cur.close()

    def _write_group(self, group: list[_Batch], cur: duckdb.DuckDBPyConnection) -> list[list[FileResult]]:
        """Write batches in input order in one transaction; each batch's outcomes are decided once the batches
        before it are written (inside the transaction, which sees them)."""
        new_blobs: list[str] = []
        out: list[list[FileResult]] = []
        try:
            with transaction(cur):
                for batch in group:
                    results, tables, epss, blobs = self._decide(batch, cur)
                    for sha in blobs:
                        if self.store.put_blob(sha, batch.big[sha]):
                            new_blobs.append(sha)
                    for each in tables:
                        self.store.write_tables(each, cur=cur)
                    for sha, scores in epss:
                        self.importer._write_epss_scores(sha, scores, cur=cur)
                    out.append(results)
        except BaseException:
            for sha in new_blobs:
                self.store.remove_blob(sha)
            raise
        return out

    def _write(self, batch: _Batch, cur: duckdb.DuckDBPyConnection | None) -> list[FileResult]:
        """Decide each document's outcome in input order and write the imported ones in one transaction."""
        results, tables, epss, imported_blobs = self._decide(batch, cur)
        new_blobs: list[str] = []
        try:
            for sha in imported_blobs:
                if self.store.put_blob(sha, batch.big[sha]):
                    new_blobs.append(sha)
            if any(tables) or epss:
                with transaction(cur or self.store.conn):
                    for each in tables:
                        self.store.write_tables(each, cur=cur)
                    for sha, scores in epss:
                        self.importer._write_epss_scores(sha, scores, cur=cur)
        except BaseException:
            for sha in new_blobs:
                self.store.remove_blob(sha)
            raise
        return results

    def _decide(
        self, batch: _Batch, cur: duckdb.DuckDBPyConnection | None
    ) -> tuple[list[FileResult], list[dict[str, pa.Table]], list[tuple[str, Collection[EpssScore]]], list[str]]:
        """Each document's outcome in input order, the tables and EPSS scores to write, and the blobs to store."""
        parsed = batch.parsed
        assert parsed is not None
        tenant = self.importer.tenant
        existing = batch.existing
        if batch.overlap:  # an earlier batch held the same bytes; it is written now, so the store knows
            existing = existing | self.store.existing_digests(tenant, batch.overlap, cur=cur)
        seen: set[str] = set()
        results: list[FileResult] = []
        extra: list[ParsedBatch] = []
        for index, (path, sha) in enumerate(batch.documents):
            if sha in existing or sha in seen:
                results.append(FileResult(path, Outcome.DUPLICATE, sha256=sha))
                continue
            result = parsed.results.get(index)
            if result is None:  # a document a worker does not finish (large, or EPSS): parsed here
                data = batch.big[sha] if sha in batch.big else parsed.local[index]
                alone = parse_documents(self.job, [(index, path, data, sha)], batch.imported_at)
                extra.append(alone)
                result = alone.results[index]
            if result.outcome is Outcome.IMPORTED:
                seen.add(sha)
            results.append(result)
        late = {r.sha256 for r in parsed.results.values() if r.outcome is Outcome.IMPORTED} & existing
        tables = [_without(parsed.tables, late) if late else parsed.tables] + [e.tables for e in extra]
        if cur is not None:  # from workers: the content column is the writer's to fill
            tables[0] = _with_content(tables[0], batch.small)
        epss = parsed.epss + [item for e in extra for item in e.epss]
        blobs = [r.sha256 for r in results if r.outcome is Outcome.IMPORTED and r.sha256 in batch.big]
        return results, tables, epss, [sha for sha in blobs if sha is not None]


class _DigestFilter:
    """A Bloom filter of sha256 digests (hex): says "maybe" for every digest added, rarely for another.

    About 32 bits per digest and six probes: when full, about 1 in 40,000 other digests is a "maybe", so a batch of
    2,000 asks the store about once in 20 batches. (With 10 bits and three probes, 1 in 60: nearly every batch of a
    large import asked, and the store answers by scanning its documents.) A digest's own bits are uniformly random,
    so six 40-bit slices of it are the hashes.
    """

    def __init__(self, capacity: int) -> None:
        self.bits = max(1 << 23, capacity * 32)
        self.array = bytearray((self.bits + 7) // 8)

    def _probes(self, sha256: str) -> list[int]:
        value, bits = int(sha256[:60], 16), self.bits
        return [(value >> shift) % bits for shift in _PROBE_SHIFTS]

    def add(self, sha256: str) -> None:
        array = self.array
        for bit in self._probes(sha256):
            array[bit >> 3] |= 1 << (bit & 7)

    def __contains__(self, sha256: str) -> bool:
        array = self.array
        return all(array[bit >> 3] & (1 << (bit & 7)) for bit in self._probes(sha256))


_PROBE_SHIFTS = (0, 40, 80, 120, 160, 200)


def _with_content(tables: dict[str, pa.Table], contents: Mapping[str, bytes]) -> dict[str, pa.Table]:
    """``tables`` with the raw documents' content column filled from ``contents`` (by sha256; None for a blob)."""
    raw = tables.get("raw_documents")
    if raw is None:
        return tables
    column = raw.schema.get_field_index("content")
    values = pa.array([contents.get(sha) for sha in raw["sha256"].to_pylist()], pa.binary())
    return {**tables, "raw_documents": raw.set_column(column, raw.schema.field(column), values)}


def _without(tables: dict[str, pa.Table], digests: set[str | None]) -> dict[str, pa.Table]:
    """``tables`` without the rows of the documents ``digests`` (found in the store only when written)."""
    drop = pa.array(sorted(d for d in digests if d is not None), pa.string())
    out: dict[str, pa.Table] = {}
    for name, table in tables.items():
        column = "sha256" if name == "raw_documents" else "document_sha256"
        kept = table.filter(pc.invert(pc.is_in(table[column], value_set=drop)))
        if kept.num_rows:
            out[name] = kept
    return out
