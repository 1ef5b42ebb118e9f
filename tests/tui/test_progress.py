"""The TUI's observer: progress coalesced to a few messages a second, in order with phases and checks, from threads."""

from __future__ import annotations

import threading

from textual.message import Message

from app.tui.messages import CheckCompleted, PhaseFinished, PhaseStarted, ProgressAdvanced
from app.tui.progress import UPDATES_PER_SECOND, MessageObserver
from core.progress import CancelToken, Check, Observer


class Target:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()

    def post_message(self, message: Message) -> bool:
        with self._lock:
            self.messages.append(message)
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_advances_within_a_batch_are_posted_as_one() -> None:
    target, clock = Target(), Clock()
    observer = MessageObserver(target, clock=clock)
    observer.start("read", total=10_000)
    for i in range(10_000):
        observer.advance(detail=f"file {i}")
        if i % 1000 == 999:
            clock.now += 0.1  # ten thousand advances over one simulated second
    observer.finish("read")
    progress = [m for m in target.messages if isinstance(m, ProgressAdvanced)]
    assert len(progress) <= UPDATES_PER_SECOND + 2
    assert sum(m.units for m in progress) == 10_000
    assert progress[-1].detail == "file 9999"
    assert isinstance(target.messages[0], PhaseStarted) and target.messages[0].total == 10_000
    assert isinstance(target.messages[-1], PhaseFinished)


def test_a_check_comes_after_the_progress_before_it() -> None:
    target, clock = Target(), Clock()
    observer = MessageObserver(target, clock=clock)
    observer.advance(3)  # the first advance goes out at once
    observer.advance(2)  # held back: same batch
    observer.check(Check("signature", True, "verified"))
    observer.advance(4)
    observer.flush()
    kinds = [(type(m).__name__, getattr(m, "units", None)) for m in target.messages]
    assert kinds == [
        ("ProgressAdvanced", 3),
        ("ProgressAdvanced", 2),
        ("CheckCompleted", None),
        ("ProgressAdvanced", 4),
    ]
    assert isinstance(target.messages[2], CheckCompleted) and target.messages[2].check.name == "signature"


def test_advances_from_several_threads_are_all_counted() -> None:
    target = Target()
    observer = MessageObserver(target)

    def work() -> None:
        for _ in range(5_000):
            observer.advance()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    observer.flush()
    progress = [m for m in target.messages if isinstance(m, ProgressAdvanced)]
    assert sum(m.units for m in progress) == 20_000
    assert len(progress) < 100  # a few a second, not twenty thousand


def test_is_cancelled_reads_the_token() -> None:
    token = CancelToken()
    observer: Observer = MessageObserver(Target(), token)  # mypy: it is an Observer
    assert not observer.is_cancelled()
    token.cancel()
    assert observer.is_cancelled()
