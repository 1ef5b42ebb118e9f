"""The TUI's messages: what a thread worker posts to its screen, as dataclasses in one place.

A worker never touches widgets; it posts one of these and the screen's ``on_<name>`` handler draws it on the
event loop. Progress and checks come from :class:`app.tui.progress.MessageObserver`, which coalesces progress.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from core.progress import Check

if TYPE_CHECKING:
    from app.tui.screens.dashboard import DashboardData


@dataclass
class PhaseStarted(Message):
    """A phase of long work began, with ``total`` units if known."""

    phase: str
    total: int | None = None


@dataclass
class ProgressAdvanced(Message):
    """``units`` more are done since the last message (several advances coalesced); ``detail`` is the latest one
    given, if any (the file being read, say)."""

    units: int
    detail: str | None = None


@dataclass
class PhaseFinished(Message):
    """The phase is over."""

    phase: str


@dataclass
class CheckCompleted(Message):
    """A verification check completed, passed or failed."""

    check: Check


@dataclass
class DashboardLoaded(Message):
    """The dashboard's figures, read from the home and the store by its worker."""

    data: DashboardData
