"""The import pipeline: inputs -> detect format -> validate/normalize -> store, in batches.

Each document is all-or-nothing: it is fully parsed before any of its rows are written, and a
batch is written in one transaction (rolled back, blobs included, on failure). Importing the same
bytes again changes nothing: raw documents are keyed by (tenant, sha256) and duplicates are
recognised before parsing. Results are reported per document through ``on_result``; nothing is
printed here.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from core.clock import utcnow
from core.errors import BadInputError, Cancelled, ExitCode, IntegrityError, StellaError, UsageError
from core.inputs import InputItem, InputLimits, count_documents, iter_inputs
from core.progress import NullObserver, Observer
from core.records import EpssScore, ParsedDocument
from core.sources import Candidate, SourceFormat
from core.store import BLOB_THRESHOLD, Store
from core.store.tables import RowBatch, StagedDocument

DEFAULT_TENANT = "default"
DEFAULT_BATCH = 2000
#: Rows of one large table (EPSS scores) written per insert, so a file of millions of rows never becomes one batch.
ROW_CHUNK = 100_000
#: A batch is also written once its documents' bytes reach this, so large documents are not held many at a time.
BATCH_BYTES = 64 << 20


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


def validate_tenant(tenant: str) -> str:
    """Tenants are short identifiers: letters, digits, '-', '_' and '.'."""
    ok = tenant and len(tenant) <= 64 and all(c.isalnum() or c in "-_." for c in tenant)
    if not ok:
        raise UsageError(f"invalid tenant {tenant!r}", hint="use letters, digits, '-', '_' or '.' (at most 64)")
    return tenant


def detect(candidate: Candidate, sources: Sequence[SourceFormat]) -> SourceFormat | None:
    """The first adapter, in registry order, that recognises ``candidate``."""
    for source in sources:
        if source.sniff(candidate):
            return source
    return None


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
    ) -> None:
        self.store = store
        self.sources = sources
        self.tenant = validate_tenant(tenant)
        self.forced = forced_format
        self.sink = sink or NullObserver()
        self.on_result = on_result or (lambda _r: None)
        self.batch_size = batch_size
        self.limits = limits or InputLimits()

    def run(
        self, paths: Sequence[Path], *, readers: Mapping[Path, Callable[[], Iterator[InputItem]]] | None = None
    ) -> ImportSummary:
        """Import everything under ``paths``; returns the summary (rejections do not raise).

        ``readers`` reads a path otherwise than as files and archives: the documents of a verified bundle.
        """
        summary = ImportSummary(import_id=str(uuid.uuid4()), tenant=self.tenant)
        started = utcnow()
        # Counted first (a directory walk, a zip's central directory), so progress shows a real total.
        self.sink.start("import", None if readers else count_documents(list(paths)))
        pending: list[InputItem] = []
        pending_bytes = 0
        for path in paths:
            try:
                read = (readers or {}).get(path)
                for item in read() if read is not None else iter_inputs([path], self.limits):
                    if self.sink.is_cancelled():
                        raise Cancelled("import cancelled; documents already committed stay, nothing partial")
                    if item.error is not None:
                        self._emit(summary, FileResult(item.path, Outcome.REJECTED, error=item.error))
                        continue
                    if item.skipped is not None:
                        self._emit(summary, FileResult(item.path, Outcome.SKIPPED, warnings=[item.skipped]))
                        continue
                    pending.append(item)
                    pending_bytes += len(item.data)
                    if len(pending) >= self.batch_size or pending_bytes >= BATCH_BYTES:
                        self._flush(pending, summary)
                        pending, pending_bytes = [], 0
            except (BadInputError, IntegrityError) as exc:
                # A damaged or hostile container: refused as a whole, before any of its members was staged.
                self._flush(pending, summary)
                pending, pending_bytes = [], 0
                self._emit(summary, FileResult(exc.path or str(path), Outcome.REJECTED, error=exc))
        self._flush(pending, summary)
        self._log(summary, started, paths)
        self.sink.finish("import")
        return summary

    # -- internals -------------------------------------------------------------------------
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

    def _parse(self, item: InputItem) -> ParsedDocument:
        candidate = Candidate(path=item.path, data=item.data)
        if len(item.data) > self.limits.max_parsed_document_bytes:
            # Too large to parse whole (detection itself would parse JSON): only a streaming format may take it.
            streaming = [s for s in ([self.forced] if self.forced else self.sources) if s.streams]
            source = detect(candidate, streaming)
            if source is None:
                raise BadInputError(
                    f"document is {len(item.data)} bytes, over the {self.limits.max_parsed_document_bytes}-byte "
                    "limit for a document parsed whole (every format but EPSS CSV)",
                    path=item.path,
                    hint="split the document; stella holds a parsed document in memory",
                )
            return source.parse(candidate)
        source = self.forced or detect(candidate, self.sources)
        if source is None:
            reason = candidate.json_error if candidate.json is None and candidate.data[:1] in (b"{", b"[") else None
            raise BadInputError(
                reason or "unrecognised format: not any of the formats stella imports",
                path=item.path,
                hint="force one with --format; see `stella import --help` for the list",
            )
        return source.parse(candidate)

    def _flush(self, items: list[InputItem], summary: ImportSummary) -> None:
        if not items:
            return
        digests = [hashlib.sha256(it.data).hexdigest() for it in items]
        existing = self.store.existing_digests(self.tenant, set(digests))
        seen: set[str] = set()
        staged: list[tuple[StagedDocument, FileResult]] = []
        results: list[FileResult] = []
        for item, sha in zip(items, digests, strict=True):
            if sha in existing or sha in seen:
                results.append(FileResult(item.path, Outcome.DUPLICATE, sha256=sha))
                continue
            try:
                parsed = self._parse(item)
            except StellaError as exc:
                if exc.path is None:
                    exc.path = item.path
                results.append(FileResult(item.path, Outcome.REJECTED, sha256=sha, error=exc))
                continue
            seen.add(sha)
            in_blobs = len(item.data) > BLOB_THRESHOLD
            doc = StagedDocument(sha, len(item.data), item.path, parsed, None if in_blobs else item.data)
            res = FileResult(
                item.path,
                Outcome.IMPORTED,
                sha256=sha,
                format=parsed.format,
                kind=str(parsed.kind),
                document_id=parsed.document_id,
                warnings=list(parsed.warnings),
            )
            staged.append((doc, res))
            results.append(res)
        big = {sha: it.data for it, sha in zip(items, digests, strict=True) if len(it.data) > BLOB_THRESHOLD}
        self._write(staged, big)
        for res in results:
            self._emit(summary, res)

    def _write(self, staged: list[tuple[StagedDocument, FileResult]], big: dict[str, bytes]) -> None:
        if not staged:
            return
        batch = RowBatch()
        now = utcnow()
        for doc, _ in staged:
            batch.add(self.tenant, doc, now)
        new_blobs: list[str] = []
        try:
            for doc, _ in staged:
                if doc.content is None and self.store.put_blob(doc.sha256, big[doc.sha256]):
                    new_blobs.append(doc.sha256)
            with self.store.transaction():
                self.store.write_batch(batch)
                for doc, _ in staged:
                    if doc.parsed.epss is not None:
                        self._write_epss_scores(doc.sha256, doc.parsed.epss.scores)
        except BaseException:
            for sha in new_blobs:
                self.store.remove_blob(sha)
            raise

    def _write_epss_scores(self, sha256: str, scores: Iterable[EpssScore]) -> None:
        """Stream a snapshot's scores into the open transaction, :data:`ROW_CHUNK` rows at a time."""
        rows = iter(scores)
        while chunk := list(itertools.islice(rows, ROW_CHUNK)):
            batch = RowBatch()
            batch.add_epss_scores(self.tenant, sha256, chunk)
            self.store.write_batch(batch)

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
