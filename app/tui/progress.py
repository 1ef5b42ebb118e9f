"""The TUI's observer: a thread worker reports to it, and it posts messages to a screen, a few a second.

A worker importing ten thousand files would post ten thousand progress messages, and the screen would spend its
time redrawing a bar nobody can read that fast. :class:`MessageObserver` adds up advances and posts them at most
once per ``batch_time`` (toolong's idea), while phase changes and checks go out at once, after any progress held
back, so the screen sees everything in order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from textual.message import Message

from app.tui.messages import CheckCompleted, PhaseFinished, PhaseStarted, ProgressAdvanced
from core.progress import CancelToken, Check

#: At most this many progress messages a second reach a screen.
UPDATES_PER_SECOND = 5


class MessageTarget(Protocol):
    """What messages are posted to: a screen or widget (``post_message`` is thread-safe in Textual)."""

    def post_message(self, message: Message) -> bool:
        """Queue ``message`` for the target's event loop."""


class MessageObserver:
    """An :class:`core.progress.Observer` for a worker thread: posts :mod:`app.tui.messages` to ``target``.

    Advances are added up and posted at most once per ``batch_time`` seconds; ``start``, ``finish``, ``check`` and
    :meth:`flush` post what is held back first. Safe to call from several threads. ``is_cancelled`` reads
    ``token`` (the screen keeps it and cancels it on ctrl+x or escape).
    """

    def __init__(
        self,
        target: MessageTarget,
        token: CancelToken | None = None,
        *,
        batch_time: float = 1 / UPDATES_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.token = token or CancelToken()
        self._batch_time = batch_time
        self._clock = clock
        self._lock = threading.Lock()
        self._units = 0
        self._detail: str | None = None
        self._posted_at = float("-inf")

    def start(self, phase: str, total: int | None = None) -> None:
        with self._lock:
            self._flush()
            self.target.post_message(PhaseStarted(phase, total))

    def advance(self, units: int = 1, *, detail: str | None = None) -> None:
        with self._lock:
            self._units += units
            if detail is not None:
                self._detail = detail
            if self._clock() - self._posted_at >= self._batch_time:
                self._flush()

    def finish(self, phase: str) -> None:
        with self._lock:
            self._flush()
            self.target.post_message(PhaseFinished(phase))

    def check(self, check: Check) -> None:
        with self._lock:
            self._flush()
            self.target.post_message(CheckCompleted(check))

    def is_cancelled(self) -> bool:
        return self.token.is_cancelled()

    def flush(self) -> None:
        """Post the progress held back now (a worker's last act, when it does not end with ``finish``)."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        if self._units or self._detail is not None:
            self.target.post_message(ProgressAdvanced(self._units, self._detail))
            self._posted_at = self._clock()
        self._units, self._detail = 0, None
