"""The import's shortcuts give the answers of the code they stand in for.

A plainly shaped package URL is accepted without packageurl, and a plain UTC timestamp is read without the
general rewriting: each is checked against the full path on the fixtures' values and on generated strings.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.sources import _common
from adapters.sources._common import SchemaError, parse_time, purl_problem
from tests.conftest import ROOT

# Characters that matter to a purl's grammar, and some that do not.
PURL_CHARS = "abcXYZ019._~-+@/:?#=%& \t\u00e9"


def _packageurl(value: str) -> str | None:
    return _common._parse_purl(value)


@settings(max_examples=3000)
@given(st.text(alphabet=PURL_CHARS, max_size=30))
def test_a_purl_gets_packageurls_verdict(tail: str) -> None:
    for value in (tail, "pkg:" + tail, "pkg:npm/" + tail, "pkg:pypi/" + tail):
        assert purl_problem(value) == _packageurl(value), value


def test_the_fixtures_purls_get_packageurls_verdict() -> None:
    found = set()
    for path in (ROOT / "tests" / "fixtures").rglob("*.json"):
        text = path.read_text("utf-8", "replace")
        for chunk in text.split('"pkg:')[1:]:
            found.add("pkg:" + chunk.split('"', 1)[0])
    assert len(found) > 20
    for value in sorted(found):
        assert purl_problem(value) == _packageurl(value), value


def _slow_time(value: str) -> datetime | str:
    """parse_time through its general path (the fast path switched off)."""
    plain = _common._PLAIN_UTC
    _common._PLAIN_UTC = _Never()  # type: ignore[assignment]
    try:
        return parse_time(value, path="x", pointer="/t") or "none"
    except SchemaError as exc:
        return exc.message
    finally:
        _common._PLAIN_UTC = plain


class _Never:
    def match(self, _value: str) -> None:
        return None


def _fast_time(value: str) -> datetime | str:
    try:
        return parse_time(value, path="x", pointer="/t") or "none"
    except SchemaError as exc:
        return exc.message


@settings(max_examples=500)
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.none()))
def test_a_plain_utc_timestamp_reads_as_the_general_path_reads_it(moment: datetime) -> None:
    value = moment.replace(microsecond=0).isoformat()[:19] + "Z"
    assert _fast_time(value) == _slow_time(value)
    if moment.year > 1:  # the general path's UTC conversion of year 1 can step outside datetime's range
        assert _fast_time(value) == moment.replace(microsecond=0)


@pytest.mark.parametrize(
    "value",
    [
        "2024-13-45T00:00:00Z",
        "2024-02-30T10:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:00:00z",
        "0000-01-01T00:00:00Z",
    ],
)
def test_an_impossible_plain_timestamp_is_refused_as_before(value: str) -> None:
    assert _fast_time(value) == _slow_time(value)
