"""core.canonical's orjson fast path writes exactly the bytes of the reference RFC 8785 serializer (rfc8785).

Equality is checked on generated values (hypothesis: every Unicode plane in keys and strings, control characters,
lone surrogates, integers across the 2**53 edge, floats of every magnitude, nesting) and on every JSON document of
the real fixtures under tests/fixtures, plus the records a json:raw bundle ships.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.canonical import _plain_json, canonical_json, reference_canonical_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _same(value: Any) -> None:
    """canonical_json gives the reference's bytes, or raises the reference's exception type."""
    try:
        expected = reference_canonical_json(value)
    except Exception as exc:  # the reference refuses: the fast path must refuse alike
        with pytest.raises(type(exc)):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
_surrogate_text = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2)
_ints = st.integers(min_value=-(2**60), max_value=2**60) | st.sampled_from(
    [2**53 - 1, 2**53, -(2**53 - 1), -(2**53), 0, 1, -1]
)
_floats = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=1e-5, max_value=1e16)
    | st.floats(min_value=-1e16, max_value=-1e-5)
    | st.sampled_from([0.0, -0.0, 10.0, 1e-4, 1e15, 1e16, 1e21, 0.1, 5.9, 9.8, 123456789012345.6, 1e-7])
)
_scalars = st.none() | st.booleans() | _ints | _floats | _text | _surrogate_text
_keys = _text | st.sampled_from(["a", "B", "é", "\U0001f600", "\ue000", "\ud7ff", "", "aa", "a\x00"])
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(_values)
def test_generated_values_match_the_reference(value: Any) -> None:
    _same(value)


@settings(max_examples=500)
@given(_floats)
def test_every_float_matches_the_reference(value: float) -> None:
    _same(value)
    _same({"baseScore": value})


@given(st.dictionaries(_keys, st.integers(), min_size=2, max_size=8))
def test_key_order_is_utf16_code_unit_order(value: dict[str, int]) -> None:
    # Keys above U+FFFF sort before U+E000..U+FFFF in UTF-16 but after them in UTF-8: the reference decides.
    _same(value)


def test_the_fast_path_is_taken_for_plain_records() -> None:
    record = {"advisoryId": "GHSA-x", "aliases": ["CVE-1"], "severities": [{"baseScore": 5.9}], "n": 3, "w": None}
    assert _plain_json(record)
    for odd in ({"é": 1}, {"s": 10.0}, {"n": 2**53}, {"t": (1, 2)}, {"f": math.inf}, {1: "x"}, {"z": -0.0}):
        assert not _plain_json(odd)
        _same(odd)


def _fixture_documents() -> list[Path]:
    return sorted(p for p in FIXTURES.rglob("*.json") if p.is_file())


def test_most_real_fixtures_take_the_fast_path() -> None:
    docs = []
    for path in _fixture_documents():
        try:
            docs.append(json.loads(path.read_bytes()))
        except (ValueError, UnicodeDecodeError):
            continue
    fast = sum(_plain_json(d) for d in docs)
    # Real documents exercise the fast path, not only the fallback (CVSS floats such as 10.0 take the latter).
    assert len(docs) > 100 and fast > len(docs) // 2


@pytest.mark.parametrize("path", _fixture_documents(), ids=lambda p: str(p.relative_to(FIXTURES)))
def test_real_fixture_documents_match_the_reference(path: Path) -> None:
    try:
        value = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        pytest.skip("not JSON (an invalid-input fixture)")
    _same(value)
