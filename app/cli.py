"""The `stella` command line: argparse, one entry point, one place that maps errors to exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from rich.text import Text

from app.commands import data as data_cmd
from app.commands import export as export_cmd
from app.commands import imports as import_cmd
from app.commands import keys as keys_cmd
from app.commands import trust as trust_cmd
from app.commands import verify as verify_cmd
from app.output import print_json, stderr
from core import __version__
from core.errors import ExitCode, StellaError


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors map to exit code 2 in one place."""

    def error(self, message: str) -> NoReturn:
        raise _UsageExit(self.format_usage() + f"{self.prog}: error: {message}")


class _UsageExit(Exception):
    pass


def common_options() -> argparse.ArgumentParser:
    """Options every command takes."""
    common = _Parser(add_help=False)
    common.add_argument("--home", metavar="DIR", help="state directory (default: $STELLA_HOME or the user data dir)")
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = _Parser(
        prog="stella",
        description="StellaOps Export Center, offline edition: import security data, build signed bundles, "
        "verify them offline.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"stella {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    import_cmd.register(sub, common)
    data_cmd.register(sub, common)
    keys_cmd.register(sub, common)
    export_cmd.register(sub, common)
    trust_cmd.register(sub, common)
    verify_cmd.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code (DESIGN.md section 7)."""
    parser = build_parser()
    args_list = list(sys.argv[1:] if argv is None else argv)
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
