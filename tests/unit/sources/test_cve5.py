"""CVE JSON 5 adapter: real cvelistV5 records, rejected and reserved records, schema failures, sniffing."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.sources import csaf, cve5, osv
from adapters.sources._csaf_checks import cvss3_base_score
from core.errors import BadInputError, SchemaError, UnsupportedFormatError
from core.records import Advisory, AffectedRange, DocumentKind, ParsedDocument
from core.sources import Candidate
from tests.unit.sources.fixture_docs import FixtureDocs

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cve5"
_docs = FixtureDocs(FIXTURES)
load = _docs.load
edited = _docs.edited
CVE5 = cve5.CVE5
OTHER_FORMATS = (*csaf.FORMATS, *osv.FORMATS)

VALID = [
    "CVE-2009-0009_rejected.json",
    "CVE-2017-4024_published.json",
    "CVE-2021-26917.json",
    "CVE-2021-44228.json",
    "CVE-2022-25929.json",
    "CVE-2024-3094.json",
    "CVE-2024-7264.json",
    "CVE-2025-1110.json",
    "CVE-2025-21631.json",
    "CVE-2025-4565.json",
    "CVEv5_advanced-example.json",
]
INVALID = [
    "invalid/CVE-2017-4024_published_fail.json",
    "invalid/CVE-2017-4024_rejected_fail.json",
    "invalid/CVE-2017-4024_version_fail.json",
    "invalid/CVE-2017-5833_reserved.json",
]


def parse(rel: str) -> ParsedDocument:
    return CVE5.parse(load(rel))


def advisory(rel: str) -> Advisory:
    doc = parse(rel)
    assert len(doc.advisories) == 1
    return doc.advisories[0]


def rows(adv: Advisory) -> list[tuple[str | None, str | None, str | None, str | None, str]]:
    return [(r.range_type, r.introduced, r.fixed, r.last_affected, r.status) for r in adv.affected]


@pytest.mark.parametrize("rel", VALID)
def test_every_valid_sample_parses(rel: str) -> None:
    raw = orjson.loads((FIXTURES / rel).read_bytes())
    doc = parse(rel)
    assert (doc.format, doc.kind, doc.media_type) == (
        "cve5",
        DocumentKind.ADVISORY,
        "application/vnd.cve+json;version=5",
    )
    assert doc.document_id == raw["cveMetadata"]["cveId"] == doc.advisories[0].advisory_id
    assert doc.format_version == raw["dataVersion"]


def test_log4shell_ranges_follow_the_version_changes() -> None:
    doc = parse("CVE-2021-44228.json")
    adv = doc.advisories[0]
    assert doc.subject == "Apache Software Foundation/Apache Log4j2"
    assert adv.modified == datetime(2025, 2, 4, 14, 25, 37, 215000)
    assert adv.published == datetime(2021, 12, 10)
    assert adv.summary is not None and adv.summary.startswith("Apache Log4j2 2.0-beta9 through 2.15.0")
    assert adv.cwes == ["CWE-502", "CWE-400", "CWE-20"]
    assert rows(adv) == [
        ("custom", "2.0-beta9", "2.3.1", None, "affected"),
        ("custom", "2.3.1", "2.4", None, "not_affected"),
        ("custom", "2.4", "2.12.2", None, "affected"),
        ("custom", "2.12.2", "2.13.0", None, "not_affected"),
        ("custom", "2.13.0", "2.15.0", None, "affected"),
        # The record's own lessThan is the odd 'log4j-core*'; kept as published.
        ("custom", "2.15.0", "log4j-core*", None, "not_affected"),
    ]
    assert {(r.name, r.product_id, r.ecosystem) for r in adv.affected} == {
        ("Apache Software Foundation/Apache Log4j2", "Apache Software Foundation:Apache Log4j2", None)
    }
    # The CNA gives no CVSS; CISA's ADP container does.
    assert [(s.type, s.score, s.base_score, s.source) for s in adv.severities] == [
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, "CISA-ADP")
    ]


def test_xz_backdoor_exact_versions_and_default_status_rows() -> None:
    adv = advisory("CVE-2024-3094.json")
    assert adv.cwes == ["CWE-506"]
    assert [(s.type, s.base_score, s.source) for s in adv.severities] == [("CVSS_V3", 10.0, "redhat")]
    assert len(adv.affected) == 8
    # A version without lessThan/lessThanOrEqual is that one version, not "it and later".
    assert adv.affected[:2] == [
        AffectedRange(
            ecosystem="https://github.com/tukaani-project/xz",
            name="xz",
            introduced=v,
            last_affected=v,
        )
        for v in ("5.6.0", "5.6.1")
    ]
    rhel = adv.affected[2]
    assert rhel == AffectedRange(
        ecosystem="https://access.redhat.com/downloads/content/package-browser/",
        name="xz",
        status="not_affected",
        product_id="Red Hat:Red Hat Enterprise Linux 10",
    )
    assert Counter(r.status for r in adv.affected) == Counter({"affected": 2, "not_affected": 6})


def test_linux_kernel_git_and_semver_ranges() -> None:
    adv = advisory("CVE-2025-21631.json")
    assert len(adv.affected) == 14
    assert rows(adv)[0] == (
        "git",
        "63a07379fdb6c72450cb05294461c6016b8b7726",
        "f587c1ac68956c4703857d650d9b1cd7bb2ac4d7",
        None,
        "affected",
    )
    assert rows(adv)[7:] == [
        (None, "6.12", None, "6.12", "affected"),
        ("semver", "0", "6.12", None, "not_affected"),
        ("semver", "5.15.177", None, "5.15.*", "not_affected"),
        ("semver", "6.1.125", None, "6.1.*", "not_affected"),
        ("semver", "6.6.72", None, "6.6.*", "not_affected"),
        ("semver", "6.12.10", None, "6.12.*", "not_affected"),
        ("original_commit_for_fix", "6.13", None, "*", "not_affected"),
    ]
    assert adv.cwes == ["CWE-416"]  # only in the CISA ADP container
    assert [(s.base_score, s.source) for s in adv.severities] == [(7.8, "CISA-ADP")]


def test_mitre_record_with_na_product_and_naive_timestamps() -> None:
    doc = parse("CVE-2021-26917.json")
    adv = doc.advisories[0]
    assert doc.format_version == "5.0" and doc.subject == "n/a/n/a"
    assert adv.published == adv.modified == datetime(2021, 2, 8, 22, 22, 51)
    assert rows(adv) == [(None, "n/a", None, "n/a", "affected")]
    assert adv.severities == [] and adv.cwes == []
    assert adv.summary is not None and adv.summary.startswith("PyBitmessage through 0.6.3.2")


def test_gitlab_record_with_scheme_only_repo_uri() -> None:
    adv = advisory("CVE-2025-1110.json")
    assert rows(adv) == [("semver", "18.0", "18.0.1", None, "affected")]
    assert adv.affected[0].product_id == "GitLab:GitLab"
    assert adv.cwes == ["CWE-1220"]
    assert [(s.score, s.base_score, s.source) for s in adv.severities] == [
        ("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:L/I:N/A:N", 2.7, "GitLab")
    ]


def test_uri_without_scheme_still_fails() -> None:
    def no_scheme(doc: dict[str, Any]) -> None:
        doc["containers"]["cna"]["references"][0]["url"] = "gitlab.com/no-scheme"

    with pytest.raises(SchemaError) as err:
        CVE5.parse(edited("CVE-2025-1110.json", no_scheme))
    assert err.value.pointer == "/containers/cna/references/0/url"
    assert "does not match" in err.value.message


def test_cvss_v4_and_two_collections() -> None:
    adv = advisory("CVE-2025-4565.json")
    assert [(s.type, s.base_score, s.source) for s in adv.severities] == [("CVSS_V4", 8.2, "Google")]
    assert [(r.ecosystem, r.name, r.fixed) for r in adv.affected] == [
        ("https://github.com/protocolbuffers/protobuf/", "protobuf", "4.25.8"),
        ("https://github.com/protocolbuffers/protobuf/", "protobuf", "5.29.5"),
        ("https://github.com/protocolbuffers/protobuf/", "protobuf", "6.31.1"),
        ("https://pypi.org/project/protobuf/", "protocolbuffers/Python-Protobuf", "4.25.8"),
        ("https://pypi.org/project/protobuf/", "protocolbuffers/Python-Protobuf", "5.29.5"),
        ("https://pypi.org/project/protobuf/", "protocolbuffers/Python-Protobuf", "6.31.1"),
    ]
    assert {r.introduced for r in adv.affected} == {"0"}  # the "from the start" wildcard is kept


def test_curl_cwe_from_description_text_and_adp_score() -> None:
    adv = advisory("CVE-2024-7264.json")
    assert adv.cwes == ["CWE-125"]
    assert len(adv.affected) == 95
    assert rows(adv)[-1] == ("semver", "7.32.0", None, "7.32.0", "affected")
    assert [(s.base_score, s.source) for s in adv.severities] == [(6.3, "CISA-ADP")]


def test_snyk_record_unspecified_bounds() -> None:
    adv = advisory("CVE-2022-25929.json")
    assert rows(adv) == [
        ("custom", "1.31.0", "unspecified", None, "affected"),
        ("custom", "unspecified", "1.36.1", None, "affected"),
    ]
    assert adv.cwes == ["CWE-79"]
    assert [(s.score, s.base_score, s.source) for s in adv.severities] == [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N/E:P", 5.4, "snyk")
    ]


def test_advanced_example_changes_scores_and_fallback_dates() -> None:
    adv = advisory("CVEv5_advanced-example.json")
    assert adv.advisory_id == "CVE-1337-1234"
    # No dateUpdated/datePublished: the CNA's providerMetadata.dateUpdated and datePublic stand in.
    assert adv.modified == adv.published == datetime(2021, 9, 8, 16, 24)
    assert adv.summary is not None and adv.summary.startswith("OS Command Injection vulnerability parseFilename")
    assert rows(adv) == [
        ("semver", "1.0.0", "1.0.6", None, "affected"),
        ("semver", "2.1.0", "2.1.6", None, "not_affected"),
        ("semver", "2.1.6", "2.1.9", None, "affected"),
        ("semver", "2.1.9", "2.1.*", None, "not_affected"),
        ("semver", "3.0.0", "*", None, "not_affected"),
    ]
    assert [(s.type, s.base_score) for s in adv.severities] == [
        ("CVSS_V4", 7.8),
        ("CVSS_V3", 9.8),
        ("CVSS_V3", 7.3),
    ]
    assert adv.cwes == ["CWE-78"]


def test_adp_rows_repeating_the_cna_are_merged() -> None:
    adv = advisory("CVE-2017-4024_published.json")
    assert adv.affected == [
        AffectedRange(ecosystem=None, name="u/yuyi", introduced="uuy", last_affected="uuy", product_id="u:yuyi")
    ]
    assert adv.modified == datetime(2021, 11, 19, 20, 7, 0, 403000)
    assert adv.cwes == ["CWE-91"]


def test_rejected_record_is_valid_and_withdrawn() -> None:
    doc = parse("CVE-2009-0009_rejected.json")
    adv = doc.advisories[0]
    assert adv.summary is not None and adv.summary.startswith("I professional site herself recently behavior.")
    assert adv.affected == [] and adv.severities == [] and adv.modified is None
    # The fixture has neither dateRejected nor dateUpdated.
    assert adv.withdrawn is None
    assert doc.warnings == ["rejected record gives neither dateRejected nor dateUpdated: withdrawal time unknown"]
    assert doc.subject == "CVE-2009-0009"


def test_rejected_record_withdrawal_time_and_replacement() -> None:
    def dated(doc: dict[str, Any]) -> None:
        doc["cveMetadata"]["dateRejected"] = "2024-01-02T03:04:05Z"
        doc["containers"]["cna"]["replacedBy"] = ["CVE-2009-0010"]

    doc = CVE5.parse(edited("CVE-2009-0009_rejected.json", dated))
    assert doc.advisories[0].withdrawn == datetime(2024, 1, 2, 3, 4, 5)
    assert doc.advisories[0].related == ["CVE-2009-0010"]
    assert doc.warnings == []


def test_calculator_matches_every_published_cve_base_score() -> None:
    pairs = []
    for rel in VALID:
        raw = orjson.loads((FIXTURES / rel).read_bytes())
        containers = [raw["containers"]["cna"], *raw["containers"].get("adp", ())]
        for container in containers:
            for metric in container.get("metrics", ()):
                for key in ("cvssV3_1", "cvssV3_0"):
                    if key in metric:
                        pairs.append((metric[key]["vectorString"], metric[key]["baseScore"]))
    assert len(pairs) == 8
    for vector, published in pairs:
        assert cvss3_base_score(vector) == published, vector
    assert all(parse(rel).warnings == [] for rel in VALID if "rejected" not in rel)


@pytest.mark.parametrize(
    ("rel", "error", "pointer", "words"),
    [
        (
            "invalid/CVE-2017-4024_published_fail.json",
            SchemaError,
            "/containers/cna/metrics/0",
            "fails the CVE JSON 5 schema (published record): Additional properties are not allowed "
            "('scenario', 'uu' were unexpected)",
        ),
        (
            "invalid/CVE-2017-4024_rejected_fail.json",
            SchemaError,
            "/containers/cna",
            'fails the CVE JSON 5 schema (rejected record): "providerMetadata" is a required property',
        ),
        (
            "invalid/CVE-2017-4024_version_fail.json",
            UnsupportedFormatError,
            "/dataVersion",
            "CVE JSON data version 4.0 is not supported",
        ),
        (
            "invalid/CVE-2017-5833_reserved.json",
            SchemaError,
            "/cveMetadata/state",
            "the CVE ID is only RESERVED",
        ),
    ],
)
def test_invalid_samples_name_the_problem(rel: str, error: type[Exception], pointer: str, words: str) -> None:
    with pytest.raises(BadInputError) as err:
        parse(rel)
    assert type(err.value) is error
    assert err.value.pointer == pointer
    assert words in err.value.message


def test_unknown_state_is_named() -> None:
    def state(doc: dict[str, Any]) -> None:
        doc["cveMetadata"]["state"] = "DRAFT"

    with pytest.raises(SchemaError) as err:
        CVE5.parse(edited("CVE-2021-26917.json", state))
    assert err.value.pointer == "/cveMetadata/state"
    assert "must be PUBLISHED or REJECTED, not 'DRAFT'" in err.value.message


@pytest.mark.parametrize("rel", VALID + INVALID)
def test_sniffed_as_cve5_only(rel: str) -> None:
    cand = load(rel)
    assert CVE5.sniff(cand)
    assert [f.name for f in OTHER_FORMATS if f.sniff(cand)] == []


@pytest.mark.parametrize(
    "rel", ["osv/GO-2020-0001.json", "csaf/bsi-2022-0001.json", "ghsa/edge/withdrawn.graphql.json"]
)
def test_other_documents_are_not_cve5(rel: str) -> None:
    p = FIXTURES.parent / rel
    assert not CVE5.sniff(Candidate(path=str(p), data=p.read_bytes()))
