"""Progress reporting without printing: the core talks to a ``ProgressSink``.

The CLI draws a rich progress bar or prints JSON lines; the TUI posts messages. A sink may
also ask for cancellation, which long-running work checks between units of work.
"""

from __future__ import annotations

import threading
from typing import Protocol


class ProgressSink(Protocol):
    """Receives progress from long work in the core."""

    def start(self, phase: str, total: int | None = None) -> None:
        """A phase begins; ``total`` units if known."""

    def advance(self, units: int = 1, *, detail: str | None = None) -> None:
        """``units`` more units are done."""

    def finish(self, phase: str) -> None:
        """The phase is over."""

    def is_cancelled(self) -> bool:
        """True when the user asked to stop."""


class NullSink:
    """A sink that ignores everything; used by tests and scripts."""

    def start(self, phase: str, total: int | None = None) -> None:
        return None

    def advance(self, units: int = 1, *, detail: str | None = None) -> None:
        return None

    def finish(self, phase: str) -> None:
        return None

    def is_cancelled(self) -> bool:
        return False


class CancelToken:
    """A thread-safe flag a surface sets and the core polls."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def is_cancelled(self) -> bool:
        return self._event.is_set()
