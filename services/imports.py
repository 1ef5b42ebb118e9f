"""Import documents into the store: files, directories and archives, each detected (or forced) and validated.

`stella import` and the TUI's import screen call :func:`import_files`. A signed stella bundle among the paths (a
tar whose first member is ``export.json``) is not read as an archive: it is verified first, as `stella verify`
verifies it (the trust store, or the keys given), and only if it verified are its raw documents imported, byte for
byte, each recorded with the bundle as its source (``BUNDLE!data/raw/<kind>.pack#<sha256>``). A bundle that does
not verify imports nothing, and neither does the rest of the command. The receive registry's ``json`` entry
(:data:`services.receive.JSON`) runs the same import for the TUI's receive screen.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import orjson

from adapters.sources.registry import SOURCES, get_format
from core.contract.json_raw import INDEX_SUFFIX, PACK_SUFFIX, RAW_DIR, index_path, pack_path
from core.errors import BadInputError, IntegrityError, UsageError
from core.home import Home
from core.ingest import FileResult, Importer, ImportSummary, Outcome
from core.inputs import DEFAULT_MAX_DOCUMENT, InputItem, is_stella_bundle
from core.progress import Observer
from core.store import Store
from core.tenants import DEFAULT_TENANT
from services.receive import JSON, ReceiveRequest, not_verified, own_tenant, receivable_for, verify_any
from verify.bundle import VerifyReport
from verify.extract import KindVerification


def import_files(
    home: Home,
    paths: Sequence[Path],
    *,
    tenant: str = DEFAULT_TENANT,
    format_name: str | None = None,
    observer: Observer | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    key_files: Sequence[Path] = (),
    at: datetime | None = None,
    on_bundle: Callable[[VerifyReport], None] | None = None,
    store_lock: AbstractContextManager[object] | None = None,
) -> ImportSummary:
    """Import every document under ``paths`` into ``tenant``; ``on_result`` hears each file's outcome.

    ``format_name`` skips detection. ``observer`` hears progress and stops the import (raising
    :class:`core.errors.Cancelled`) when it says it is cancelled. The summary's ``exit_code`` is the command's.
    A stella bundle in ``paths`` is verified first against ``key_files`` (else the trust store) at ``at`` (else
    now), and ``on_bundle`` hears its report; one that does not verify raises its error (exit 4, 5 or 6, as
    `stella verify` says) before anything is imported.
    """
    forced = get_format(format_name) if format_name else None
    bundles = [p for p in paths if p.is_file() and is_stella_bundle(p)]
    if bundles and forced is not None:
        raise UsageError("--format does not apply to a stella bundle", path=str(bundles[0]))
    with tempfile.TemporaryDirectory(prefix="stella-import-") as work:
        readers: dict[Path, Callable[[], Iterator[InputItem]]] = {}
        for number, bundle in enumerate(bundles):
            verified = verify_for_import(
                home, bundle, tenant, key_files=key_files, at=at, observer=observer, work=Path(work) / str(number)
            )
            if on_bundle is not None:
                on_bundle(verified.report)
            readers[bundle] = verified.documents
        with store_lock or nullcontext(), Store.open(home) as store:
            importer = Importer(store, SOURCES, tenant=tenant, forced_format=forced, sink=observer, on_result=on_result)
            return importer.run(list(paths), readers=readers)


@dataclass(frozen=True)
class _Document:
    pack: Path
    label: str
    offset: int
    size: int


@dataclass
class VerifiedBundle:
    """A bundle that verified, and its raw documents, copied out of it and checked against its signed index."""

    report: VerifyReport
    _documents: list[_Document] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self._documents)

    def documents(self) -> Iterator[InputItem]:
        """Each raw document, byte for byte, labelled ``BUNDLE!PACK#SHA256`` (its source in the store)."""
        with ExitStack() as stack:
            packs: dict[Path, BinaryIO] = {}
            for doc in self._documents:
                if doc.size > DEFAULT_MAX_DOCUMENT:
                    message = f"document is {doc.size} bytes, over the {DEFAULT_MAX_DOCUMENT}-byte limit"
                    yield InputItem(doc.label, error=BadInputError(message, path=doc.label))
                    continue
                if doc.pack not in packs:
                    packs[doc.pack] = stack.enter_context(doc.pack.open("rb"))
                fh = packs[doc.pack]
                fh.seek(doc.offset)
                yield InputItem(doc.label, fh.read(doc.size))


class _RawDocuments(KindVerification):
    """The checks `stella import` adds to a bundle's verification: ``json files`` (the packs and their indexes are
    the ones ``export.json`` lists, read a second time) and ``json documents`` (each document is where its signed
    index says, with the digest it lists)."""

    kind = "json"

    def documents(self, bundle: Path) -> list[_Document]:
        files = self.read_files(str(self.report.manifest.sha256), (RAW_DIR,), (), "raw document")
        packs = {p.removeprefix(RAW_DIR).removesuffix(PACK_SUFFIX) for p in files if p.endswith(PACK_SUFFIX)}
        indexes = {p.removeprefix(RAW_DIR).removesuffix(INDEX_SUFFIX) for p in files if p.endswith(INDEX_SUFFIX)}
        if packs != indexes or len(files) != len(packs) + len(indexes):
            odd = sorted(set(files) - {pack_path(k) for k in packs & indexes} - {index_path(k) for k in packs})
            raise self.failed(
                "json documents", IntegrityError("a raw-document pack without its index", path=(odd or [RAW_DIR])[0])
            )
        out: list[_Document] = []
        for kind in sorted(packs):
            out += self._pack(bundle, kind, files[pack_path(kind)], files[index_path(kind)])
        self.passed("json documents", f"{len(out)} raw documents match their signed index")
        return out

    def _pack(self, bundle: Path, kind: str, pack: Path, index: Path) -> list[_Document]:
        name = pack_path(kind)
        size = pack.stat().st_size
        out: list[_Document] = []
        expected = 0
        with index.open("rb") as lines, pack.open("rb") as data:
            for number, line in enumerate(lines, 1):
                try:
                    entry = orjson.loads(line)
                    sha, offset, length = str(entry["sha256"]), int(entry["offset"]), int(entry["size"])
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    raise self.failed(
                        "json documents", BadInputError(f"line {number} is not an index entry", path=index_path(kind))
                    ) from None
                # The documents lie end to end, in the index's order, and fill the pack.
                if offset != expected or length < 0 or offset + length > size:
                    raise self.failed(
                        "json documents", IntegrityError(f"line {number} points outside the pack", path=name)
                    )
                expected = offset + length
                data.seek(offset)
                digest = hashlib.sha256()
                left = length
                while left:
                    chunk = data.read(min(left, 1 << 20))
                    digest.update(chunk)
                    left -= len(chunk)
                if digest.hexdigest() != sha:
                    raise self.failed(
                        "json documents",
                        IntegrityError(f"the document at line {number} differs from its indexed sha256", path=name),
                    )
                out.append(_Document(pack, f"{bundle}!{name}#{sha}", offset, length))
        if expected != size:
            raise self.failed("json documents", IntegrityError("bytes after the last indexed document", path=name))
        return out


def verify_for_import(
    home: Home,
    bundle: Path,
    tenant: str | None,
    *,
    key_files: Sequence[Path] = (),
    at: datetime | None = None,
    observer: Observer | None = None,
    work: Path,
) -> VerifiedBundle:
    """Verify ``bundle`` as `stella verify` does, then copy its raw documents out under ``work`` and check each
    against the signed index. Raises the verification's error if it did not verify; refuses a bundle of a profile
    that carries no raw documents, an encrypted one, and one of another tenant than ``tenant`` (None: its own)."""
    report = verify_any(home, ReceiveRequest(bundle, key_files=tuple(key_files), at=at), observer)
    if not report.ok:
        raise not_verified(report)
    manifest = report.manifest
    receivable = receivable_for(manifest)
    if receivable is not JSON:
        command = receivable.command if receivable is not None else "stella verify"
        raise BadInputError(
            f"a {manifest.profile.id} bundle carries no documents for `stella import`",
            path=str(bundle),
            hint=f"receive it with `{command}`",
        )
    if manifest.encryption:
        raise BadInputError(
            "the bundle's payload is encrypted; `stella import` reads only plaintext json bundles", path=str(bundle)
        )
    own_tenant(manifest, bundle, tenant, "a json bundle")
    work.mkdir(parents=True, exist_ok=True)
    job = _RawDocuments(bundle, [], report, observer, work, None)
    try:
        documents = job.documents(bundle)
    except (BadInputError, IntegrityError) as exc:
        report.error = exc
        raise
    return VerifiedBundle(report, documents)


@dataclass(frozen=True)
class BundleImport:
    """What importing a verified json bundle did: its report, the import's counts and each document's outcome."""

    report: VerifyReport
    summary: ImportSummary
    results: list[FileResult]

    @property
    def rejected(self) -> list[FileResult]:
        return [r for r in self.results if r.outcome is Outcome.REJECTED]


def import_bundle(
    home: Home,
    request: ReceiveRequest,
    *,
    observer: Observer | None = None,
    on_report: Callable[[VerifyReport], None] | None = None,
    store_lock: AbstractContextManager[object] | None = None,
) -> BundleImport:
    """Receive a ``json:raw`` or ``json:policy`` bundle: verify it, then import its raw documents into its own
    tenant (``request.tenant``, if given, must be it). The receive registry's ``json`` apply step."""
    results: list[FileResult] = []
    with tempfile.TemporaryDirectory(prefix="stella-import-") as work:
        verified = verify_for_import(
            home,
            request.bundle,
            request.tenant,
            key_files=request.key_files,
            at=request.at,
            observer=observer,
            work=Path(work),
        )
        if on_report is not None:
            on_report(verified.report)
        tenant = str(verified.report.manifest.tenant)
        with store_lock or nullcontext(), Store.open(home) as store:
            importer = Importer(store, SOURCES, tenant=tenant, sink=observer, on_result=results.append)
            summary = importer.run([request.bundle], readers={request.bundle: verified.documents})
    return BundleImport(verified.report, summary, results)
