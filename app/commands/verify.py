"""`stella verify BUNDLE`: offline, fail-closed verification with a check-by-check report.

Also what the receiving commands (`stella trivy install`, `stella attest|risk bundle verify|import`,
`stella devportal verify|serve`) share to print: :class:`CheckPrinter`, :func:`finish`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.output import escape, print_json, stderr, stdout
from core.errors import StellaError
from core.progress import Check, NullObserver

if TYPE_CHECKING:  # loaded when a command runs, not to build its parser: `stella verify --help` stays light
    from core.home import Home
    from verify.bundle import VerifyReport


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "verify",
        parents=[common],
        help="verify a received bundle offline (signatures, every digest and size, layout)",
        description="Verify a bundle without extracting it. Trusted signers come from --key, or else from the "
        "trust store (`stella trust add`). Exit codes: 0 verified, 3 bad input, 4 integrity, 5 signature, "
        "6 trust metadata.",
    )
    p.add_argument("bundle", type=Path)
    p.add_argument("--key", type=Path, action="append", metavar="PUB", help="trusted public key (PEM); repeatable")
    p.add_argument(
        "--identity",
        type=Path,
        action="append",
        metavar="FILE",
        help="age identity file (AGE-SECRET-KEY-1...): decrypt an encrypted payload and check its plaintext digests",
    )
    p.add_argument("--at", metavar="TIME", help="evaluate time-dependent checks at this RFC 3339 time (UTC)")
    p.add_argument(
        "--metrics-textfile",
        type=Path,
        metavar="PATH.prom",
        help="count the outcome in the home's store (exporter_verify_total) and rewrite this node_exporter textfile"
        " (default: the file set with `stella export metrics --set-textfile`; none: nothing is recorded)",
    )
    p.set_defaults(handler=run)


class CheckPrinter(NullObserver):
    """The CLI's observer of a verification: prints each check as it completes (nothing with ``--json``), passes
    to stdout (unless ``passes`` is False), failures to stderr with the file they name (unless ``paths`` is False);
    ``width`` aligns the names."""

    def __init__(self, args: argparse.Namespace, width: int = 16, *, passes: bool = True, paths: bool = True) -> None:
        self.json = bool(args.json)
        self.width = width
        self.passes = passes
        self.paths = paths

    def check(self, check: Check) -> None:
        if self.json or (check.ok and not self.passes):
            return
        mark = "[green]  ok  [/]" if check.ok else "[bold red] FAIL [/]"
        where = f" [dim]{escape(check.path)}[/]" if self.paths and check.path and not check.ok else ""
        (stdout if check.ok else stderr).print(f"{mark} {check.name:{self.width}} {escape(check.detail)}{where}")


def say_not_verified(args: argparse.Namespace, report: VerifyReport) -> None:
    """The failure's diagnostics on stderr (not with ``--json``: the report carries them)."""
    if report.error is not None and not args.json:
        stderr.print(f"[bold red]not verified:[/] {escape(report.error.diagnostics())}")


def finish(
    args: argparse.Namespace, report: VerifyReport, verified: Callable[[], str] | None = None, *, said: bool = False
) -> int:
    """Print the report with ``--json``, else its failure (unless ``said`` already) or, once it verified, the line
    ``verified()``; returns the exit code."""
    if not said:
        say_not_verified(args, report)
    if args.json:
        print_json(report.to_dict())
    if report.error is not None:
        return int(report.error.exit_code)
    if verified is not None and not args.json:
        stdout.print(f"[bold green]verified[/] {escape(str(args.bundle))}: {verified()}")
    return 0


def not_imported(args: argparse.Namespace, report: VerifyReport, nothing: Any) -> int:
    """A bundle that did not verify imports nothing: with ``--json`` the report with ``"imported": nothing``;
    returns the exit code."""
    from services.receive import not_verified

    if args.json:
        print_json({"verification": report.to_dict(), "imported": nothing})
    return int(not_verified(report).exit_code)


def receive_commands(
    sub: Any,
    common: argparse.ArgumentParser,
    name: str,
    helps: tuple[str, str],
    checks: argparse.ArgumentParser,
    verify: tuple[str, str, Callable[[argparse.Namespace], int]],
    load: tuple[str, str, Callable[[argparse.Namespace], int]],
) -> None:
    """`stella NAME bundle verify|import`, both with the options of ``checks``; ``helps``: of NAME and of bundle,
    ``verify`` and ``load``: the help, description and handler of each action."""
    p = sub.add_parser(name, parents=[common], help=helps[0])
    nsub = p.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)
    b = nsub.add_parser("bundle", parents=[common], help=helps[1])
    bsub = b.add_subparsers(dest=f"{name}_bundle_command", metavar="ACTION", required=True)
    for action, (help, description, handler) in (("verify", verify), ("import", load)):
        q = bsub.add_parser(action, parents=[common, checks], help=help, description=description)
        if action == "import":
            q.add_argument(
                "--tenant", help="tenant to import into (must be the bundle's tenant; default: the bundle's)"
            )
        q.set_defaults(handler=handler)


def run(args: argparse.Namespace) -> int:
    from core.clock import parse_at
    from core.home import resolve_home
    from services.metrics_settings import textfile_for  # services.metrics itself only when an outcome is recorded
    from services.receive import ReceiveRequest, verify_received

    home = resolve_home(args.home)
    textfile = textfile_for(home, args.metrics_textfile)
    request = ReceiveRequest(
        args.bundle, key_files=tuple(args.key or ()), at=parse_at(args.at), identity_files=tuple(args.identity or ())
    )
    try:
        report = verify_received(home, request, CheckPrinter(args)).report
    except StellaError as exc:
        _count_verify(home, textfile, exc)
        raise
    _count_verify(home, textfile, report.error, (report.manifest.tenant if report.manifest is not None else None) or "")
    m = report.manifest
    return finish(
        args,
        report,
        lambda: f"{m.profile.id} run {m.run_id} for tenant {m.tenant}, {m.file_count} files, created {m.created_at}",
    )


def _count_verify(home: Home, textfile: Path | None, error: StellaError | None, tenant: str = "") -> None:
    """Count the outcome in exporter_verify_total when a metrics textfile is asked for; a failure to is a warning."""
    if textfile is None:
        return
    from services import metrics

    try:
        metrics.record_verify_and_update(home, textfile, error, tenant)
    except StellaError as exc:
        stderr.print(f"[bold yellow]warning:[/] metrics not written: {escape(exc.diagnostics())}")
