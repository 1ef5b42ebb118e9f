"""OSV's detection shortcut gives the adapter full detection gives.

Detection asks the adapters in registry order; :meth:`OsvFormat.sniff_first` lets an import stop at OSV at once
when the document is an object of OSV fields only. That holds while no adapter ahead of OSV claims such an object:
each is asked here about generated objects of OSV fields (with values of every kind, including the other formats'
markers), and the shortcut is held to full detection on them and on every fixture.
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.sources import osv
from adapters.sources._common import load_schema
from adapters.sources.registry import SOURCES
from core.errors import StellaError
from core.ingest import _detect_first, detect
from core.sources import Candidate
from tests.conftest import ROOT

AHEAD = SOURCES[: [s.name for s in SOURCES].index("osv")]
# Values the other sniffers look for, so that a sniffer reading any key's value would be caught.
MARKERS = [
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "https://in-toto.io/Statement/v1",
    "https://openvex.dev/ns/v0.2.0",
    "https://spdx.org/rdf/3.0.1/spdx-context.jsonld",
    "CycloneDX",
    "CVE_RECORD",
    "csaf_vex",
]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=8), st.sampled_from(MARKERS)
)
KEYS = st.sampled_from(
    sorted(
        {
            "mediaType",
            "payloadType",
            "document",
            "bomFormat",
            "@context",
            "_type",
            "csaf_version",
            "category",
            "bundle",
            "vulnerabilities",
            "payload",
            "signatures",
            "dataType",
        }
    )
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS | st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def _record(draw: st.DrawFn) -> dict[str, Any]:
    fields = draw(st.lists(st.sampled_from(sorted(osv._FIELDS)), unique=True, max_size=8))
    doc = {field: draw(VALUES) for field in fields}
    if draw(st.booleans()):
        doc["id"], doc["modified"] = draw(st.text(max_size=8)), draw(st.text(max_size=8))
    return doc


def test_the_fields_are_the_schemas() -> None:
    assert load_schema("osv/osv-schema.json")["properties"].keys() == osv._FIELDS


def test_every_format_ahead_of_osv_is_one_whose_sniffer_was_checked() -> None:
    assert {s.name for s in AHEAD} == osv._SNIFF_NOTHING_OF_OURS


@settings(max_examples=1500, deadline=None)
@given(_record())
def test_no_format_ahead_of_osv_claims_an_object_of_osv_fields(doc: dict[str, Any]) -> None:
    data = orjson.dumps(doc)
    for source in AHEAD:
        assert not source.sniff(Candidate("x.json", data)), source.name
    candidate = Candidate("x.json", data)
    first = _detect_first(candidate, SOURCES)
    assert first is None or first is detect(Candidate("x.json", data), SOURCES)


def _outcome(candidate: Candidate, shortcut: bool) -> Any:
    try:
        found = (_detect_first(candidate, SOURCES) if shortcut else None) or detect(candidate, SOURCES)
    except StellaError as exc:
        return type(exc), exc.message, exc.pointer
    return found.name if found else None


def test_the_shortcut_detects_every_fixture_as_full_detection_does() -> None:
    taken = 0
    for path in sorted((ROOT / "tests" / "fixtures").rglob("*")):
        if not path.is_file() or path.stat().st_size > 4 << 20:
            continue
        data = path.read_bytes()
        assert _outcome(Candidate(str(path), data), shortcut=True) == _outcome(
            Candidate(str(path), data), shortcut=False
        ), path
        with contextlib.suppress(StellaError):
            taken += _detect_first(Candidate(str(path), data), SOURCES) is not None
    assert taken > 20


def test_no_shortcut_when_an_unknown_format_is_asked_first() -> None:
    class Other:
        name = "other"

        def sniff(self, candidate: Candidate) -> bool:
            return True

    doc = b'{"id": "X-1", "modified": "2024-01-01T00:00:00Z"}'
    assert _detect_first(Candidate("x.json", doc), (Other(), osv.OSV)) is None  # type: ignore[arg-type]
    assert _detect_first(Candidate("x.json", doc), SOURCES) is osv.OSV
