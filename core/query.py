"""Read-only questions users ask of the store: what is in it, per tenant, and one document in full."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from core.errors import NotFoundError
from core.store import Store


class ListKind(StrEnum):
    """What ``stella data list`` can list."""

    DOCUMENTS = "documents"
    ADVISORIES = "advisories"
    VEX = "vex"
    SBOMS = "sboms"
    COMPONENTS = "components"
    ATTESTATIONS = "attestations"
    KEV = "kev"
    EPSS = "epss"
    POLICIES = "policies"
    FINDINGS = "findings"


_LIST_SQL: dict[ListKind, tuple[str, str]] = {
    ListKind.DOCUMENTS: (
        "SELECT sha256, format, kind, document_id, subject, size, source_path, imported_at FROM raw_documents",
        "kind, subject, document_id, sha256",
    ),
    ListKind.ADVISORIES: (
        "SELECT advisory_id, source_format, modified, published, withdrawn, summary, aliases, document_sha256,"
        " (SELECT count(*) FROM advisories b WHERE b.tenant = a.tenant AND b.advisory_id = a.advisory_id)"
        " AS revisions FROM advisories_latest a",
        "advisory_id",
    ),
    ListKind.VEX: (
        "SELECT vulnerability_id, product, status, justification, vex_format, document_sha256 FROM vex_statements",
        "vulnerability_id, product, document_sha256",
    ),
    ListKind.SBOMS: (
        "SELECT subject_name, subject_version, sbom_format, spec_version, component_count, serial_number,"
        " document_sha256 FROM sbom_documents",
        "subject_name, document_sha256",
    ),
    ListKind.COMPONENTS: (
        "SELECT name, version, purl, type, document_sha256 FROM sbom_components",
        "name, version, document_sha256",
    ),
    ListKind.ATTESTATIONS: (
        "SELECT envelope_kind, predicate_type, statement_type, signature_count, verification, entry_index,"
        " document_sha256 FROM attestations",
        "document_sha256, entry_index",
    ),
    # KEV and EPSS: each CVE once, from the newest catalog or score file that lists it (a daily feed imported every
    # day would otherwise list each CVE once per day), with that catalog's version or those scores' date.
    ListKind.KEV: (
        "SELECT cve_id, vendor_project, product, date_added, due_date, known_ransomware_campaign_use, catalog,"
        " document_sha256 FROM (SELECT e.*, c.catalog_version AS catalog FROM kev_entries e JOIN kev_catalogs c"
        " ON c.tenant = e.tenant AND c.document_sha256 = e.document_sha256 QUALIFY row_number() OVER"
        " (PARTITION BY e.tenant, e.cve_id ORDER BY c.date_released DESC, c.catalog_version DESC,"
        " e.document_sha256) = 1) latest",
        "cve_id",
    ),
    ListKind.EPSS: (
        "SELECT cve_id, epss, percentile, score_date, document_sha256 FROM (SELECT e.*, s.score_date"
        " FROM epss_scores e JOIN epss_snapshots s ON s.tenant = e.tenant AND s.document_sha256 = e.document_sha256"
        " QUALIFY row_number() OVER (PARTITION BY e.tenant, e.cve_id ORDER BY s.score_date DESC,"
        " e.document_sha256) = 1) latest",
        "cve_id",
    ),
    ListKind.POLICIES: (
        "SELECT policy_id, policy_version, inputs_hash, decision_trace_fingerprint, evaluated_at, findings_count,"
        " document_sha256 FROM policy_snapshots",
        "policy_id, policy_version",
    ),
    ListKind.FINDINGS: (
        "SELECT finding_id, vulnerability_id, subject, decision, severity, policy_version, document_sha256"
        " FROM findings",
        "finding_id, document_sha256",
    ),
}


#: What a search (``stella data list KIND --search TEXT``) looks in: each kind's ids, aliases and title-like text,
#: and every text column its summary table shows, so a search finds at least what the TUI's page filter shows.
#: Column names only, never what a user typed; every value is read as text, a list (aliases) as its text too.
_SEARCH_COLUMNS: dict[ListKind, tuple[str, ...]] = {
    ListKind.DOCUMENTS: ("document_id", "subject", "kind", "format", "sha256", "source_path"),
    ListKind.ADVISORIES: ("advisory_id", "aliases", "summary", "source_format"),
    ListKind.VEX: ("vulnerability_id", "product", "status", "justification"),
    ListKind.SBOMS: ("subject_name", "subject_version", "sbom_format", "serial_number"),
    ListKind.COMPONENTS: ("name", "version", "purl"),
    ListKind.ATTESTATIONS: ("envelope_kind", "predicate_type", "statement_type", "verification", "document_sha256"),
    ListKind.KEV: ("cve_id", "vendor_project", "product", "catalog"),
    ListKind.EPSS: ("cve_id", "score_date"),
    ListKind.POLICIES: ("policy_id", "policy_version"),
    ListKind.FINDINGS: ("finding_id", "vulnerability_id", "subject", "decision"),
}


def _listing(kind: ListKind, tenant: str, search: str | None) -> tuple[str, list[Any]]:
    """The tenant's rows of ``kind`` as SQL and its parameters, only those containing ``search`` when given.

    The search is a literal, case-insensitive substring (``contains``, not ``LIKE``: ``%`` and ``_`` are
    characters), in any of the kind's search columns.
    """
    base, _ = _LIST_SQL[kind]
    sql = f"SELECT * FROM ({base} WHERE tenant = ?)"
    params: list[Any] = [tenant]
    needle = (search or "").strip().lower()
    if needle:
        columns = _SEARCH_COLUMNS[kind]
        sql += " WHERE " + " OR ".join(f"contains(lower(CAST({c} AS VARCHAR)), ?)" for c in columns)
        params += [needle] * len(columns)
    return sql, params


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _rows(store: Store, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cur = store.conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [{n: _jsonable(v) for n, v in zip(names, row, strict=True)} for row in cur.fetchall()]


def list_rows(
    store: Store, kind: ListKind, tenant: str, *, limit: int = 50, offset: int = 0, search: str | None = None
) -> list[dict[str, Any]]:
    """One page of ``kind`` for ``tenant``, in a stable order; with ``search``, of the rows that contain it."""
    sql, params = _listing(kind, tenant, search)
    _, order = _LIST_SQL[kind]
    return _rows(store, f"{sql} ORDER BY {order} LIMIT ? OFFSET ?", [*params, limit, offset])


def count_rows(store: Store, kind: ListKind, tenant: str, *, search: str | None = None) -> int:
    """How many rows :func:`list_rows` pages through."""
    sql, params = _listing(kind, tenant, search)
    row = store.conn.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()
    return int(row[0]) if row else 0


def show(store: Store, tenant: str, ident: str) -> dict[str, Any]:
    """A document by sha256 (or unique prefix) or an advisory by ID, with its normalized rows.

    For an advisory ID, every revision is listed and the latest is shown in full.
    """
    doc_sql = (
        "SELECT sha256, format, format_version, kind, media_type, document_id, subject, size, source_path,"
        " imported_at FROM raw_documents WHERE tenant = ? AND "
    )
    # An advisory ID or alias first: every revision is listed, the latest shown in full.
    revisions = _rows(
        store,
        "SELECT advisory_id, modified, document_sha256 FROM advisories WHERE tenant = ? AND"
        " (advisory_id = ? OR list_contains(aliases, ?)) ORDER BY modified DESC NULLS LAST, document_sha256 DESC",
        [tenant, ident, ident],
    )
    if revisions:
        docs = _rows(store, doc_sql + "sha256 = ?", [tenant, revisions[0]["document_sha256"]])
    else:
        # A literal prefix (starts_with, not LIKE): `%` and `_` in what a user types are characters, not wildcards.
        prefix = ident.lower() if len(ident) >= 8 else "\x00"
        docs = _rows(
            store, doc_sql + "(starts_with(sha256, ?) OR document_id = ?) ORDER BY sha256", [tenant, prefix, ident]
        )
    if not docs:
        raise NotFoundError(f"nothing in tenant {tenant!r} matches {ident!r}", hint="try `stella data list documents`")
    if len(docs) > 1:
        raise NotFoundError(
            f"{ident!r} matches {len(docs)} documents; give more of the sha256",
            hint=", ".join(d["sha256"][:16] for d in docs[:5]),
        )
    doc = docs[0]
    sha = doc["sha256"]
    out: dict[str, Any] = {"document": doc}
    if revisions:
        out["revisions"] = revisions
    for table in (
        "advisories",
        "advisory_severities",
        "affected_packages",
        "vex_statements",
        "sbom_documents",
        "sbom_components",
        "attestations",
        "attestation_subjects",
        "kev_catalogs",
        "kev_entries",
        "epss_snapshots",
        "epss_scores",
        "policy_snapshots",
        "findings",
    ):
        rows = _rows(
            store,
            f"SELECT * EXCLUDE (tenant, document_sha256) FROM {table} WHERE tenant = ? AND document_sha256 = ?",
            [tenant, sha],
        )
        if rows:
            out[table] = rows
    return out
