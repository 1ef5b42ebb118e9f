"""`stella verify BUNDLE`: offline, fail-closed verification with a check-by-check report."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rich.markup import escape

import services.trust
from app.output import print_json, stderr, stdout
from core.age_stream import read_identities
from core.clock import parse_at
from core.errors import BadInputError, PolicyRefusal
from core.home import resolve_home
from core.progress import Check, CheckObserver
from core.trust import TrustedKey
from services.trust import keys_from_files
from verify.bundle import VerifyReport, verify_bundle

__all__ = ["keys_from_files", "parse_at", "read_identities", "register", "run"]

R = TypeVar("R", bound=VerifyReport)
_TENANT_HELP = "tenant to import into (must be the bundle's tenant; default: the bundle's)"
T = TypeVar("T")


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
    p.set_defaults(handler=run)


def trusted_keys(args: argparse.Namespace, option: str = "key") -> list[TrustedKey]:
    """The trusted keys of a receiving command: the files of its ``--key`` (``option``), or else the trust store's."""
    return services.trust.trusted_keys(resolve_home(args.home), getattr(args, option) or ())


def check_printer(args: argparse.Namespace, width: int = 16) -> Callable[[Check], None]:
    """Print each check as it completes (nothing with ``--json``): passes to stdout, failures to stderr."""

    def show(check: Check) -> None:
        if args.json:
            return
        mark = "[green]  ok  [/]" if check.ok else "[bold red] FAIL [/]"
        where = f" [dim]{escape(check.path)}[/]" if check.path and not check.ok else ""
        (stdout if check.ok else stderr).print(f"{mark} {check.name:{width}} {escape(check.detail)}{where}")

    return show


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


def own_tenant(report: VerifyReport, bundle: Path, tenant: str | None, what: str) -> str:
    """The tenant to import a verified bundle into: ``tenant`` if given, which must be the bundle's own."""
    from core.ingest import validate_tenant  # loads the store: `stella verify` needs neither

    bundle_tenant = str(report.manifest.get("tenant"))
    chosen = validate_tenant(tenant or bundle_tenant)
    if chosen != bundle_tenant:
        raise PolicyRefusal(
            f"the bundle belongs to tenant {bundle_tenant!r}, not {chosen!r}",
            path=str(bundle),
            hint=f"{what} is imported into its own tenant",
        )
    return chosen


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


def verify_and_import(
    args: argparse.Namespace,
    verify: Callable[[Path], R],
    load: Callable[[R], T],
    *,
    verified: Callable[[R], bool],
    nothing: Any,
) -> tuple[R, T] | int:
    """The verify-then-import flow of `stella attest|risk bundle import`.

    ``verify(workdir)`` verifies the bundle and extracts what verified into a temporary directory; only if
    ``verified(report)`` is ``load(report)`` run (while the files are there). A bundle that did not verify
    imports nothing: with ``--json`` the report is printed with ``"imported": nothing``; returns its exit code.
    """
    with tempfile.TemporaryDirectory(prefix="stella-import-") as work:
        report = verify(Path(work))
        if not verified(report):
            if args.json:
                print_json({"verification": report.to_dict(), "imported": nothing})
            error = report.error or BadInputError("the bundle did not verify", path=str(args.bundle))
            return int(error.exit_code)
        return report, load(report)


def run(args: argparse.Namespace) -> int:
    keys = trusted_keys(args)
    identities = [i for path in args.identity or [] for i in read_identities(path)]
    report = verify_bundle(
        args.bundle, keys, at=parse_at(args.at), observer=CheckObserver(check_printer(args)), identities=identities
    )
    m = report.manifest
    return finish(
        args,
        report,
        lambda: (
            f"{(m.get('profile') or {}).get('id')} run {m.get('runId')} for tenant {m.get('tenant')}, "
            f"{m.get('fileCount')} files, created {m.get('createdAt')}"
        ),
    )
