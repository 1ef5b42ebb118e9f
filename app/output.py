"""How the CLI talks: data to stdout, diagnostics and progress to stderr, JSON when asked.

Lines are written with console markup (``[bold red]error:[/] ...``, the markup of rich) by a small console of our
own, so a command that only prints lines, such as `stella verify`, never loads rich: on a terminal the few styles
we use become ANSI codes, elsewhere the markup is dropped, byte for byte as rich would. Tables, progress bars and
pretty JSON are drawn by rich, imported when first drawn.

Nothing printed steers the terminal: text from data passes through :func:`escape` (a field: one line, control
characters written out, markup escaped), and the console writes out any control character left in what it prints
(a terminal escape from anywhere becomes ``\\x1b``), where rich would pass ESC through and drop a carriage return.
Tables and pretty JSON show their cells the same way.
"""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, Any, TextIO

from app.visible import json_text, visible, visible_lines
from core.progress import CancelToken, Check

if TYPE_CHECKING:
    import rich.console

__all__ = [
    "Console",
    "RichSink",
    "escape",
    "json_text",
    "print_json",
    "print_json_line",
    "stderr",
    "stdout",
    "table",
]

# The markup grammar of rich (rich.markup): a tag is `[` + a lower-case letter, `#`, `/` or `@` + anything up to `]`,
# and backslashes before it escape it.
_TAG = re.compile(r"((\\*)\[([a-z#/@][^[]*?)])")
_ESCAPABLE = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")
_ATTRIBUTES = {"bold": "1", "b": "1", "dim": "2", "d": "2", "italic": "3", "i": "3", "underline": "4", "u": "4"}
_COLOURS = {
    "black": "30",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
    "white": "37",
}


def escape(text: str) -> str:
    """``text`` from data as one field of a line: control characters and newlines written out
    (:func:`app.visible.visible`), and anything that reads as a markup tag escaped, so it prints as written
    (rich.markup.escape)."""
    text = visible(text)

    def double(match: re.Match[str]) -> str:
        backslashes, tag = match.groups()
        return f"{backslashes}{backslashes}\\{tag}"

    text = _ESCAPABLE.sub(double, text)
    if text.endswith("\\") and not text.endswith("\\\\"):
        return text + "\\"
    return text


class MarkupError(ValueError):
    """A closing tag that closes nothing: a defect in the string printed, as in rich."""


def _sgr(styles: list[str], colour: bool) -> str:
    """The ANSI select-graphic-rendition parameters of open styles, in rich's order: attributes, then the colour."""
    attributes: list[str] = []
    fg = ""
    for style in styles:
        for word in style.split():
            if word in _ATTRIBUTES and _ATTRIBUTES[word] not in attributes:
                attributes.append(_ATTRIBUTES[word])
            elif word in _COLOURS:
                fg = _COLOURS[word]
    ordered = sorted(attributes)
    return ";".join([*ordered, fg] if fg and colour else ordered)


def render(markup: str, *, ansi: bool, colour: bool = True) -> str:
    """``markup`` as text: tags dropped, or turned into ANSI codes with ``ansi``; escapes resolved as rich does."""
    out: list[str] = []
    stack: list[str] = []
    position = 0

    def text(chunk: str) -> None:
        chunk = chunk.replace("\\[", "[")
        if not chunk:
            return
        codes = _sgr(stack, colour) if ansi else ""
        out.append(f"\x1b[{codes}m{chunk}\x1b[0m" if codes else chunk)

    for match in _TAG.finditer(markup):
        full, escapes, tag = match.groups()
        start, end = match.span()
        if start > position:
            text(markup[position:start])
        position = end
        if escapes:
            backslashes, escaped = divmod(len(escapes), 2)
            if backslashes:
                text("\\" * backslashes)
            if escaped:
                text(full[len(escapes) :])
                continue
        name = tag.partition("=")[0]
        if name.startswith("/"):
            closing = " ".join(name[1:].split())
            if not stack:
                raise MarkupError(f"closing tag '[{tag}]' at position {start} has nothing to close")
            if not closing:
                stack.pop()
            elif closing in stack:
                stack.pop(len(stack) - 1 - stack[::-1].index(closing))
            else:
                raise MarkupError(f"closing tag '[{tag}]' at position {start} doesn't match any open tag")
        else:
            stack.append(" ".join(name.split()))
    if position < len(markup):
        text(markup[position:])
    return "".join(out)


class Console:
    """Prints lines of console markup to stdout or stderr; the streams are looked up when printing (tests swap them),
    unless ``file`` is set."""

    def __init__(self, *, stderr: bool = False) -> None:
        self.stderr = stderr
        self._file: TextIO | None = None
        self._rich: rich.console.Console | None = None

    @property
    def file(self) -> TextIO:
        return self._file or (sys.stderr if self.stderr else sys.stdout)

    @file.setter
    def file(self, file: TextIO) -> None:
        self._file = file

    @property
    def is_terminal(self) -> bool:
        """Whether escape codes reach a terminal: the environment's word first (TTY_COMPATIBLE, FORCE_COLOR, as rich
        reads it), else whether the stream is a TTY."""
        compatible = os.environ.get("TTY_COMPATIBLE", "")
        if compatible in ("0", "1"):
            return compatible == "1"
        force = os.environ.get("FORCE_COLOR")
        if force is not None:
            return force != ""
        isatty = getattr(self.file, "isatty", None)
        try:
            return bool(isatty()) if isatty is not None else False
        except ValueError:  # a closed stream
            return False

    def _styled(self) -> bool:
        return self.is_terminal and os.environ.get("TERM", "").lower() not in ("dumb", "unknown")

    def print(self, *objects: Any, markup: bool = True, sep: str = " ", end: str = "\n") -> None:
        """Print ``objects`` (strings with markup unless ``markup=False``; anything else is drawn by rich)."""
        if not all(isinstance(o, str) for o in objects):
            self.rich().print(*objects, markup=markup, sep=sep, end=end)
            return
        styled = self._styled()
        colour = os.environ.get("NO_COLOR", "") == ""
        parts = [render(visible_lines(o), ansi=styled, colour=colour) if markup else visible_lines(o) for o in objects]
        line = "\n".join(row.expandtabs(8) for row in sep.join(parts).split("\n"))
        self.file.write(line + end)
        self.file.flush()

    def print_json(self, *, data: Any) -> None:
        """``data`` as indented, highlighted JSON (rich's print_json), control characters escaped."""
        from rich.highlighter import JSONHighlighter
        from rich.text import Text

        text = JSONHighlighter()(Text(json_text(data)))  # as rich's print_json draws it, from our escaped text
        text.no_wrap = True
        text.overflow = None
        self.rich().print(text, soft_wrap=True)

    def rich(self) -> rich.console.Console:
        """A rich console writing where this one writes, for tables and progress bars."""
        from rich.console import Console as RichConsole

        if self._rich is None:
            self._rich = RichConsole(stderr=self.stderr, highlight=False, soft_wrap=True)
        self._rich.file = self.file
        return self._rich


stdout = Console()
stderr = Console(stderr=True)


def print_json(value: Any) -> None:
    """One JSON document on stdout (stable key order as built, UTF-8)."""
    import orjson

    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def print_json_line(value: Any) -> None:
    import orjson

    sys.stdout.write(orjson.dumps(value).decode() + "\n")
    sys.stdout.flush()


def table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    """A table on stdout that never breaks an identifier.

    A column whose cells are single words (ids, run ids, digests, times, profile ids) is never wrapped; only columns
    of prose wrap, between words. On a terminal the table takes its width, or more when the identifiers need it (the
    terminal then wraps the long lines, the identifiers stay whole); elsewhere (a pipe, a file) nothing is wrapped.
    """
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    cells = [["" if v is None else visible(str(v)) for v in row] for row in rows]
    t = Table(title=None if title is None else Text(visible(title)), show_lines=False, header_style="bold")
    for index, col in enumerate(columns):
        words = all(len(row[index].split()) <= 1 for row in cells if index < len(row))
        t.add_column(Text(visible(col)), no_wrap=words, overflow="fold")
    for row in cells:  # cells are Text, never markup: a title such as "[link=...]" shows as written
        t.add_row(*[Text(cell) for cell in row])
    console = stdout.rich()
    needed = Measurement.get(console, console.options.update(width=1 << 16), t)
    shown = console.width
    console.width = max(shown, needed.minimum) if stdout.is_terminal else needed.maximum
    try:
        console.print(t)
    finally:
        console.width = shown


class RichSink:
    """An Observer drawing a progress bar on stderr (only when stderr is a terminal)."""

    def __init__(self, label: str, cancel: CancelToken | None = None) -> None:
        self.enabled = stderr.is_terminal
        self.cancel = cancel or CancelToken()
        self._progress: Any = None
        self._label = label
        self._task: Any = None

    def start(self, phase: str, total: int | None = None) -> None:
        if not self.enabled:
            return
        if self._progress is None:
            self._progress = _progress_bar()
        self._progress.start()
        # The phase names the unit counted (an export's payload counts documents, its archive bytes).
        self._task = self._progress.add_task(f"{self._label} ({phase})", total=total, detail="")

    def advance(self, units: int = 1, *, detail: str | None = None) -> None:
        if self._task is not None:
            short = escape((detail or "")[-60:])  # the detail column reads markup
            self._progress.update(self._task, advance=units, detail=short)

    def finish(self, phase: str) -> None:
        if self._task is not None:
            self._progress.stop()
            self._task = None

    def check(self, check: Check) -> None:
        return None  # checks are drawn by the command or screen that asked for them

    def is_cancelled(self) -> bool:
        return self.cancel.is_cancelled()


def _progress_bar() -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Units per second (documents, bytes: whatever the phase counts)."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.0f}/s", style="dim")

    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[detail]}", style="dim"),
        console=stderr.rich(),
        transient=True,
    )
