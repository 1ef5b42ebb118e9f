"""``json:raw``: raw documents byte-for-byte plus canonical JSONL of advisories, VEX and SBOMs.

Payload layout::

    data/raw/<kind>/<sha256>.<ext>     every input document exactly as imported (omitted under redaction)
    data/advisories.jsonl.zst          latest revision of each advisory, with severities and affected ranges
    data/vex.jsonl.zst                 VEX statements
    data/sboms.jsonl.zst               SBOMs with their components

Records are in the run's input order (tenant, subject, document id, digest). With a redaction allowlist, only
the listed record fields leave, and raw documents (which carry every field) are not shipped at all.
"""

from __future__ import annotations

from typing import Any

from adapters.profiles._records import ADVISORIES, RAW, SBOMS, VEX, redact, stream
from core.bundle import PayloadContext

_RECORD_FILES = (
    ("advisory", "data/advisories.jsonl.zst", ADVISORIES),
    ("vex", "data/vex.jsonl.zst", VEX),
    ("sbom", "data/sboms.jsonl.zst", SBOMS),
)


def _extension(media_type: str) -> str:
    if "csv" in media_type:
        return ".csv"
    return ".json"


class JsonRaw:
    """The ``json:raw`` profile."""

    kind = "json"
    variant = "raw"

    def write_payload(self, ctx: PayloadContext) -> dict[str, int]:
        config: dict[str, Any] = ctx.spec.profile_config
        allowlist: list[str] | None = config.get("redactionAllowlist")
        record_types: list[str] = config.get("recordTypes", ["advisory", "vex", "sbom"])
        level = ctx.spec.compression_level
        params = [ctx.spec.run_id, ctx.spec.tenant]
        counts: dict[str, int] = {}
        if allowlist is None:
            raw = 0
            for row in stream(ctx.query, RAW, params):
                if row["kind"] not in record_types:
                    continue
                data = bytes(row["content"]) if "content" in row else ctx.raw_bytes(row["sha256"])
                path = f"data/raw/{row['kind']}/{row['sha256']}{_extension(row['media_type'])}"
                ctx.writer.add_bytes(path, data, row["media_type"])
                raw += 1
            counts["rawDocuments"] = raw
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


PROFILE = JsonRaw()
