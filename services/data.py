"""What the store holds, per tenant: counts, pages of documents, advisories, VEX, SBOMs and more, one item.

`stella data stats|list|show` and the TUI's data screen read through these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import UsageError
from core.home import Home
from core.query import ListKind, count_rows, list_rows, show
from core.store import Store
from core.tenants import validate_tenant

#: The columns of each kind that fit an 80-column terminal; ``--json`` always carries every field.
SUMMARY_COLUMNS: dict[ListKind, list[str]] = {
    ListKind.DOCUMENTS: ["kind", "format", "document_id", "subject", "size", "sha256"],
    ListKind.ADVISORIES: ["advisory_id", "source_format", "modified", "revisions", "summary"],
    ListKind.VEX: ["vulnerability_id", "product", "status", "justification"],
    ListKind.SBOMS: ["subject_name", "subject_version", "sbom_format", "component_count"],
    ListKind.COMPONENTS: ["name", "version", "purl"],
    ListKind.ATTESTATIONS: ["envelope_kind", "predicate_type", "signature_count", "verification"],
    ListKind.KEV: ["cve_id", "vendor_project", "product", "date_added", "due_date", "catalog"],
    ListKind.EPSS: ["cve_id", "epss", "percentile", "score_date"],
    ListKind.FINDINGS: ["finding_id", "vulnerability_id", "subject", "decision"],
}


def short_value(value: Any) -> Any:
    """A cell as a summary table shows it: digests to 12 characters, long text cut, timestamps to their date."""
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]
    if isinstance(value, str) and len(value) > 48:
        return value[:45] + "..."
    if isinstance(value, str) and value.endswith("Z") and "T" in value:
        return value[:10]
    return value


def data_stats(home: Home, tenant: str | None = None) -> dict[str, dict[str, int]]:
    """`stella data stats`: counts per tenant (only ``tenant`` when given)."""
    tenant = validate_tenant(tenant) if tenant else None
    with Store.open(home, read_only=True) as store:
        return store.stats(tenant)


@dataclass(frozen=True)
class DataPage:
    """One page of a listing (`stella data list`)."""

    kind: ListKind
    tenant: str
    total: int
    offset: int
    items: list[dict[str, Any]]
    search: str | None = None  # the text the rows contain (``--search``); None: every row of the kind

    @property
    def columns(self) -> list[str]:
        """The summary columns of this kind that the items carry."""
        if not self.items:
            return []
        first = self.items[0]
        return [c for c in SUMMARY_COLUMNS.get(self.kind, list(first)) if c in first]

    def to_dict(self) -> dict[str, Any]:
        out = {
            "kind": self.kind.value,
            "tenant": self.tenant,
            "total": self.total,
            "offset": self.offset,
            "items": self.items,
        }
        return out | ({"search": self.search} if self.search else {})


def list_data(
    home: Home, kind: ListKind, tenant: str, *, limit: int = 50, offset: int = 0, search: str | None = None
) -> DataPage:
    """`stella data list KIND [--search TEXT]`: ``limit`` items from ``offset``, and how many there are in all.

    With ``search``, only the rows whose ids, aliases or title-like text contain it, ignoring case, from the whole
    tenant (not one page); blank text searches nothing and lists everything.
    """
    tenant = validate_tenant(tenant)
    if limit < 0 or offset < 0:
        raise UsageError(f"--limit and --offset cannot be negative (given {limit} and {offset})")
    search = (search or "").strip() or None
    with Store.open(home, read_only=True) as store:
        rows = list_rows(store, kind, tenant, limit=limit, offset=offset, search=search)
        total = count_rows(store, kind, tenant, search=search)
    return DataPage(kind, tenant, total, offset, rows, search)


def show_data(home: Home, tenant: str, ident: str) -> dict[str, Any]:
    """`stella data show ID`: one document (sha256 or a prefix of it) or advisory ID, with what was parsed from it."""
    tenant = validate_tenant(tenant)
    with Store.open(home, read_only=True) as store:
        return show(store, tenant, ident)


def raw_document(home: Home, tenant: str, ident: str) -> bytes:
    """`stella data show ID --raw`: the document's bytes exactly as imported."""
    tenant = validate_tenant(tenant)
    with Store.open(home, read_only=True) as store:
        result = show(store, tenant, ident)
        return store.raw_bytes(tenant, result["document"]["sha256"])
