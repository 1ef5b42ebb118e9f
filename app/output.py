"""How the CLI talks: data to stdout, diagnostics and progress to stderr, JSON when asked."""

from __future__ import annotations

import sys
from typing import Any

import orjson
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from core.progress import CancelToken, Check

stdout = Console(soft_wrap=True, highlight=False)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(value: Any) -> None:
    """One JSON document on stdout (stable key order as built, UTF-8)."""
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def print_json_line(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")
    sys.stdout.flush()


def table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    t = Table(title=title, show_lines=False, header_style="bold")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*["" if v is None else str(v) for v in row])
    stdout.print(t)


class RichSink:
    """A Observer drawing a progress bar on stderr (only when stderr is a terminal)."""

    def __init__(self, label: str, cancel: CancelToken | None = None) -> None:
        self.enabled = stderr.is_terminal
        self.cancel = cancel or CancelToken()
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[detail]}", style="dim"),
            console=stderr,
            transient=True,
        )
        self._label = label
        self._task: Any = None

    def start(self, phase: str, total: int | None = None) -> None:
        if not self.enabled:
            return
        self._progress.start()
        self._task = self._progress.add_task(self._label, total=total, detail="")

    def advance(self, units: int = 1, *, detail: str | None = None) -> None:
        if self._task is not None:
            short = (detail or "")[-60:]
            self._progress.update(self._task, advance=units, detail=short)

    def finish(self, phase: str) -> None:
        if self._task is not None:
            self._progress.stop()
            self._task = None

    def check(self, check: Check) -> None:
        return None  # checks are drawn by the command or screen that asked for them

    def is_cancelled(self) -> bool:
        return self.cancel.is_cancelled()
