"""Canonical JSON (RFC 8785, JCS) for everything the tool signs or hashes.

:func:`canonical_json` is the pure-Python ``rfc8785`` package's output, byte for byte. Most values the tool
canonicalises (records, index lines, provenance dependencies) are plain: dicts with ASCII keys, strings, lists,
booleans, ``None``, integers within JSON's exact range and the odd CVSS score. For those, ``orjson`` with sorted
keys writes the same bytes about fifteen times faster, because on such values the two agree exactly:

- keys: RFC 8785 sorts by UTF-16 code units, orjson by UTF-8 bytes; on ASCII keys both are byte order;
- strings: both escape ``"``, ``\\`` and the control characters below U+0020 (``\\b \\t \\n \\f \\r`` short, the
  rest as lowercase ``\\u00xx``) and nothing else, and write UTF-8; a lone surrogate makes orjson raise;
- integers: both print the decimal digits, within ``±(2**53 - 1)`` (beyond it ``rfc8785`` raises);
- floats: both print the shortest round-trip digits in fixed notation for a non-integral finite value
  ``1e-4 <= |x| < 1e15``; elsewhere ES6 and orjson differ (``10.0`` is ``10`` in RFC 8785), so such a value,
  like any other type (tuples, subclasses, Decimals), takes the reference path.

:func:`_plain_json` decides, value by value; anything it does not accept goes to ``rfc8785``, which also raises
what it always raised. ``tests/unit/test_canonical_fast.py`` proves equality with hypothesis and real records.
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785

_MAX_SAFE = 2**53 - 1
#: The largest integer JSON numbers hold exactly (RFC 8785 refuses larger ones).
MAX_SAFE_INTEGER = _MAX_SAFE
_SORTED = orjson.OPT_SORT_KEYS


def _plain_json(value: Any) -> bool:
    """True when orjson's sorted output of ``value`` is its RFC 8785 form (see the module docstring)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                return False
            kind = type(item)
            if kind is str or kind is bool or item is None:
                continue
            if not _plain_json(item):
                return False
        return True
    if kind is list:
        for item in value:
            kind = type(item)
            if kind is str or kind is bool or item is None:
                continue
            if not _plain_json(item):
                return False
        return True
    if kind is int:
        return bool(-_MAX_SAFE <= value <= _MAX_SAFE)
    if kind is float:
        return plain_float(value)
    return False


def plain_float(value: float) -> bool:
    """True when orjson writes the float ``value`` as RFC 8785 does (finite, non-integral, 1e-4 <= |x| < 1e15)."""
    return bool(1e-4 <= abs(value) < 1e15 and not value.is_integer())


def canonical_json_of_plain(value: Any) -> bytes:
    """:func:`canonical_json` of a value its maker built plain (dicts with ASCII string keys, strings, booleans,
    ``None``, lists, integers within ``±(2**53 - 1)``, floats accepted by :func:`plain_float`), not checked again.

    For values whose shape the caller fixes (a record of known columns), where walking the value to check it would
    cost more than serialising it. A string orjson refuses (a lone surrogate) takes the reference path.
    """
    try:
        return orjson.dumps(value, option=_SORTED)
    except orjson.JSONEncodeError:
        return reference_canonical_json(value)


def canonical_json(value: Any) -> bytes:
    """Serialize ``value`` with RFC 8785 canonicalization (sorted keys, ES6 numbers, UTF-8)."""
    if _plain_json(value):
        try:
            return orjson.dumps(value, option=_SORTED)
        except orjson.JSONEncodeError:
            pass  # a lone surrogate, say: the reference decides (and raises what it raises)
    return reference_canonical_json(value)


def reference_canonical_json(value: Any) -> bytes:
    """The reference serializer (the ``rfc8785`` package), which :func:`canonical_json` matches byte for byte."""
    data: bytes = rfc8785.dumps(value)
    return data
