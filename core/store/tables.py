"""How normalized records become rows: one column spec per table, used for batched Arrow inserts.

Keeping the column lists here (next to, and tested against, the migrations) means a batch is
built as plain Python lists and written with one ``INSERT ... SELECT`` per table per batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from core.records import EpssScore, ParsedDocument

STR = pa.string()
STRS = pa.list_(pa.string())
TS = pa.timestamp("us")
I64 = pa.int64()
I32 = pa.int32()
F64 = pa.float64()
DATE = pa.date32()

TABLES: dict[str, list[tuple[str, pa.DataType]]] = {
    "raw_documents": [
        ("tenant", STR),
        ("sha256", STR),
        ("size", I64),
        ("format", STR),
        ("format_version", STR),
        ("kind", STR),
        ("media_type", STR),
        ("document_id", STR),
        ("subject", STR),
        ("source_path", STR),
        ("imported_at", TS),
        ("content", pa.binary()),
    ],
    "advisories": [
        ("tenant", STR),
        ("document_sha256", STR),
        ("advisory_id", STR),
        ("source_format", STR),
        ("modified", TS),
        ("published", TS),
        ("withdrawn", TS),
        ("summary", STR),
        ("aliases", STRS),
        ("related", STRS),
        ("cwes", STRS),
    ],
    "advisory_severities": [
        ("tenant", STR),
        ("document_sha256", STR),
        ("advisory_id", STR),
        ("type", STR),
        ("score", STR),
        ("base_score", F64),
        ("source", STR),
    ],
    "affected_packages": [
        ("tenant", STR),
        ("document_sha256", STR),
        ("advisory_id", STR),
        ("ecosystem", STR),
        ("name", STR),
        ("purl", STR),
        ("range_type", STR),
        ("introduced", STR),
        ("fixed", STR),
        ("last_affected", STR),
        ("limit", STR),
        ("versions", STRS),
        ("status", STR),
        ("product_id", STR),
    ],
    "vex_statements": [
        ("tenant", STR),
        ("document_sha256", STR),
        ("vex_format", STR),
        ("vulnerability_id", STR),
        ("aliases", STRS),
        ("product", STR),
        ("product_purl", STR),
        ("subcomponents", STRS),
        ("status", STR),
        ("justification", STR),
        ("impact_statement", STR),
        ("action_statement", STR),
        ("statement_time", TS),
    ],
    "sbom_documents": [
        ("tenant", STR),
        ("document_sha256", STR),
        ("sbom_format", STR),
        ("spec_version", STR),
        ("serial_number", STR),
        ("subject_name", STR),
        ("subject_version", STR),
        ("subject_purl", STR),
        ("created", TS),
        ("component_count", I32),
    ],
    "sbom_components": [
        ("tenant", STR),
        ("document_sha256", STR),
        ("ref", STR),
        ("name", STR),
        ("version", STR),
        ("purl", STR),
        ("type", STR),
        ("cpe", STR),
        ("sha1", STR),
        ("sha256", STR),
        ("licenses", STRS),
        ("supplier", STR),
    ],
    "attestations": [
        ("tenant", STR),
        ("document_sha256", STR),
        ("entry_index", I32),
        ("envelope_kind", STR),
        ("media_type", STR),
        ("payload_type", STR),
        ("statement_type", STR),
        ("predicate_type", STR),
        ("signature_count", I32),
        ("keyids", STRS),
        ("verification", STR),
    ],
    "attestation_subjects": [
        ("tenant", STR),
        ("document_sha256", STR),
        ("entry_index", I32),
        ("name", STR),
        ("digest_algorithm", STR),
        ("digest", STR),
    ],
    "kev_catalogs": [
        ("tenant", STR),
        ("document_sha256", STR),
        ("catalog_version", STR),
        ("date_released", TS),
        ("entry_count", I32),
    ],
    "kev_entries": [
        ("tenant", STR),
        ("document_sha256", STR),
        ("cve_id", STR),
        ("vendor_project", STR),
        ("product", STR),
        ("vulnerability_name", STR),
        ("date_added", DATE),
        ("short_description", STR),
        ("required_action", STR),
        ("due_date", DATE),
        ("known_ransomware_campaign_use", STR),
        ("notes", STR),
        ("cwes", STRS),
    ],
    "epss_snapshots": [
        ("tenant", STR),
        ("document_sha256", STR),
        ("model_version", STR),
        ("score_date", TS),
        ("row_count", I32),
    ],
    "epss_scores": [
        ("tenant", STR),
        ("document_sha256", STR),
        ("cve_id", STR),
        ("epss", F64),
        ("percentile", F64),
    ],
    "policy_snapshots": [
        ("tenant", STR),
        ("document_sha256", STR),
        ("policy_id", STR),
        ("policy_version", STR),
        ("inputs_hash", STR),
        ("decision_trace_fingerprint", STR),
        ("evaluated_at", TS),
        ("findings_count", I32),
    ],
    "findings": [
        ("tenant", STR),
        ("document_sha256", STR),
        ("policy_id", STR),
        ("policy_version", STR),
        ("finding_id", STR),
        ("vulnerability_id", STR),
        ("subject", STR),
        ("purl", STR),
        ("severity", STR),
        ("decision", STR),
        ("reason", STR),
    ],
}

NORMALIZED_TABLES = [name for name in TABLES if name != "raw_documents"]

# Batches are short-lived; pyarrow's default mimalloc pool keeps freed pages around (tens of MB),
# the system allocator gives them back, which keeps import memory flat.
_POOL = pa.system_memory_pool()


@dataclass
class StagedDocument:
    """A parsed document ready to be written; ``content`` is None when the bytes went to the blob store."""

    sha256: str
    size: int
    source_path: str
    parsed: ParsedDocument
    content: bytes | None


_WIDTHS = {table: len(cols) for table, cols in TABLES.items()}


@dataclass
class RowBatch:
    """Rows for many documents, per table; turned into columns (Arrow) at once when the batch is written."""

    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {t: [] for t in TABLES})

    def _add(self, table: str, *values: Any) -> None:
        if len(values) != _WIDTHS[table]:
            raise ValueError(f"{table} has {_WIDTHS[table]} columns, not {len(values)}")
        self.rows[table].append(values)

    def add(self, tenant: str, doc: StagedDocument, imported_at: datetime) -> None:
        """Append every row that ``doc`` produces."""
        p, sha = doc.parsed, doc.sha256
        self._add(
            "raw_documents",
            tenant,
            sha,
            doc.size,
            p.format,
            p.format_version,
            str(p.kind),
            p.media_type,
            p.document_id,
            p.subject,
            doc.source_path,
            imported_at,
            doc.content,
        )
        for adv in p.advisories:
            self._add(
                "advisories",
                tenant,
                sha,
                adv.advisory_id,
                p.format,
                adv.modified,
                adv.published,
                adv.withdrawn,
                adv.summary,
                adv.aliases,
                adv.related,
                adv.cwes,
            )
            for sev in adv.severities:
                self._add(
                    "advisory_severities",
                    tenant,
                    sha,
                    adv.advisory_id,
                    sev.type,
                    sev.score,
                    sev.base_score,
                    sev.source,
                )
            for rng in adv.affected:
                self._add(
                    "affected_packages",
                    tenant,
                    sha,
                    adv.advisory_id,
                    rng.ecosystem,
                    rng.name,
                    rng.purl,
                    rng.range_type,
                    rng.introduced,
                    rng.fixed,
                    rng.last_affected,
                    rng.limit,
                    rng.versions,
                    rng.status,
                    rng.product_id,
                )
        for st in p.vex:
            self._add(
                "vex_statements",
                tenant,
                sha,
                p.format,
                st.vulnerability_id,
                st.aliases,
                st.product,
                st.product_purl,
                st.subcomponents,
                str(st.status),
                st.justification,
                st.impact_statement,
                st.action_statement,
                st.timestamp,
            )
        if p.sbom is not None:
            s = p.sbom
            self._add(
                "sbom_documents",
                tenant,
                sha,
                p.format,
                s.spec_version,
                s.serial_number,
                s.subject_name,
                s.subject_version,
                s.subject_purl,
                s.created,
                len(s.components),
            )
            for c in s.components:
                self._add(
                    "sbom_components",
                    tenant,
                    sha,
                    c.ref,
                    c.name,
                    c.version,
                    c.purl,
                    c.type,
                    c.cpe,
                    c.sha1,
                    c.sha256,
                    c.licenses,
                    c.supplier,
                )
        for att in p.attestations:
            self._add(
                "attestations",
                tenant,
                sha,
                att.entry_index,
                att.envelope_kind,
                att.media_type,
                att.payload_type,
                att.statement_type,
                att.predicate_type,
                att.signature_count,
                att.keyids,
                "unverified",
            )
            for subj in att.subjects:
                self._add(
                    "attestation_subjects",
                    tenant,
                    sha,
                    att.entry_index,
                    subj.name,
                    subj.digest_algorithm,
                    subj.digest,
                )
        if p.kev is not None:
            k = p.kev
            self._add("kev_catalogs", tenant, sha, k.catalog_version, k.date_released, len(k.entries))
            for e in k.entries:
                self._add(
                    "kev_entries",
                    tenant,
                    sha,
                    e.cve_id,
                    e.vendor_project,
                    e.product,
                    e.vulnerability_name,
                    e.date_added,
                    e.short_description,
                    e.required_action,
                    e.due_date,
                    e.known_ransomware_campaign_use,
                    e.notes,
                    e.cwes,
                )
        if p.epss is not None:
            ep = p.epss
            # The score rows (millions in a large file) are not added here: see add_epss_scores.
            self._add("epss_snapshots", tenant, sha, ep.model_version, ep.score_date, len(ep.scores))
        if p.policy is not None:
            pol = p.policy
            if p.kind == "policy":
                self._add(
                    "policy_snapshots",
                    tenant,
                    sha,
                    pol.policy_id,
                    pol.policy_version,
                    pol.inputs_hash,
                    pol.decision_trace_fingerprint,
                    pol.evaluated_at,
                    len(pol.findings),
                )
            for f in pol.findings:
                self._add(
                    "findings",
                    tenant,
                    sha,
                    pol.policy_id,
                    pol.policy_version,
                    f.finding_id,
                    f.vulnerability_id,
                    f.subject,
                    f.purl,
                    f.severity,
                    f.decision,
                    f.reason,
                )

    def add_epss_scores(self, tenant: str, sha256: str, scores: Iterable[EpssScore]) -> None:
        """Append EPSS score rows; the writer calls this with bounded slices of a snapshot's scores."""
        self.rows["epss_scores"].extend((tenant, sha256, s.cve_id, s.epss, s.percentile) for s in scores)

    def arrow_tables(self) -> dict[str, pa.Table]:
        """Non-empty tables as Arrow, with the exact column types of the store."""
        out: dict[str, pa.Table] = {}
        for table, rows in self.rows.items():
            if not rows:
                continue
            schema = pa.schema(TABLES[table])
            columns = zip(TABLES[table], zip(*rows, strict=True), strict=True)
            arrays = [pa.array(values, typ, memory_pool=_POOL) for (_, typ), values in columns]
            out[table] = pa.Table.from_arrays(arrays, schema=schema)
        return out

    def __len__(self) -> int:
        return len(self.rows["raw_documents"])
