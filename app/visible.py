"""Text from data made safe to show: every character that could steer a terminal is shown as an escape instead.

Titles, ids, paths and messages that quote them come from documents and archives that anyone can write. A raw ESC
or CSI in one of them would reach the operator's terminal as a command (colours, cursor moves, a rewritten line,
a window title), a carriage return or a newline could forge a line such as "imported clean.json", and a bidi
override could make a name read backwards. Both surfaces show such text through this module: the CLI's console
(``app.output``) and the TUI's widgets (``app.tui.text``). ``--json`` output needs none of it: JSON escapes what it
carries.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["json_text", "visible", "visible_lines"]

# C0 controls, DEL and C1 controls (CSI is U+009B), the bidi marks, embeddings, overrides and isolates, and the
# Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _shown(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` on one line with every control character written out (``\\x1b``, ``\\n``, ``\\u202e``): a field
    from data, such as a title, an id or a path."""
    return _CONTROL.sub(_shown, text)


def visible_lines(text: str) -> str:
    """``text`` with every control character written out except newlines and tabs: a block of lines we composed,
    which may quote data."""
    return _CONTROL_BUT_LINES.sub(_shown, text)


# What json.dumps(ensure_ascii=False) leaves raw: DEL, C1 controls, bidi controls, line and paragraph separators.
_JSON_RAW = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def json_text(value: Any) -> str:
    """``value`` as indented JSON for people (`stella data show`, the TUI's document view): what ``json.dumps``
    keeps raw written as ``\\u`` escapes, so the text is the same JSON and steers no terminal."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return _JSON_RAW.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
