"""JSON as stella imports it: parsed by orjson, and refused when any object repeats a key.

RFC 8259 leaves the meaning of a repeated key to the parser: orjson and Python keep the last value, other
parsers keep the first or fail. stella ships the raw bytes it imported, so a document whose objects repeat a
key could say one thing to stella and another to a consumer: it is refused (exit 3) with the key and its JSON
pointer. orjson does not report repeated keys, so a second, checking pass runs through the standard library's C
scanner with a small ``object_pairs_hook`` (the cost is measured by ``benchmarks/bench_import.py``); only when it
finds a repeat is the document walked again to name the pointer.

That pass runs only when a cheap test says an object may repeat a key. orjson's tree keeps each object's distinct
keys, and orjson writes it back compact, with one colon per distinct key plus the colons inside strings, never
escaped. The text has one colon per member written plus the colons inside its strings, and while it spells no colon
as ``\\u003a`` those are the same strings' colons. So the two colon counts are equal exactly when no object repeats
a key. A text with an escape ``\\u0030`` to ``\\u003f`` (``\\u003a`` among them), or nested too deep for orjson to
write back (255 levels; the checking pass raises RecursionError near 1,000), takes the checking pass.
``tests/unit/test_strict_json_fast.py`` holds the two ways equal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson

from core.errors import SchemaError


def json_pointer(parts: Iterable[str | int]) -> str:
    """RFC 6901 pointer for a path of keys and indexes."""
    out = []
    for part in parts:
        out.append(str(part).replace("~", "~0").replace("/", "~1"))
    return "/" + "/".join(out) if out else ""


class _Repeated(Exception):
    pass


def _refuse_repeats(pairs: list[tuple[str, Any]]) -> None:
    # Returns None, not the object: the checking pass keeps no tree, so it adds little to the parse's peak memory.
    if len(dict(pairs)) != len(pairs):
        raise _Repeated


class _Marker:
    """Stands in, during the slow pass, for an object that repeats ``key``."""

    def __init__(self, key: str) -> None:
        self.key = key


def _mark_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _Marker:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return _Marker(key)
        seen.add(key)
    return dict(pairs)


_UNPARSED: Any = object()


def _may_repeat(data: bytes | str, parsed: Any = _UNPARSED) -> bool:
    """False only when no object in ``data`` (valid JSON) repeats a key: see the module's docstring. ``parsed`` is
    orjson's tree of ``data`` when the caller has it (it is not parsed twice)."""
    # Any \u003x escape, not only \u003a, takes the checking pass: one search, after a cheap one for a backslash.
    if isinstance(data, bytes):
        if b"\\" in data and b"\\u003" in data:
            return True
        colons = data.count(b":")
    else:
        if "\\" in data and "\\u003" in data:
            return True
        colons = data.count(":")
    try:
        compact = orjson.dumps(orjson.loads(data) if parsed is _UNPARSED else parsed)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return True
    return colons != compact.count(b":")


def repeated_key(data: bytes | str, parsed: Any = _UNPARSED) -> tuple[str, str] | None:
    """``(key, pointer)`` of the first object (in document order) that repeats a key, or None.

    ``data`` must already be valid JSON (orjson accepted it); ``parsed``, when given, is what ``orjson.loads(data)``
    returned, unchanged since.
    """
    if not _may_repeat(data, parsed):
        return None
    return _repeated_key_pass(data)


def _repeated_key_pass(data: bytes | str) -> tuple[str, str] | None:
    """:func:`repeated_key` by the standard library's scanner alone (the checking pass)."""
    try:
        json.loads(data, object_pairs_hook=_refuse_repeats)
    except _Repeated:
        pass
    else:
        return None
    tree = json.loads(data, object_pairs_hook=_mark_repeats)
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(tree, ())]
    while stack:
        value, parts = stack.pop()
        if isinstance(value, _Marker):
            return value.key, json_pointer((*parts, value.key))
        if isinstance(value, dict):
            stack.extend((v, (*parts, k)) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((v, (*parts, i)) for i, v in reversed(list(enumerate(value))))
    raise AssertionError("a repeated key was found but not located")  # pragma: no cover


def loads(data: bytes | str, *, path: str, base_pointer: str = "", what: str = "document") -> Any:
    """Parse JSON with orjson; raise :class:`SchemaError` (exit 3) on malformed JSON or a repeated key."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SchemaError(f"the {what} is malformed JSON: {exc}", path=path, pointer=base_pointer or None) from None
    check_no_repeated_keys(data, path=path, base_pointer=base_pointer, parsed=value)
    return value


def check_no_repeated_keys(
    data: bytes | str, *, path: str, base_pointer: str = "", where: str = "", parsed: Any = _UNPARSED
) -> None:
    """Raise :class:`SchemaError` naming the key and its JSON pointer when an object in ``data`` repeats a key
    (``parsed``: orjson's tree of ``data``, when the caller has it)."""
    try:
        found = repeated_key(data, parsed)
    except RecursionError:
        raise SchemaError("JSON nesting is too deep to check", path=path) from None
    if found is not None:
        key, pointer = found
        raise SchemaError(
            f"{where}the key {key!r} appears twice in one object; a repeated key means different things to "
            "different JSON parsers",
            path=path,
            pointer=base_pointer + pointer,
        )
