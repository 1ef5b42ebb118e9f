"""`stella pull`: registered from the distribution commands' module, which owns both (app/commands/distribute.py)."""

from __future__ import annotations

import argparse
from typing import Any

from app.commands.distribute import register_pull


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    register_pull(sub, common)
