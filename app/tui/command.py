"""`stella tui`: open the terminal UI on the home."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.errors import EnvironmentFailure
from core.home import resolve_home

#: The terminal size of a ``--screenshot`` run (the size the TUI is designed to stay usable at).
SCREENSHOT_SIZE = (80, 24)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "tui",
        parents=[common],
        help="open the terminal UI (dashboard, import, data, profiles, export runs, verify, keys, bootstrap packs)",
        description="Open the terminal UI on the home. `stella` with no arguments on a terminal does the same.",
    )
    p.add_argument(
        "--screenshot",
        type=Path,
        metavar="FILE.svg",
        help="run headless at 80x24, save the first screen as SVG once it has loaded, and exit "
        "(a smoke test that needs no terminal; also measures the time to first screen)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Textual is imported only when the TUI is opened, so other commands never pay for it.
    from app.tui.app import StellaApp

    home = resolve_home(args.home)
    if args.screenshot is not None:
        shot = args.screenshot.expanduser().resolve()
        StellaApp(home, screenshot=shot).run(headless=True, size=SCREENSHOT_SIZE)
        if not shot.is_file():
            raise EnvironmentFailure("the TUI ended before its first screen was drawn: no screenshot", path=str(shot))
        return 0
    StellaApp(home).run()
    return 0
