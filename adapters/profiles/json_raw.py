"""``json:raw``: raw documents byte-for-byte plus canonical JSONL of advisories, VEX and SBOMs.

Payload layout::

    data/raw/<kind>.pack               every input document of a kind exactly as imported, concatenated
    data/raw/<kind>.index.jsonl        one canonical JSON line per document: sha256, offset, size, mediaType,
                                       format, documentId (packs and indexes are omitted under redaction)
    data/advisories.jsonl.zst          latest revision of each advisory, with severities and affected ranges
    data/vex.jsonl.zst                 VEX statements
    data/sboms.jsonl.zst               SBOMs with their components

Records are in the run's input order (tenant, subject, document id, digest). With a redaction allowlist, only
the listed record fields leave, and raw documents (which carry every field) are not shipped at all.

Raw documents are packed per kind rather than shipped as one file each: a 200,000-advisory bundle is then a
handful of large members, which a receiver verifies at the speed of zstd and SHA-256 instead of paying a
per-file cost 200,000 times. A document is cut out of its pack by the offset and size in the (signed) index;
the sha256 there is the digest it had when it was imported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Any

from adapters.profiles._raw_content import Placement, layout_rows, scatter_contents
from adapters.profiles._records import advisory_json, advisory_records, redact, sbom_records, vex_records
from core.bundle import Beside, PayloadContext, StopOr
from core.canonical import MAX_SAFE_INTEGER, canonical_json, canonical_json_of_plain
from core.contract.json_raw import index_path, pack_path
from core.errors import Cancelled

_RECORD_FILES = (
    ("advisory", "data/advisories.jsonl.zst", advisory_records, advisory_json),
    ("vex", "data/vex.jsonl.zst", vex_records, canonical_json),
    ("sbom", "data/sboms.jsonl.zst", sbom_records, canonical_json),
)


class JsonRaw:
    """The ``json:raw`` profile."""

    kind = "json"
    variant = "raw"
    encrypted_prefixes: tuple[str, ...] | None = None

    def write_payload(self, ctx: PayloadContext) -> dict[str, int]:
        config: dict[str, Any] = ctx.spec.profile_config
        allowlist: list[str] | None = config.get("redactionAllowlist")
        record_types: list[str] = config.get("recordTypes", ["advisory", "vex", "sbom"])
        level = ctx.spec.compression_level
        params = [ctx.spec.run_id, ctx.spec.tenant]
        counts: dict[str, int] = {}
        # The raw packs are written on a second thread, on a cursor of their own, beside the records. Their scan of
        # every document's content waits until the advisory queries are drained (one large query at a time in the
        # store): this thread needs those rows first, the packs thread has the scan's time to catch up meanwhile.
        raw_cursor = ctx.query.cursor()
        drained = threading.Event()
        packs = Beside(
            lambda stop: self._write_packs(ctx, raw_cursor, stop, params, record_types, drained), name="raw packs"
        )
        with contextlib.closing(raw_cursor), packs if allowlist is None else contextlib.nullcontext():
            try:
                if allowlist is not None:
                    ctx.extra_manifest["redaction"] = {"allowlist": sorted(allowlist), "rawDocuments": "omitted"}
                for kind, path, records, encode in _RECORD_FILES:
                    if kind not in record_types:
                        continue
                    n = 0
                    with ctx.writer.jsonl_zst(path, level, encode) as write:
                        for record in records(ctx.query, params, drained.set):
                            write(redact(record, allowlist))
                            n += 1
                    counts[{"advisory": "advisories", "vex": "vexStatements", "sbom": "sboms"}[kind]] = n
            finally:
                drained.set()
        if allowlist is None:
            counts["rawDocuments"] = packs.result
        return counts

    def _write_packs(
        self,
        ctx: PayloadContext,
        cursor: Any,
        stop: threading.Event,
        params: list[Any],
        record_types: list[str],
        drained: threading.Event,
    ) -> int:
        """Every input of ``record_types`` into ``data/raw/<kind>.pack``, in input order, with its index; the
        contents are read once ``drained`` is set."""
        ctx = dataclasses.replace(ctx, cancel=StopOr(ctx.cancel, stop))
        placement = Placement()
        kinds: dict[str, int] = {}
        sizes: list[int] = []
        total = 0
        with contextlib.ExitStack() as stack:
            indexes = []
            for _, sha, kind, media_type, fmt, document_id, size, _, rowid in layout_rows(cursor, params):
                if kind not in record_types:
                    continue
                if kind not in kinds:
                    kinds[kind] = len(sizes)
                    sizes.append(0)
                    indexes.append(stack.enter_context(ctx.writer.jsonl(index_path(kind), _index_json)))
                k = kinds[kind]
                indexes[k](
                    {
                        "sha256": sha,
                        "offset": sizes[k],
                        "size": size,
                        "mediaType": media_type,
                        "format": fmt,
                        "documentId": document_id,
                    }
                )
                placement.place(rowid, sha, k, sizes[k], size)
                sizes[k] += size
                total += 1
        while not drained.wait(0.05):
            if ctx.cancel.is_cancelled():
                raise Cancelled("export cancelled")
        with contextlib.ExitStack() as stack:
            files = [
                stack.enter_context(ctx.writer.scattered(pack_path(kind), "application/octet-stream", sizes[k]))
                for kind, k in kinds.items()
            ]
            scatter_contents(ctx, cursor, placement, files)
        return total


def _index_json(line: dict[str, Any]) -> bytes:
    """Canonical JSON of an index line: strings and two integers, plain JSON unless a number is past 2**53 - 1."""
    if line["offset"] + line["size"] <= MAX_SAFE_INTEGER:
        return canonical_json_of_plain(line)
    return canonical_json(line)


PROFILE = JsonRaw()
