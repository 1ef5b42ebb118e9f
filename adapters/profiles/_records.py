"""Normalized rows as the JSONL records json:raw ships, streamed in the run's input order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

BATCH = 2000


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    return value


def stream(cursor: Any, sql: str, params: list[Any]) -> Iterator[dict[str, Any]]:
    """Rows of ``sql`` (params: run id, tenant) as dicts, None fields dropped, times in RFC 3339.

    The query runs over windows of ``BATCH`` input ordinals (``i.ordinal >= ? AND i.ordinal < ?``), so
    DuckDB aggregates one window at a time: memory stays flat however many documents the run has.
    """
    row = cursor.execute("SELECT max(ordinal) FROM export_inputs WHERE run_id = ? AND tenant = ?", params).fetchone()
    last = -1 if row is None or row[0] is None else int(row[0])
    for lo in range(0, last + 1, BATCH):
        cur = cursor.execute(sql, [*params, lo, lo + BATCH])
        names = [d[0] for d in cur.description]
        while rows := cur.fetchmany(BATCH):
            for values in rows:
                yield {n: _plain(v) for n, v in zip(names, values, strict=True) if v is not None}


ADVISORIES = """
SELECT i.tenant, a.advisory_id AS "advisoryId", a.document_sha256 AS "documentSha256",
       a.source_format AS "sourceFormat", a.modified, a.published, a.withdrawn, a.summary, a.aliases, a.related,
       a.cwes,
       (SELECT list({'type': s.type, 'score': s.score, 'baseScore': s.base_score, 'source': s.source}
               ORDER BY s.type, s.score)
          FROM advisory_severities s
         WHERE s.tenant = a.tenant AND s.document_sha256 = a.document_sha256 AND s.advisory_id = a.advisory_id)
         AS severities,
       (SELECT list({'ecosystem': p.ecosystem, 'name': p.name, 'purl': p.purl, 'rangeType': p.range_type,
                     'introduced': p.introduced, 'fixed': p.fixed, 'lastAffected': p.last_affected,
                     'limit': p."limit", 'versions': p.versions, 'status': p.status, 'productId': p.product_id}
               ORDER BY p.ecosystem, p.name, p.introduced, p.fixed, p.last_affected, p.status)
          FROM affected_packages p
         WHERE p.tenant = a.tenant AND p.document_sha256 = a.document_sha256 AND p.advisory_id = a.advisory_id)
         AS affected
  FROM export_inputs i
  JOIN advisories a ON a.tenant = i.tenant AND a.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'advisory' AND i.ordinal >= ? AND i.ordinal < ?
 ORDER BY i.ordinal, a.advisory_id
"""

VEX = """
SELECT i.tenant, v.document_sha256 AS "documentSha256", v.vex_format AS "vexFormat",
       v.vulnerability_id AS "vulnerabilityId", v.aliases, v.product, v.product_purl AS "productPurl",
       v.subcomponents, v.status, v.justification, v.impact_statement AS "impactStatement",
       v.action_statement AS "actionStatement", v.statement_time AS "timestamp"
  FROM export_inputs i
  JOIN vex_statements v ON v.tenant = i.tenant AND v.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'vex' AND i.ordinal >= ? AND i.ordinal < ?
 ORDER BY i.ordinal, v.vulnerability_id, v.product, v.status
"""

SBOMS = """
SELECT i.tenant, d.document_sha256 AS "documentSha256", d.sbom_format AS "sbomFormat",
       d.spec_version AS "specVersion", d.serial_number AS "serialNumber",
       {'name': d.subject_name, 'version': d.subject_version, 'purl': d.subject_purl} AS subject, d.created,
       (SELECT list({'ref': c.ref, 'name': c.name, 'version': c.version, 'purl': c.purl, 'type': c.type,
                     'cpe': c.cpe, 'sha1': c.sha1, 'sha256': c.sha256, 'licenses': c.licenses,
                     'supplier': c.supplier}
               ORDER BY c.name, c.version, c.purl, c.ref)
          FROM sbom_components c WHERE c.tenant = d.tenant AND c.document_sha256 = d.document_sha256)
         AS components
  FROM export_inputs i
  JOIN sbom_documents d ON d.tenant = i.tenant AND d.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'sbom' AND i.ordinal >= ? AND i.ordinal < ?
 ORDER BY i.ordinal
"""

RAW = """
SELECT r.sha256, r.kind, r.media_type, r.format, r.document_id, r.content
  FROM export_inputs i
  JOIN raw_documents r ON r.tenant = i.tenant AND r.sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.ordinal >= ? AND i.ordinal < ?
 ORDER BY i.ordinal
"""


def redact(record: dict[str, Any], allowlist: list[str] | None) -> dict[str, Any]:
    """Keep only the dotted paths in ``allowlist`` (``None`` keeps everything); lists are entered transparently."""
    if allowlist is None:
        return record
    tree: dict[str, Any] = {}
    for path in allowlist:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    kept: dict[str, Any] = _keep(record, tree)
    return kept


def _keep(value: Any, tree: dict[str, Any]) -> Any:
    if not tree:
        return value
    if isinstance(value, list):
        return [_keep(v, tree) for v in value]
    if isinstance(value, dict):
        return {k: _keep(v, tree[k]) for k, v in value.items() if k in tree}
    return value
