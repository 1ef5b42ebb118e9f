"""Text from data in widgets: shown as written, never as markup, never as a terminal control.

A DataTable reads a ``str`` cell as console markup and a Label reads its text as markup, so a title such as
``[link=...]`` or ``[reverse]`` in an imported document would style itself; control characters and bidi overrides
would pass to the terminal. Screens show data through these helpers (the characters are written out as the CLI
writes them, see ``app.visible``).
"""

from __future__ import annotations

from rich.text import Text

from app.visible import json_text, visible, visible_lines

__all__ = ["cell", "cells", "json_text", "plain", "plain_lines"]


def plain(value: object) -> str:
    """A field for a ``markup=False`` widget: one line, control characters written out."""
    return visible(str(value))


def plain_lines(value: object) -> str:
    """A block of lines for a ``markup=False`` widget: newlines and tabs kept, every other control written out."""
    return visible_lines(str(value))


def cell(value: object) -> Text:
    """A DataTable cell: plain text (a ``Text`` is never read as markup), one line, never wrapped (an identifier
    is never broken mid-word; a column too narrow ends it with an ellipsis); ``None`` is empty."""
    return Text("" if value is None else visible(str(value)), no_wrap=True, overflow="ellipsis")


def cells(*values: object) -> list[Text]:
    """A DataTable row of :func:`cell` values."""
    return [cell(v) for v in values]
