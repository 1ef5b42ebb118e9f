"""The repeated-key check's shortcut finds every repeated key the checking pass finds, and the same one.

:func:`core.strict_json.repeated_key` skips the standard library's checking pass when the text has as many colons
as orjson's compact rewrite of it; these tests hold it equal to the pass alone (``_repeated_key_pass``) on generated
JSON with repeated keys, every JSON whitespace, colons and quotes in keys and values written plainly, escaped or as
``\\uXXXX``, and on the fixtures.
"""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import strict_json
from core.errors import SchemaError
from tests.conftest import ROOT

# Keys from a small alphabet so that objects often repeat one; the characters a key-end count could trip on.
KEY_CHARS = 'ab":\\ /\u00e9'
WHITESPACE = st.sampled_from(["", " ", "\n", "\t", "\r", "  \n\t"])


@st.composite
def _string(draw: st.DrawFn, alphabet: str, max_size: int) -> str:
    """A JSON string literal, each character written plainly, escaped, or as ``\\uXXXX``."""
    text = draw(st.text(alphabet=alphabet, max_size=max_size))
    out = ['"']
    for char in text:
        way = draw(st.integers(0, 2))
        if way == 2 or (way == 0 and char in '"\\'):
            out.append(f"\\u{ord(char):04x}")
        elif way == 1 or char in '"\\':
            out.append(json.dumps(char)[1:-1])
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


@st.composite
def _value(draw: st.DrawFn, depth: int = 0) -> str:
    ws = draw(WHITESPACE)
    kind = draw(st.integers(0, 5 if depth < 4 else 2))
    if kind == 0:
        return draw(st.sampled_from(["1", "-2.5e3", "true", "false", "null"]))
    if kind in (1, 2):
        return draw(_string(KEY_CHARS + "xyz{}[],", 8))
    if kind == 3:
        items = draw(st.lists(_value(depth + 1), max_size=4))
        return "[" + ws + ("," + draw(WHITESPACE)).join(items) + ws + "]"
    members = draw(st.lists(st.tuples(_string(KEY_CHARS, 3), WHITESPACE, _value(depth + 1)), max_size=5))
    body = ",".join(f"{draw(WHITESPACE)}{key}{gap}:{draw(WHITESPACE)}{value}" for key, gap, value in members)
    return "{" + body + ws + "}"


@settings(max_examples=1000, deadline=None)
@given(_value())
def test_the_shortcut_finds_what_the_checking_pass_finds(text: str) -> None:
    data = text.encode("utf-8")
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return  # the check runs only on what orjson accepted
    expected = strict_json._repeated_key_pass(data)
    assert strict_json.repeated_key(data) == expected
    assert strict_json.repeated_key(text) == expected
    assert strict_json.repeated_key(data, parsed) == expected  # the tree a caller already parsed: the same verdict


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('{"a": 1, "a": 2}', ("a", "/a")),
        ('{"a" \n\t:1,"b":{"c":[{"d":1,"d" :2}]}}', None),
        ('{"a":1,"b":{"c":[{"d":1,"d" :2}]}}', ("d", "/b/c/0/d")),
        ('{"x":"\\":","a":1,"a":2}', ("a", "/a")),
        ('{"x":"\\u0022:","a":1,"a":2}', ("a", "/a")),
        ('{"a\\u0062":1,"ab":2}', ("ab", "/ab")),
        ('{"x":"\\":"}', None),
        ('{"x":"\\u003a","a":1,"a":2}', ("a", "/a")),
        ('{"x":"\\u003A","a":1}', None),
        ('{"a:":1,"a:":2}', ("a:", "/a:")),
        ('{"a\\u003a":1,"a:":2}', ("a:", "/a:")),
    ],
)
def test_known_cases(text: str, found: tuple[str, str] | None) -> None:
    assert strict_json.repeated_key(text.encode()) == strict_json._repeated_key_pass(text.encode())
    if "\n" not in text:
        assert strict_json.repeated_key(text.encode()) == found


def test_deep_nesting_still_takes_the_checking_pass() -> None:
    deep = b"[" * 1000 + b"]" * 1000
    with pytest.raises(SchemaError, match="too deep"):
        strict_json.check_no_repeated_keys(deep, path="deep.json")
    assert strict_json.repeated_key(b"[" * 300 + b"]" * 300) is None


def test_the_fixtures_get_the_checking_pass_verdict() -> None:
    checked = 0
    for path in (ROOT / "tests" / "fixtures").rglob("*.json"):
        data = path.read_bytes()
        try:
            orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        assert strict_json.repeated_key(data) == strict_json._repeated_key_pass(data), path
        checked += 1
    assert checked > 100
