"""`stella data stats|list|show`: what the store holds, per tenant."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.output import escape, json_text, print_json, stdout, table
from core.home import resolve_home
from core.query import ListKind
from core.tenants import DEFAULT_TENANT
from services.data import data_stats, list_data, raw_document, short_value, show_data


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
    lst.add_argument(
        "--search",
        metavar="TEXT",
        help="only rows whose ids, aliases or title/summary contain TEXT (ignoring case), across the whole tenant",
    )
    lst.set_defaults(handler=run_list)

    sh = dsub.add_parser("show", parents=[common], help="one document (sha256 or prefix) or advisory ID")
    sh.add_argument("ident", metavar="ID")
    sh.add_argument("--tenant", default=DEFAULT_TENANT)
    sh.add_argument("--raw", action="store_true", help="print the document's bytes exactly as imported")
    sh.set_defaults(handler=run_show)


def run_stats(args: argparse.Namespace) -> int:
    stats = data_stats(resolve_home(args.home), args.tenant)
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
    page = list_data(
        resolve_home(args.home),
        ListKind(args.kind),
        args.tenant,
        limit=args.limit,
        offset=args.offset,
        search=args.search,
    )
    if args.json:
        print_json(page.to_dict())
        return 0
    matching = f" matching {page.search!r}" if page.search else ""
    if not page.items:
        stdout.print(escape(f"no {page.kind.value}{matching} in tenant {page.tenant}"))
        return 0
    columns = page.columns
    table(
        columns,
        [[short_value(r[c]) for c in columns] for r in page.items],
        title=f"{page.kind.value} ({len(page.items)} of {page.total}{matching})",
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    if args.raw:
        sys.stdout.buffer.write(raw_document(home, args.tenant, args.ident))
        return 0
    result = show_data(home, args.tenant, args.ident)
    if args.json:
        print_json(result)
        return 0
    for label, value in summary_lines(result):
        stdout.print(f"[bold]{label:<12}[/] {escape(value)}")
    stdout.print("")
    stdout.print(json_text(result), markup=False)
    return 0


def summary_lines(result: dict[str, Any]) -> list[tuple[str, str]]:
    """The few lines a reader looks for first: what the document is, where it came from, and for an advisory its
    summary, dates, revisions and affected packages."""
    doc = result["document"]
    version = f" {doc['format_version']}" if doc.get("format_version") else ""
    lines = [
        ("document", f"{doc['document_id']}" if doc.get("document_id") else "(no document id)"),
        ("kind", f"{doc['kind']}, {doc['format']}{version}, {doc['size']} bytes"),
        ("sha256", doc["sha256"]),
        ("source", f"{doc.get('source_path') or '-'}, imported {doc.get('imported_at') or '-'}"),
    ]
    if doc.get("subject"):
        lines.append(("subject", str(doc["subject"])))
    for advisory in result.get("advisories", [])[:1]:
        if advisory.get("summary"):
            lines.append(("summary", str(advisory["summary"])))
        dates = [f"{name} {advisory[name]}" for name in ("published", "modified", "withdrawn") if advisory.get(name)]
        if dates:
            lines.append(("dates", ", ".join(dates)))
        if advisory.get("aliases"):
            lines.append(("aliases", ", ".join(str(a) for a in advisory["aliases"])))
    if len(result.get("revisions", [])) > 1:
        lines.append(("revisions", f"{len(result['revisions'])} (the latest is shown; --json lists them all)"))
    packages = result.get("affected_packages", [])
    if packages:
        names = sorted({f"{p.get('ecosystem') or '?'}/{p.get('name') or p.get('purl') or '?'}" for p in packages})
        lines.append(("affected", ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")))
    return lines
