"""`stella import PATH...`: import documents, report each one, summarize."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adapters.sources.registry import format_names
from app.output import RichSink, escape, print_json_line, stderr, stdout
from core.clock import parse_at
from core.home import resolve_home
from core.ingest import FileResult, Outcome
from core.tenants import DEFAULT_TENANT
from services.imports import import_files
from verify.bundle import VerifyReport


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "import",
        parents=[common],
        help="import documents (files, directories, .zip/.tar/.tar.gz/.tar.zst archives)",
        description="Import security documents into the store. Formats are detected automatically; "
        "known formats: " + ", ".join(format_names()) + ". A signed stella bundle (json:raw, json:policy) is "
        "verified first, as `stella verify` does, and only then are its raw documents imported. "
        "With --json the output is JSON Lines, not one document as other commands write: a line per document as it "
        'is imported ({"event": "document", ...}), a line per verified bundle, and a last line '
        '{"event": "summary", ...}, so a long import reports as it goes.',
    )
    p.add_argument("paths", nargs="+", metavar="PATH", type=Path)
    p.add_argument("--tenant", default=DEFAULT_TENANT, help=f"tenant to import into (default: {DEFAULT_TENANT})")
    p.add_argument("--format", dest="format", choices=format_names(), help="skip detection and use this format")
    p.add_argument("--quiet", "-q", action="store_true", help="print only rejections and the summary")
    p.add_argument(
        "--key",
        type=Path,
        action="append",
        metavar="PUB",
        help="trusted signer of a stella bundle (PEM; repeatable; default: the trust store)",
    )
    p.add_argument("--at", metavar="TIME", help="verify a stella bundle's time-dependent checks at this RFC 3339 time")
    p.set_defaults(handler=run)


_STYLE = {Outcome.IMPORTED: "green", Outcome.DUPLICATE: "yellow", Outcome.REJECTED: "bold red", Outcome.SKIPPED: "dim"}


def run(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)

    def report(result: FileResult) -> None:
        if args.json:
            print_json_line({"event": "document", **result.to_dict()})
            return
        if args.quiet and result.outcome is not Outcome.REJECTED:
            return
        line = f"[{_STYLE[result.outcome]}]{result.outcome:9}[/] {escape(result.path)}"
        if result.format:
            line += f"  [dim]{result.format} {escape(result.document_id or '')}[/]"
        if result.error is not None:
            where = f" at {result.error.pointer}" if result.error.pointer else ""
            line += f"\n          {escape(result.error.message + where)}"
        for warning in result.warnings:
            if result.outcome is Outcome.SKIPPED:
                line += f"  [dim]{escape(warning)}[/]"
            else:
                line += f"\n          [yellow]warning:[/] {escape(warning)}"
        (stderr if result.outcome is Outcome.REJECTED else stdout).print(line)

    def verified(report: VerifyReport) -> None:
        if args.json:
            print_json_line({"event": "bundle", "bundle": report.bundle, "verified": report.ok, **_signer(report)})
            return
        signer = (report.signer or {}).get("label", "?")
        stdout.print(
            f"[bold green]verified[/] {escape(report.bundle)}: {escape(str(report.manifest.profile.id))} "
            f"signed by {escape(str(signer))}; importing its raw documents"
        )

    summary = import_files(
        home,
        args.paths,
        tenant=args.tenant,
        format_name=args.format,
        observer=RichSink("importing"),
        on_result=report,
        key_files=tuple(args.key or ()),
        at=parse_at(args.at),
        on_bundle=verified,
    )
    if args.json:
        print_json_line({"event": "summary", **summary.to_dict()})
    else:
        stdout.print(
            f"[bold]{summary.imported}[/] imported, {summary.duplicates} duplicate, "
            f"[{'bold red' if summary.rejected else 'default'}]{summary.rejected} rejected[/]"
            f"{f', {summary.skipped} skipped' if summary.skipped else ''} "
            f"into tenant [bold]{escape(summary.tenant)}[/] ({escape(str(home.root))})"
        )
    return int(summary.exit_code)


def _signer(report: VerifyReport) -> dict[str, Any]:
    return {"signer": report.signer} if report.signer else {}
