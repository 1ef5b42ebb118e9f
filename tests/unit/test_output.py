"""The CLI's own console prints console markup exactly as rich does, without loading rich."""

from __future__ import annotations

import io

import pytest
from rich.console import Console as RichConsole
from rich.markup import escape as rich_escape

from app.output import Console, escape

LINES = [
    "plain line",
    "[bold green]verified[/] bundle.tar.zst: 3 files",
    "[green]  ok  [/] signature        key abc [dim]path/x[/]",
    "[bold red] FAIL [/] digest           mismatch [dim]data/a b.json[/]",
    "[bold yellow]warning:[/] feed expired",
    "[bold]b [green]bg[/] b[/] after",
    "[bold red]open to the end",
    "trailing spaces   ",
    "tab\tstops\tx",
    "two\nlines\twith tab",
    "a [x] tag-like word [/x] is stripped, [y] too",
    r"escaped \[bold] and \\[bold]double[/bold] backslash",
    "brackets [ not a tag ] and [1] and [A]",
    "",
]
DATA = ["[bold]x[/]", "C:\\dir\\", "\\[red]", "a \\\\[b] c", "[/]", "[x=1] y", "weird ]["]


def rich_out(text: str, *, terminal: bool, markup: bool = True, end: str = "\n") -> str:
    buf = io.StringIO()
    console = RichConsole(
        file=buf,
        highlight=False,
        soft_wrap=True,
        force_terminal=terminal,
        color_system="standard" if terminal else "auto",
        emoji=False,
    )
    console.print(text, markup=markup, end=end)
    return buf.getvalue()


def our_out(text: str, *, terminal: bool, markup: bool = True, end: str = "\n") -> str:
    buf = io.StringIO()
    console = Console()
    console.file = buf
    with pytest.MonkeyPatch.context() as mp:
        for name in ("TTY_COMPATIBLE", "NO_COLOR", "TERM"):
            mp.delenv(name, raising=False)
        mp.setenv("FORCE_COLOR", "1") if terminal else mp.delenv("FORCE_COLOR", raising=False)
        console.print(text, markup=markup, end=end)
    return buf.getvalue()


@pytest.mark.parametrize("text", [*LINES, *(f"[bold]{escape(d)}[/] and {escape(d)}" for d in DATA)])
def test_plain_output_is_rich_output(text: str) -> None:
    assert our_out(text, terminal=False) == rich_out(text, terminal=False)
    assert our_out(text, terminal=False, markup=False) == rich_out(text, terminal=False, markup=False)
    assert our_out(text, terminal=False, end="") == rich_out(text, terminal=False, end="")


@pytest.mark.parametrize(
    "text",
    [
        "[bold green]verified[/] x",
        "[bold red]error: [/]message",
        "[green]  ok  [/] name [dim]p[/]",
        "[bold yellow]warning:[/] w",
        "[bold]b [green]bg[/][/]",
    ],
)
def test_terminal_output_is_rich_output(text: str) -> None:
    assert our_out(text, terminal=True) == rich_out(text, terminal=True)


@pytest.mark.parametrize("text", [*DATA, "", "\\", "a\\", "a\\\\", "[bold]", "[a][/b]", "x\\[y]"])
def test_escape_is_rich_escape(text: str) -> None:
    assert escape(text) == rich_escape(text)
    markup = f"[red]{escape(text)}[/]"
    assert our_out(markup, terminal=False) == rich_out(markup, terminal=False)


@pytest.mark.parametrize("markup", [True, False])
def test_control_characters_are_written_out_where_rich_would_pass_or_drop_them(markup: bool) -> None:
    """A deliberate difference from rich: ESC, CSI, a carriage return, a bell or a bidi override never reach the
    terminal; they print as escapes. Newlines and tabs we print ourselves still work."""
    text = "carriage\rreturn and bell\x07 \x1b[2J \x9b31m \u202egnp.exe\x7f\nnext\tline"
    assert our_out(text, terminal=True, markup=markup) == (
        "carriage\\rreturn and bell\\x07 \\x1b[2J \\x9b31m \\u202egnp.exe\\x7f\nnext    line\n"
    )


def test_escape_keeps_a_field_on_one_line() -> None:
    assert escape("a\nimported clean.json\r\x1b]0;t\x07") == "a\\nimported clean.json\\r\\x1b]0;t\\x07"


def test_a_closing_tag_that_closes_nothing_is_an_error() -> None:
    from app.output import MarkupError

    with pytest.raises(MarkupError):
        our_out("x [/] y", terminal=False)
    with pytest.raises(MarkupError):
        our_out("[bold]x[/red]", terminal=False)
