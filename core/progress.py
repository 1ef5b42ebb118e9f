"""One observer for long work: progress, check results and cancellation, without printing.

Services, verifiers and the run engine report to an :class:`Observer`. The CLI draws a rich progress bar and prints
checks (or prints JSON); the TUI posts messages, coalesced to a few a second. An observer also answers
:meth:`Observer.is_cancelled`, which long work polls between units (the archive reader before every read), so
cancelling is one flag whatever the surface.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass
class Check:
    """One verification step and its outcome, as a receiver reads it (``stella verify`` prints one per line)."""

    name: str
    ok: bool
    detail: str
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.name, "ok": self.ok, "detail": self.detail}
        if self.path is not None:
            out["path"] = self.path
        return out


class Observer(Protocol):
    """Receives progress, check results and is asked whether to stop; every method is called from the worker."""

    def start(self, phase: str, total: int | None = None) -> None:
        """A phase begins; ``total`` units if known."""

    def advance(self, units: int = 1, *, detail: str | None = None) -> None:
        """``units`` more units are done."""

    def finish(self, phase: str) -> None:
        """The phase is over."""

    def check(self, check: Check) -> None:
        """A verification check completed (passed or failed)."""

    def is_cancelled(self) -> bool:
        """True when the user asked to stop."""


class NullObserver:
    """An observer that ignores everything and never cancels; the default of every service."""

    def start(self, phase: str, total: int | None = None) -> None:
        return None

    def advance(self, units: int = 1, *, detail: str | None = None) -> None:
        return None

    def finish(self, phase: str) -> None:
        return None

    def check(self, check: Check) -> None:
        return None

    def is_cancelled(self) -> bool:
        return False


class Cancellable(Protocol):
    """Anything long work can ask whether to stop: an :class:`Observer`, a :class:`CancelToken`."""

    def is_cancelled(self) -> bool:
        """True when the user asked to stop."""


class CheckObserver(NullObserver):
    """An observer made of plain callables: ``on_check`` hears each check, ``cancel`` says whether to stop.

    For a caller that only prints checks or only holds a cancel token; progress is ignored.
    """

    def __init__(self, on_check: Callable[[Check], None] | None = None, cancel: Cancellable | None = None) -> None:
        self._on_check = on_check
        self._cancel = cancel

    def check(self, check: Check) -> None:
        if self._on_check is not None:
            self._on_check(check)

    def is_cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.is_cancelled()


class CancelToken:
    """A thread-safe flag a surface sets and the core polls (an observer's ``is_cancelled`` usually reads one)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def is_cancelled(self) -> bool:
        return self._event.is_set()
