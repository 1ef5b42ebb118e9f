"""`stella tui`: open the terminal UI on the home."""

from __future__ import annotations

import argparse
from typing import Any

from core.home import resolve_home


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "tui",
        parents=[common],
        help="open the terminal UI (dashboard, import, verify, keys)",
        description="Open the terminal UI on the home. `stella` with no arguments on a terminal does the same.",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Textual is imported only when the TUI is opened, so other commands never pay for it.
    from app.tui.app import StellaApp

    StellaApp(resolve_home(args.home)).run()
    return 0
