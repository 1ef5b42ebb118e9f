"""CISA KEV (JSON and CSV) and FIRST EPSS CSV."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.sources import dsse, epss, intoto, kev, policy, sigstore_bundle
from core.errors import SchemaError
from core.records import DocumentKind, EpssScore, KevEntry
from core.sources import Candidate
from tests.unit.sources.fixture_docs import FixtureDocs

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
_docs = FixtureDocs(FIXTURES)
load = _docs.load
MINE = (
    *sigstore_bundle.FORMATS,
    *dsse.FORMATS,
    *intoto.FORMATS,
    *kev.FORMATS,
    *epss.FORMATS,
    *policy.FORMATS,
)
KEV_HEADER = (
    "cveID,vendorProject,product,vulnerabilityName,dateAdded,shortDescription,requiredAction,"
    "dueDate,knownRansomwareCampaignUse,notes,cwes"
)


def text(body: str, name: str = "synthetic.csv") -> Candidate:
    return Candidate(path=name, data=body.encode())


def by_cve(entries: list[KevEntry]) -> dict[str, KevEntry]:
    return {e.cve_id: e for e in entries}


SNIFFED = {
    "kev/known_exploited_vulnerabilities.json": "kev",
    "kev/known_exploited_vulnerabilities.csv": "kev-csv",
    "kev/older/known_exploited_vulnerabilities-2025.01.24.json": "kev",
    "kev/edge/valid-catalog-1.json": "kev",
    "kev/edge/kev-single-entry-example1.json": None,
    "epss/example-1.csv": "epss",
    "epss/edge/epss_scores-current.head60.csv": "epss",
    "epss/invalid/invalid-header.csv": "epss",
    "epss/invalid/missing-date.csv": "epss",
}


def test_every_risk_fixture_is_listed() -> None:
    on_disk = {
        str(p.relative_to(FIXTURES))
        for d in ("kev", "epss")
        for p in (FIXTURES / d).rglob("*")
        if p.is_file() and p.name != "SOURCES.md"
    }
    assert on_disk == set(SNIFFED)


@pytest.mark.parametrize(("rel", "expected"), sorted(SNIFFED.items()))
def test_sniffed_by_exactly_the_expected_format(rel: str, expected: str | None) -> None:
    claimed = [f.name for f in MINE if f.sniff(load(rel))]
    assert claimed == ([expected] if expected else [])


# --- KEV JSON ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kev_json() -> Any:
    return kev.KEV_JSON.parse(load("kev/known_exploited_vulnerabilities.json"))


def test_kev_catalog_2025_08_25(kev_json: Any) -> None:
    doc = kev_json
    assert (doc.format, doc.kind, doc.media_type) == ("kev", DocumentKind.KEV, "application/json")
    assert (doc.document_id, doc.subject, doc.format_version) == ("kev:2025.08.25", "cisa-kev", None)
    catalog = doc.kev
    assert catalog.catalog_version == "2025.08.25"
    assert catalog.date_released == datetime(2025, 8, 25, 17, 4, 19, 979600)
    assert len(catalog.entries) == 1404
    assert sum(e.known_ransomware_campaign_use == "Known" for e in catalog.entries) == 293
    assert sum(not e.cwes for e in catalog.entries) == 152


def test_kev_entry_values(kev_json: Any) -> None:
    entries = by_cve(kev_json.kev.entries)
    log4shell = entries["CVE-2021-44228"]
    assert (log4shell.vendor_project, log4shell.product) == ("Apache", "Log4j2")
    assert log4shell.vulnerability_name == "Apache Log4j2 Remote Code Execution Vulnerability"
    assert (log4shell.date_added, log4shell.due_date) == (date(2021, 12, 10), date(2021, 12, 24))
    assert log4shell.known_ransomware_campaign_use == "Known"
    assert log4shell.cwes == ["CWE-20", "CWE-400", "CWE-502"]
    assert log4shell.notes == "https://nvd.nist.gov/vuln/detail/CVE-2021-44228"
    git = entries["CVE-2025-48384"]
    assert (git.date_added, git.due_date, git.known_ransomware_campaign_use) == (
        date(2025, 8, 25),
        date(2025, 9, 15),
        "Unknown",
    )
    assert git.cwes == ["CWE-59", "CWE-436"]


def test_kev_older_catalog_2025_01_24() -> None:
    doc = kev.KEV_JSON.parse(load("kev/older/known_exploited_vulnerabilities-2025.01.24.json"))
    assert doc.document_id == "kev:2025.01.24"
    assert doc.kev is not None
    assert doc.kev.date_released == datetime(2025, 1, 24, 15, 0, 57, 528200)
    assert len(doc.kev.entries) == 1252
    first = doc.kev.entries[0]
    assert (first.cve_id, first.vendor_project, first.date_added, first.due_date) == (
        "CVE-2025-23006",
        "SonicWall",
        date(2025, 1, 24),
        date(2025, 2, 14),
    )


def test_kev_truncated_catalog_is_rejected() -> None:
    """anchore/vunnel's fixture keeps 3 real entries of a 1273-entry catalog.

    The catalog's own count says entries are missing; importing it would silently drop 1270 known
    exploited vulnerabilities from the store, so it is refused, naming both numbers.
    """
    with pytest.raises(SchemaError, match="count 1273 but lists 3 vulnerabilities") as err:
        kev.KEV_JSON.parse(load("kev/edge/valid-catalog-1.json"))
    assert err.value.pointer == "/count"


def _catalog_1(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((FIXTURES / "kev/edge/valid-catalog-1.json").read_bytes())
    doc["count"] = len(doc["vulnerabilities"])
    return doc | changes


def test_kev_catalog_with_consistent_count_keeps_values_verbatim() -> None:
    doc = kev.KEV_JSON.parse(Candidate(path="c.json", data=orjson.dumps(_catalog_1())))
    assert doc.kev is not None
    entries = by_cve(doc.kev.entries)
    assert [e.cve_id for e in doc.kev.entries] == ["CVE-2025-0108", "CVE-2024-53704", "CVE-2024-57727"]
    assert entries["CVE-2024-57727"].vendor_project == "SimpleHelp "  # trailing space as published
    assert entries["CVE-2025-0108"].notes == (
        "https://security.paloaltonetworks.com/CVE-2025-0108 ; https://nvd.nist.gov/vuln/detail/CVE-2025-0108"
    )


def test_kev_duplicate_cve_is_rejected() -> None:
    doc = _catalog_1()
    doc["vulnerabilities"][2] = dict(doc["vulnerabilities"][0])
    with pytest.raises(SchemaError, match=r"CVE-2025-0108 is listed twice \(first at /vulnerabilities/0\)") as err:
        kev.KEV_JSON.parse(Candidate(path="c.json", data=orjson.dumps(doc)))
    assert err.value.pointer == "/vulnerabilities/2/cveID"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("dueDate", "2025-02-30", '"2025-02-30" is not a "date"'),
        ("cveID", "CVE-25-1", "does not match"),
        ("cwes", ["306"], "does not match"),
    ],
)
def test_kev_entry_schema_errors(field: str, value: Any, message: str) -> None:
    doc = _catalog_1()
    doc["vulnerabilities"][1][field] = value
    with pytest.raises(SchemaError, match=message) as err:
        kev.KEV_JSON.parse(Candidate(path="c.json", data=orjson.dumps(doc)))
    assert err.value.pointer is not None and err.value.pointer.startswith(f"/vulnerabilities/1/{field}")


def test_kev_single_entry_is_not_a_catalog() -> None:
    """A bare vulnerability object is not sniffed as KEV; forced, the schema names what is missing."""
    cand = load("kev/edge/kev-single-entry-example1.json")
    assert not kev.KEV_JSON.sniff(cand)
    with pytest.raises(SchemaError, match='"catalogVersion" is a required property') as err:
        kev.KEV_JSON.parse(cand)
    assert err.value.pointer == ""


# --- KEV CSV ----------------------------------------------------------------------------------


def test_kev_csv_matches_the_json_of_the_same_release(kev_json: Any) -> None:
    doc = kev.KEV_CSV.parse(load("kev/known_exploited_vulnerabilities.csv"))
    assert (doc.format, doc.kind, doc.media_type) == ("kev-csv", DocumentKind.KEV, "text/csv")
    assert (doc.document_id, doc.subject) == ("kev-csv:2025-08-25", "cisa-kev")
    assert doc.kev is not None
    assert (doc.kev.catalog_version, doc.kev.date_released) == (None, None)
    assert len(doc.kev.entries) == 1404
    assert doc.kev.entries == kev_json.kev.entries


def _csv_row(cve: str = "CVE-2025-0108", added: str = "2025-02-18", notes: str = "n", cwes: str = "CWE-306") -> str:
    fields = [
        cve,
        '"Palo Alto Networks"',
        "PAN-OS",
        '"PAN-OS Bypass"',
        added,
        '"desc"',
        '"act"',
        "2025-03-11",
    ]
    return ",".join([*fields, "Unknown", f'"{notes}"', cwes])


def test_kev_csv_quoted_multiline_fields_and_line_numbers() -> None:
    body = "\n".join([KEV_HEADER, _csv_row(notes="first line\nsecond line"), _csv_row(cve="CVE-2025-0108")])
    with pytest.raises(SchemaError, match=r"line 4, column cveID: CVE-2025-0108 is listed twice \(first at line 2\)"):
        kev.KEV_CSV.parse(text(body))
    ok = kev.KEV_CSV.parse(text("\r\n".join([KEV_HEADER, _csv_row(notes="a\r\nb", cwes='"CWE-1, CWE-2"')]) + "\r\n"))
    assert ok.kev is not None
    entry = ok.kev.entries[0]
    assert (entry.notes, entry.cwes, entry.due_date) == ("a\r\nb", ["CWE-1", "CWE-2"], date(2025, 3, 11))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            KEV_HEADER.replace("notes,", "") + "\n" + _csv_row(),
            "the header must be exactly cveID,vendorProject",
        ),
        (
            KEV_HEADER + "\n" + _csv_row(added="2025-13-01"),
            "line 2, column dateAdded: '2025-13-01' is not a YYYY-MM-DD",
        ),
        (KEV_HEADER + "\n" + _csv_row(added=""), "line 2, column dateAdded: the value is empty"),
        (
            KEV_HEADER + "\n" + _csv_row(cve="CVE-2025-1"),
            "line 2, column cveID: 'CVE-2025-1' is not a CVE ID",
        ),
        (KEV_HEADER + "\n" + _csv_row(cwes="306"), "line 2, column cwes: '306' is not a CWE ID"),
        (KEV_HEADER + "\n" + _csv_row() + ",extra", "line 2: the row has 12 fields, expected 11"),
        (KEV_HEADER + "\n", "has a header but no entries"),
    ],
)
def test_kev_csv_errors(body: str, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        kev.KEV_CSV.parse(text(body))


# --- EPSS -------------------------------------------------------------------------------------


def test_epss_example_with_model_version_and_score_date() -> None:
    doc = epss.EPSS.parse(load("epss/example-1.csv"))
    assert (doc.format, doc.kind, doc.media_type) == ("epss", DocumentKind.EPSS, "text/csv")
    assert (doc.document_id, doc.subject, doc.warnings) == ("epss:2025-02-20", "first-epss", [])
    assert doc.epss is not None
    assert doc.epss.model_version == "v2023.03.01"
    assert doc.epss.score_date == datetime(2025, 2, 20)
    assert list(doc.epss.scores) == [
        EpssScore("CVE-1999-0001", 0.00383, 0.73075),
        EpssScore("CVE-1999-0002", 0.01328, 0.85996),
        EpssScore("CVE-1999-0003", 0.04409, 0.92440),
        EpssScore("CVE-1999-0004", 0.00917, 0.82963),
        EpssScore("CVE-1999-0005", 0.91963, 0.99214),
    ]


def test_epss_excerpt_without_comment_line_is_accepted_with_a_warning() -> None:
    doc = epss.EPSS.parse(load("epss/edge/epss_scores-current.head60.csv"))
    assert doc.epss is not None
    assert (doc.epss.model_version, doc.epss.score_date, doc.document_id) == (None, None, "epss:undated")
    assert doc.warnings == ["no #model_version comment line: the model version and score date are unknown"]
    assert len(doc.epss.scores) == 60
    scores = list(doc.epss.scores)
    assert scores[2] == EpssScore("CVE-1999-0003", 0.2438, 0.97622)  # not zero-padded upstream
    assert scores[0] == EpssScore("CVE-1999-0001", 0.03351, 0.87326)


def test_epss_wrong_header_is_rejected() -> None:
    cand = load("epss/invalid/invalid-header.csv")
    assert epss.EPSS.sniff(cand)  # the comment line makes it recognisable as EPSS
    with pytest.raises(SchemaError, match="line 2: the header must be exactly cve,epss,percentile; found 'invalid"):
        epss.EPSS.parse(cand)


def test_epss_comment_line_without_score_date_is_rejected() -> None:
    with pytest.raises(SchemaError, match="line 1: the #model_version comment line has no score_date"):
        epss.EPSS.parse(load("epss/invalid/missing-date.csv"))


HEAD = "#model_version:v2025.03.14,score_date:2025-08-25T00:00:00+0000\ncve,epss,percentile\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (HEAD + "CVE-2024-1,0.1,0.2\n", "line 3, column cve: 'CVE-2024-1' is not a CVE ID"),
        (HEAD + "CVE-2024-0001,1.5,0.2\n", r"line 3, column epss: 1.5 is outside \[0, 1\]"),
        (HEAD + "CVE-2024-0001,0.1,nan\n", r"line 3, column percentile: nan is outside \[0, 1\]"),
        (
            HEAD + "CVE-2024-0001,0.1,-0\n" + "CVE-2024-0002,x,0.2\n",
            "line 4, column epss: 'x' is not a number",
        ),
        (HEAD + "CVE-2024-0001,0.1\n", "line 3 has 2 fields, expected 3"),
        (HEAD + "CVE-2024-0001,0.1,0.2\nCVE-2024-0001,0.1,0.2\n", "line 4: CVE-2024-0001 appears twice"),
        (HEAD, "has a header but no scores"),
        (
            HEAD.replace("2025-08-25T00:00:00+0000", "yesterday"),
            "line 1: score_date 'yesterday' is not an RFC 3339",
        ),
        ("#model_version:,score_date:2025-08-25\ncve,epss,percentile\n", "has no model_version"),
    ],
)
def test_epss_row_errors(body: str, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        epss.EPSS.parse(text(body))


def test_epss_crlf_and_bom_are_handled() -> None:
    body = "\ufeff" + HEAD.replace("\n", "\r\n") + "CVE-2024-0001,0.00043,0.09291\r\n"
    cand = Candidate(path="bom.csv", data=body.encode("utf-8"))
    assert epss.EPSS.sniff(cand)
    doc = epss.EPSS.parse(cand)
    assert doc.epss is not None
    assert doc.epss.score_date == datetime(2025, 8, 25)
    assert list(doc.epss.scores) == [EpssScore("CVE-2024-0001", 0.00043, 0.09291)]
    assert math.isclose(next(iter(doc.epss.scores)).percentile, 0.09291)


def test_epss_sniff_needs_the_header_or_comment_on_the_first_line() -> None:
    assert not epss.EPSS.sniff(text("cve,epss\nCVE-2024-0001,0.1\n"))
    assert not epss.EPSS.sniff(text("cve,epss,percentile,extra\n"))
    assert not epss.EPSS.sniff(Candidate(path="bin", data=b"\xff\xfe\x00binary"))
