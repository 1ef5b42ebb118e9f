"""`stella data stats|list|show`: what the store holds, per tenant."""

from __future__ import annotations

import argparse
import json
from typing import Any

from app.output import print_json, stdout, table
from core.home import resolve_home
from core.ingest import DEFAULT_TENANT, validate_tenant
from core.query import ListKind, count_rows, list_rows, show
from core.store import Store


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("data", parents=[common], help="see what the store holds")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    stats = dsub.add_parser("stats", parents=[common], help="counts per tenant")
    stats.add_argument("--tenant", help="only this tenant")
    stats.set_defaults(handler=run_stats)

    lst = dsub.add_parser("list", parents=[common], help="list documents, advisories, VEX, SBOMs, ...")
    lst.add_argument("kind", choices=[k.value for k in ListKind], help="what to list")
    lst.add_argument("--tenant", default=DEFAULT_TENANT)
    lst.add_argument("--limit", type=int, default=50)
    lst.add_argument("--offset", type=int, default=0)
    lst.set_defaults(handler=run_list)

    sh = dsub.add_parser("show", parents=[common], help="one document (sha256 or prefix) or advisory ID")
    sh.add_argument("ident", metavar="ID")
    sh.add_argument("--tenant", default=DEFAULT_TENANT)
    sh.add_argument("--raw", action="store_true", help="print the document's bytes exactly as imported")
    sh.set_defaults(handler=run_show)


def run_stats(args: argparse.Namespace) -> int:
    tenant = validate_tenant(args.tenant) if args.tenant else None
    with Store.open(resolve_home(args.home), read_only=True) as store:
        stats = store.stats(tenant)
    if args.json:
        print_json({"tenants": stats})
        return 0
    if not stats:
        stdout.print("the store is empty; import documents with `stella import PATH`")
        return 0
    for ten, counts in sorted(stats.items()):
        kinds = sorted((k.split(".", 1)[1], v) for k, v in counts.items() if k.startswith("documents."))
        rows: list[list[Any]] = [[f"documents ({k})", v] for k, v in kinds]
        rows += [[k, v] for k, v in sorted(counts.items()) if "." not in k or k == "advisories.distinct_ids"]
        table(["what", "count"], rows, title=f"tenant {ten}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    tenant = validate_tenant(args.tenant)
    kind = ListKind(args.kind)
    with Store.open(resolve_home(args.home), read_only=True) as store:
        rows = list_rows(store, kind, tenant, limit=args.limit, offset=args.offset)
        total = count_rows(store, kind, tenant)
    if args.json:
        print_json({"kind": kind.value, "tenant": tenant, "total": total, "offset": args.offset, "items": rows})
        return 0
    if not rows:
        stdout.print(f"no {kind.value} in tenant {tenant}")
        return 0
    columns = [c for c in _HUMAN_COLUMNS.get(kind, list(rows[0])) if c in rows[0]]
    table(
        columns,
        [[_short(r[c]) for c in columns] for r in rows],
        title=f"{kind.value} ({len(rows)} of {total})",
    )
    return 0


# What fits an 80-column terminal; --json always carries every field.
_HUMAN_COLUMNS: dict[ListKind, list[str]] = {
    ListKind.DOCUMENTS: ["kind", "format", "document_id", "subject", "size", "sha256"],
    ListKind.ADVISORIES: ["advisory_id", "source_format", "modified", "revisions", "summary"],
    ListKind.VEX: ["vulnerability_id", "product", "status", "justification"],
    ListKind.SBOMS: ["subject_name", "subject_version", "sbom_format", "component_count"],
    ListKind.COMPONENTS: ["name", "version", "purl"],
    ListKind.ATTESTATIONS: ["envelope_kind", "predicate_type", "signature_count", "verification"],
    ListKind.KEV: ["cve_id", "vendor_project", "product", "date_added", "due_date"],
    ListKind.FINDINGS: ["finding_id", "vulnerability_id", "subject", "decision"],
}


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]
    if isinstance(value, str) and len(value) > 48:
        return value[:45] + "..."
    if isinstance(value, str) and value.endswith("Z") and "T" in value:
        return value[:10]
    return value


def run_show(args: argparse.Namespace) -> int:
    tenant = validate_tenant(args.tenant)
    with Store.open(resolve_home(args.home), read_only=True) as store:
        result = show(store, tenant, args.ident)
        raw = store.raw_bytes(tenant, result["document"]["sha256"]) if args.raw else None
    if raw is not None:
        import sys

        sys.stdout.buffer.write(raw)
        return 0
    if args.json:
        print_json(result)
        return 0
    stdout.print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return 0
