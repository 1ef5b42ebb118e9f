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
from collections.abc import Callable
from typing import Any

from adapters.profiles._records import ADVISORIES, RAW, SBOMS, VEX, redact, stream
from core.bundle import PayloadContext
from core.contract.json_raw import index_path, pack_path

_RECORD_FILES = (
    ("advisory", "data/advisories.jsonl.zst", ADVISORIES),
    ("vex", "data/vex.jsonl.zst", VEX),
    ("sbom", "data/sboms.jsonl.zst", SBOMS),
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
        if allowlist is None:
            counts["rawDocuments"] = self._write_packs(ctx, params, record_types)
        else:
            ctx.extra_manifest["redaction"] = {"allowlist": sorted(allowlist), "rawDocuments": "omitted"}
        for kind, path, sql in _RECORD_FILES:
            if kind not in record_types:
                continue
            n = 0
            with ctx.writer.jsonl_zst(path, level) as write:
                for record in stream(ctx.query, sql, params):
                    write(redact(record, allowlist))
                    n += 1
            counts[{"advisory": "advisories", "vex": "vexStatements", "sbom": "sboms"}[kind]] = n
        return counts

    def _write_packs(self, ctx: PayloadContext, params: list[Any], record_types: list[str]) -> int:
        total = 0
        with contextlib.ExitStack() as stack:
            packs: dict[str, tuple[Any, Callable[[Any], None]]] = {}
            offsets: dict[str, int] = {}
            for row in stream(ctx.query, RAW, params):
                kind = row["kind"]
                if kind not in record_types:
                    continue
                if kind not in packs:
                    pack = stack.enter_context(ctx.writer.stream(pack_path(kind), "application/octet-stream"))
                    index = stack.enter_context(ctx.writer.jsonl(index_path(kind)))
                    packs[kind] = (pack, index)
                    offsets[kind] = 0
                data = bytes(row["content"]) if "content" in row else ctx.raw_bytes(row["sha256"])
                pack, index = packs[kind]
                pack.write(data)
                index(
                    {
                        "sha256": row["sha256"],
                        "offset": offsets[kind],
                        "size": len(data),
                        "mediaType": row["media_type"],
                        "format": row["format"],
                        "documentId": row["document_id"],
                    }
                )
                offsets[kind] += len(data)
                total += 1
                ctx.input_done(row["document_id"])
        return total


PROFILE = JsonRaw()
