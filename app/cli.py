"""The `stella` command line: argparse, one entry point, one place that maps errors to exit codes."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from rich.text import Text

from app.output import print_json, stderr
from core import __version__
from core.errors import ExitCode, StellaError


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


# Command name -> module with register(sub, common). Only the module of the command being run is imported, so a
# receiver's `stella verify` never loads the store, DuckDB or the source adapters (DESIGN.md section 2).
COMMANDS: dict[str, str] = {
    "import": "app.commands.imports",
    "data": "app.commands.data",
    "keys": "app.commands.keys",
    "export": "app.commands.export",
    "trust": "app.commands.trust",
    "verify": "app.commands.verify",
    "trivy": "app.commands.trivy",
    "tuf": "app.commands.tuf",
    "mirror": "app.commands.mirror",
    "devportal": "app.commands.devportal",
    "risk": "app.commands.risk",
    "attest": "app.commands.attest",
    "tui": "app.tui.command",
}


def _command_of(args: Sequence[str]) -> str | None:
    """The subcommand named in ``args`` (the first positional), if any."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--home":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    common = common_options(keep_earlier=True)
    parser = _Parser(
        prog="stella",
        description="StellaOps Export Center, offline edition: import security data, build signed bundles, "
        "verify them offline.",
        parents=[common_options()],
    )
    parser.add_argument("--version", action="version", version=f"stella {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in COMMANDS.items():
        if only is None or only == name:
            importlib.import_module(module).register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code (DESIGN.md section 7)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list and sys.stdin.isatty() and sys.stdout.isatty():
        args_list = ["tui"]  # `stella` alone on a terminal opens the TUI (DESIGN.md section 1)
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
    try:
        code: int = args.handler(args)
        return code
    except StellaError as exc:
        if getattr(args, "json", False):
            print_json(exc.to_dict())
        stderr.print(Text("error: ", style="bold red") + Text(exc.diagnostics()))
        return int(exc.exit_code)
    except KeyboardInterrupt:
        stderr.print("cancelled")
        return int(ExitCode.CANCELLED)
    except MemoryError:
        stderr.print(Text("error: out of memory", style="bold red"))
        return int(ExitCode.ENVIRONMENT)
    except Exception as exc:  # a defect, not a user error: one clear line, the details with STELLA_DEBUG=1
        if os.environ.get("STELLA_DEBUG"):
            raise
        stderr.print(Text(f"internal error: {type(exc).__name__}: {exc}", style="bold red"))
        stderr.print("this is a bug in stella; rerun with STELLA_DEBUG=1 for the traceback and report it")
        return 1


def run() -> NoReturn:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
