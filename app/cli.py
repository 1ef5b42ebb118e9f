"""The `stella` command line: argparse, one entry point, one place that maps errors to exit codes."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from app.output import escape, print_json, stderr
from app.visible import visible
from core import __version__, lean_imports
from core.errors import ExitCode, StellaError
from core.passphrase import allow_prompt


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors map to exit code 2 in one place."""

    def error(self, message: str) -> NoReturn:
        raise _UsageExit(self.format_usage() + f"{self.prog}: error: {message}")


class _UsageExit(Exception):
    pass


def common_options(*, keep_earlier: bool = False) -> argparse.ArgumentParser:
    """Options every command takes, before or after the command name.

    With ``keep_earlier`` (the subcommands' copy) an option left out after the command name sets nothing,
    so ``stella --home B keys list`` keeps the ``--home`` given before it.
    """
    common = _Parser(add_help=False)
    common.add_argument(
        "--home",
        metavar="DIR",
        default=argparse.SUPPRESS if keep_earlier else None,
        help="state directory (default: $STELLA_HOME or the user data dir)",
    )
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if keep_earlier else False,
        help="machine-readable output on stdout",
    )
    return common


# Command name -> (module with register(sub, common), its one-line help). Only the module of the command being run
# is imported: `stella --help` and `--version` import none, and a receiver's `stella verify` never loads the store,
# DuckDB or the source adapters. The help here is what `stella --help` lists; a test holds it equal to the help each
# module registers.
COMMANDS: dict[str, tuple[str, str]] = {
    "import": ("app.commands.imports", "import documents (files, directories, .zip/.tar/.tar.gz/.tar.zst archives)"),
    "data": ("app.commands.data", "see what the store holds"),
    "keys": ("app.commands.keys", "signing keys"),
    "export": ("app.commands.export", "export profiles, runs and bundles"),
    "trust": ("app.commands.trust", "trusted public keys for verification"),
    "verify": (
        "app.commands.verify",
        "verify a received bundle offline (signatures, every digest and size, layout)",
    ),
    "inspect": (
        "app.commands.inspect",
        "show what a bundle's manifest says (kind, tenant, counts, signer, dates, sizes) WITHOUT verifying it",
    ),
    "verify-script": (
        "app.commands.verify_script",
        "print the trusted verify.sh (or verify-portal.sh) for checking a bundle without stella",
    ),
    "trivy": ("app.commands.trivy", "Trivy DB bundles: install into a Trivy cache"),
    "tuf": ("app.commands.tuf", "TUF keys, thresholds, expiry and root rotation for mirrors"),
    "mirror": ("app.commands.mirror", "import mirror bundles into a mirror directory, safely"),
    "devportal": (
        "app.commands.devportal",
        "developer portals: import a tree, export bundle.tgz, verify it, serve it on 127.0.0.1",
    ),
    "risk": ("app.commands.risk", "risk bundles (CISA KEV, FIRST EPSS): verify and import"),
    "attest": ("app.commands.attest", "attestation bundles: verify offline and import"),
    "kit": (
        "app.commands.kit",
        "Offline Kit media: lay bundles out on DVD, Blu-ray or USB volumes, verify each volume alone, restore",
    ),
    "timeline": ("app.commands.timeline", "what happened, in order: export runs, evidence, holds, incidents"),
    "evidence": ("app.commands.evidence", "the evidence locker: sealed snapshots, holds, retention, custody"),
    "incident": ("app.commands.incident", "incident mode: longer retention, debug captures, timeline events"),
    "schedule": ("app.commands.schedule", "scheduled exports and retention prunes (systemd timers)"),
    "retention": ("app.commands.retention", "how long bundles and distribution records are kept; prune expired ones"),
    "distribute": (
        "app.commands.distribute",
        "push a run's bundle to an OCI registry (signature and provenance as a referrer) or an S3 bucket",
    ),
    "bootstrap": ("app.commands.bootstrap", "bootstrap packs: images and Helm charts, signed, offline; list, push"),
    "pull": (
        "app.commands.pull",
        "pull a bundle from an OCI registry by digest, every byte checked (then: stella verify FILE)",
    ),
    "token": ("app.commands.token", "access tokens for the local API: create, list, revoke"),
    "serve": (
        "app.commands.serve",
        "serve the local HTTP API (tokens from `stella token create`) on 127.0.0.1, or over TLS elsewhere",
    ),
    "tui": (
        "app.tui.command",
        "open the terminal UI (dashboard, import, data, profiles, export runs, verify, keys, bootstrap packs)",
    ),
}


def _command_of(args: Sequence[str]) -> str | None:
    """The subcommand named in ``args`` (the first positional), if any."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--home", "--log-level"):
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def _only_home(args: Sequence[str]) -> bool:
    """Whether ``args`` name no command and no option but the home: `stella` or `stella --home DIR`."""
    if not args:
        return True
    if len(args) == 1:
        return args[0].startswith("--home=")
    return len(args) == 2 and args[0] == "--home"


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of `stella`, with the options and subcommands of the command ``only`` (imported for it) and the
    name and help of every other command."""
    common = common_options(keep_earlier=True)
    parser = _Parser(
        prog="stella",
        description="StellaOps Export Center, offline edition: import security data, build signed bundles, "
        "verify them offline.",
        parents=[common_options()],
    )
    parser.add_argument("--version", action="version", version=f"stella {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="also show log lines on stderr: -v info, -vv debug (they always go to HOME/logs/stella.jsonl)",
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        help="the level of the log file, and of stderr's log lines (shown only with -v or this option)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help) in COMMANDS.items():
        if name == only:
            importlib.import_module(module).register(sub, common)
        else:  # listed by `stella --help`; never chosen, since a named command is built in full
            sub.add_parser(name, help=help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    lean_imports.install()
    args_list = list(sys.argv[1:] if argv is None else argv)
    if _only_home(args_list) and sys.stdin.isatty() and sys.stdout.isatty():
        args_list = [*args_list, "tui"]  # `stella` (or `stella --home DIR`) alone on a terminal opens the TUI
    named = _command_of(args_list)
    parser = build_parser(named if named in COMMANDS else None)
    try:
        args = parser.parse_args(args_list)
    except _UsageExit as exc:
        stderr.print(str(exc), markup=False)
        return int(ExitCode.USAGE)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return int(ExitCode.USAGE)
    if args.command == "tui" and args.json:  # the TUI draws a screen: there is no document to write
        stderr.print("stella tui: error: --json is not accepted: the TUI has no machine-readable output", markup=False)
        return int(ExitCode.USAGE)
    if args.command != "tui":
        allow_prompt()  # a key's passphrase may be typed at a prompt on a terminal (never inside the TUI)
    _configure_logs(args)
    try:
        try:
            code: int = args.handler(args)
        except (StellaError, KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # a full disk, an I/O error: exit 8 naming the path, not a bug report
            from core.atomic import environment_failure  # only on this path: secrets, shutil and the rest load late

            failure = environment_failure(exc)
            if failure is None:
                raise
            raise failure from exc
        return code
    except StellaError as exc:
        if getattr(args, "json", False):
            print_json(exc.to_dict())
        stderr.print("[bold red]error: [/]", end="")
        stderr.print(visible(exc.diagnostics()), markup=False)  # one line, whatever path or title it quotes
        return int(exc.exit_code)
    except KeyboardInterrupt:
        stderr.print("cancelled")
        return int(ExitCode.CANCELLED)
    except MemoryError:
        stderr.print("[bold red]error: out of memory[/]")
        return int(ExitCode.ENVIRONMENT)
    except Exception as exc:  # a defect, not a user error: one clear line, the details with STELLA_DEBUG=1
        if os.environ.get("STELLA_DEBUG"):
            raise
        stderr.print(f"[bold red]{escape(f'internal error: {type(exc).__name__}: {exc}')}[/]")
        stderr.print("this is a bug in stella; rerun with STELLA_DEBUG=1 for the traceback and report it")
        return 1


def _configure_logs(args: argparse.Namespace) -> None:
    """Send the core's log lines to the home's JSON-lines file and, when asked (-v, --log-level), to stderr."""
    from core.home import resolve_home
    from services import logs

    terminal = args.log_level or {0: None, 1: "info"}.get(args.verbose, "debug")
    if args.command == "tui":
        terminal = None  # the TUI owns the terminal
    try:
        home = resolve_home(args.home)
    except StellaError:
        home = None
    logs.configure(home, file_level=args.log_level or "info", terminal_level=terminal)


def run() -> NoReturn:
    """Console-script entry point."""
    if getattr(sys, "frozen", False):
        # In the binary, a worker process (spawned by a large import) starts the binary again: PyInstaller's
        # multiprocessing hook runs the worker here instead of the CLI.
        import multiprocessing

        multiprocessing.freeze_support()
    sys.exit(main())


if __name__ == "__main__":
    run()
