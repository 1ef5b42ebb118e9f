"""CSAF adapters: advisories, VEX statements, mandatory tests, the CVSS calculator, sniffing."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.sources import csaf, cve5, osv
from adapters.sources._csaf_checks import cvss3_base_score, parse_cvss3
from core.errors import SchemaError, UnsupportedFormatError
from core.records import Advisory, AffectedRange, DocumentKind, ParsedDocument, VexStatus
from tests.unit.sources.fixture_docs import FixtureDocs

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
_docs = FixtureDocs(FIXTURES)
load = _docs.load
edited = _docs.edited
CSAF, CSAF_VEX = csaf.CSAF, csaf.CSAF_VEX
OTHER_FORMATS = (*osv.FORMATS, *cve5.FORMATS)

ADVISORIES = [
    "csaf/bsi-2022-0001.json",
    "csaf/cisco-sa-20180328-smi2.json",
    "csaf/oasis_csaf_tc-csaf_2_0-2021-6-1-01-11.json",
    "csaf/rhsa-2003_315.json",
    "csaf/rhsa-2019_1862.json",
    "csaf/rhsa-2021_5217.json",
    "csaf/rhsa-2022_0011.json",
    "csaf/rhsa-2024_4546.json",
]
VEX = [
    "csaf-vex/2022-evd-uc-01-a-001.json",
    "csaf-vex/2022-evd-uc-01-f-001.json",
    "csaf-vex/2022-evd-uc-01-na-001.json",
    "csaf-vex/2022-evd-uc-01-ui-001.json",
    "csaf-vex/2022-evd-uc-03-ms-001.json",
    "csaf-vex/2022-evd-uc-08-001.json",
    "csaf-vex/sec-vex-2022-0001.json",
]
INVALID_ADVISORIES = [
    "csaf/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-01-01.json",
    "csaf/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-02-01.json",
    "csaf/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-03-01.json",
    "csaf/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-06-01.json",
    "csaf/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-08-01.json",
    "csaf/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-13-01.json",
    # Category csaf_base although it sits with the VEX samples: test 6.1.33 applies to every CSAF document.
    "csaf-vex/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-33-01.json",
]
INVALID_VEX = [
    "csaf-vex/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-27-07-01.json",
    "csaf-vex/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-27-09-01.json",
    "csaf-vex/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-27-10-01.json",
]


def advisory(rel: str) -> Advisory:
    doc = CSAF.parse(load(rel))
    assert len(doc.advisories) == 1
    return doc.advisories[0]


# --------------------------------------------------------------------------- advisories


@pytest.mark.parametrize("rel", ADVISORIES)
def test_every_advisory_sample_parses(rel: str) -> None:
    raw = orjson.loads((FIXTURES / rel).read_bytes())
    doc = CSAF.parse(load(rel))
    assert (doc.format, doc.kind, doc.media_type) == ("csaf", DocumentKind.ADVISORY, "application/csaf+json")
    assert doc.document_id == raw["document"]["tracking"]["id"] == doc.advisories[0].advisory_id
    assert doc.format_version == "2.0"
    assert doc.advisories[0].summary == raw["document"]["title"]
    assert doc.vex == [] and doc.warnings == []


def test_bsi_statuses_cwe_and_scores() -> None:
    adv = advisory("csaf/bsi-2022-0001.json")
    assert adv.modified == adv.published == datetime(2022, 3, 17, 13, 3, 42, 105000)
    assert adv.aliases == ["CVE-2022-27193"] and adv.cwes == ["CWE-611"]
    assert [(s.type, s.score, s.base_score) for s in adv.severities] == [
        ("CSAF", "Moderate", None),
        ("CVSS_V3", "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:L/E:F/RL:O/RC:C", 6.1),
    ]
    assert {s.source for s in adv.severities} == {"Bundesamt für Sicherheit in der Informationstechnik"}
    # first_fixed and fixed both list CSAFPID-0006: one 'fixed' row.
    assert [(r.product_id, r.status) for r in adv.affected] == [
        ("CSAFPID-0006", "fixed"),
        ("CSAFPID-0001", "affected"),
        ("CSAFPID-0002", "affected"),
        ("CSAFPID-0003", "affected"),
        ("CSAFPID-0004", "affected"),
        ("CSAFPID-0005", "affected"),
    ]
    assert adv.affected[0] == AffectedRange(
        ecosystem=None,
        name="CSAF Tools CVRF-CSAF-Converter 1.0.0-rc2",
        range_type="CSAF",
        status="fixed",
        product_id="CSAFPID-0006",
    )


def test_cisco_large_tree_with_vendor_category() -> None:
    doc = CSAF.parse(load("csaf/cisco-sa-20180328-smi2.json"))
    adv = doc.advisories[0]
    assert adv.published == datetime(2018, 3, 28, 16, 0) and adv.modified == datetime(2018, 4, 17, 15, 8, 41)
    assert len(adv.affected) == 259 and {r.status for r in adv.affected} == {"affected"}
    assert adv.affected[0].name == doc.subject == "Cisco IOS 12.2EY 12.2(55)EY"
    assert adv.affected[0].product_id == "CVRFPID-103559"
    assert [(s.type, s.score, s.base_score) for s in adv.severities] == [
        ("CVSS_V3", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8)
    ]


@pytest.mark.parametrize("rel", ["csaf/rhsa-2019_1862.json", "csaf/oasis_csaf_tc-csaf_2_0-2021-6-1-01-11.json"])
def test_documents_without_vulnerabilities_are_valid(rel: str) -> None:
    adv = advisory(rel)
    assert adv.affected == [] and adv.aliases == [] and adv.cwes == []


def test_informational_advisory_keeps_its_aggregate_severity() -> None:
    adv = advisory("csaf/rhsa-2019_1862.json")
    assert [(s.type, s.score) for s in adv.severities] == [("CSAF", "Low")]
    assert CSAF.parse(load("csaf/oasis_csaf_tc-csaf_2_0-2021-6-1-01-11.json")).subject == "Product A"


def test_rhsa_fixed_products_inherit_component_purls() -> None:
    adv = advisory("csaf/rhsa-2003_315.json")
    assert adv.aliases == ["CVE-2003-0858"]
    assert len(adv.affected) == 26 and {r.status for r in adv.affected} == {"fixed"}
    first = adv.affected[0]
    assert first.product_id == "3AS:quagga-0:0.96.2-8.3E.i386"
    assert first.name == "quagga-0:0.96.2-8.3E.i386 as a component of Red Hat Enterprise Linux AS version 3"
    assert first.purl == "pkg:rpm/redhat/quagga@0.96.2-8.3E?arch=i386"
    assert all(r.purl and r.purl.startswith("pkg:rpm/redhat/quagga") for r in adv.affected)
    assert [s.type for s in adv.severities] == ["CSAF"]


def test_rhsa_2024_4546_fixed_rows_and_cvss() -> None:
    adv = advisory("csaf/rhsa-2024_4546.json")
    assert adv.modified == datetime(2024, 7, 16, 13, 38, 3) and adv.published == datetime(2024, 7, 15, 16, 12, 25)
    assert adv.aliases == ["CVE-2023-45288"] and adv.cwes == ["CWE-400"]
    assert len(adv.affected) == 15 and {r.status for r in adv.affected} == {"fixed"}
    assert (adv.affected[1].product_id, adv.affected[1].purl) == (
        "AppStream-8.6.0.Z.AUS:git-lfs-0:2.13.3-3.el8_6.1.x86_64",
        "pkg:rpm/redhat/git-lfs@2.13.3-3.el8_6.1?arch=x86_64",
    )
    assert [(s.type, s.base_score) for s in adv.severities] == [("CSAF", None), ("CVSS_V3", 7.5)]


def test_rhsa_without_purls_and_single_product_family() -> None:
    telnet = advisory("csaf/rhsa-2022_0011.json")
    assert len(telnet.affected) == 15 and {r.purl for r in telnet.affected} == {None}
    assert telnet.affected[0].product_id == "7Server-7.6.AUS:telnet-1:0.17-65.el7_6.src"
    assert telnet.cwes == ["CWE-119"]
    sso = advisory("csaf/rhsa-2021_5217.json")
    assert sso.affected == [
        AffectedRange(
            ecosystem=None,
            name="Red Hat Single Sign-On",
            range_type="CSAF",
            status="fixed",
            product_id="Red Hat Single Sign-On",
        )
    ]
    assert (sso.aliases, sso.cwes, sso.modified) == (
        ["CVE-2021-4133"],
        ["CWE-863"],
        datetime(2021, 12, 20, 16, 16),
    )


def test_a_vex_document_can_be_read_as_an_advisory() -> None:
    adv = advisory("csaf-vex/2022-evd-uc-08-001.json")
    assert adv.aliases == ["CVE-2021-44228", "CVE-2021-45105"]
    assert Counter(r.status for r in adv.affected) == Counter({"not_affected": 5, "affected": 5, "fixed": 2})


# --------------------------------------------------------------------------- VEX


def vex(rel: str) -> ParsedDocument:
    doc = CSAF_VEX.parse(load(rel))
    assert (doc.format, doc.kind, doc.media_type) == ("csaf-vex", DocumentKind.VEX, "application/csaf+json")
    assert doc.advisories == []
    return doc


@pytest.mark.parametrize(
    ("rel", "product", "status", "justification", "impact", "action"),
    [
        (
            "csaf-vex/2022-evd-uc-01-a-001.json",
            "Example Company DEF 1.0",
            VexStatus.AFFECTED,
            None,
            None,
            "Customers should update to version 1.1 of product DEF which fixes the issue.",
        ),
        ("csaf-vex/2022-evd-uc-01-f-001.json", "Example Company DEF 1.1", VexStatus.FIXED, None, None, None),
        (
            "csaf-vex/2022-evd-uc-01-na-001.json",
            "Example Company ABC 4.2",
            VexStatus.NOT_AFFECTED,
            None,
            "Class with vulnerable code was removed before shipping.",
            None,
        ),
        (
            "csaf-vex/2022-evd-uc-01-ui-001.json",
            "Example Company GHI 17.4",
            VexStatus.UNDER_INVESTIGATION,
            None,
            None,
            None,
        ),
    ],
)
def test_single_statement_use_cases(
    rel: str,
    product: str,
    status: VexStatus,
    justification: str | None,
    impact: str | None,
    action: str | None,
) -> None:
    doc = vex(rel)
    (statement,) = doc.vex
    assert doc.subject == product
    assert (statement.vulnerability_id, statement.product, statement.status) == (
        "CVE-2021-44228",
        product,
        status,
    )
    assert (statement.justification, statement.impact_statement, statement.action_statement) == (
        justification,
        impact,
        action,
    )
    assert statement.product_purl is None and statement.aliases == []
    assert statement.timestamp == datetime(2022, 3, 3, 11, 0)


def test_mixed_statuses_over_nineteen_vulnerabilities() -> None:
    statements = vex("csaf-vex/2022-evd-uc-03-ms-001.json").vex
    assert len(statements) == 19
    assert len({s.vulnerability_id for s in statements}) == 19
    assert Counter(s.status for s in statements) == Counter(
        {
            VexStatus.UNDER_INVESTIGATION: 5,
            VexStatus.NOT_AFFECTED: 6,
            VexStatus.AFFECTED: 5,
            VexStatus.FIXED: 3,
        }
    )
    by_id = {s.vulnerability_id: s for s in statements}
    assert by_id["CVE-2020-11906"].impact_statement is not None
    assert by_id["CVE-2020-11906"].impact_statement.startswith("This code was re-written.")
    assert by_id["CVE-2020-11898"].action_statement is not None
    assert by_id["CVE-2020-11898"].action_statement.startswith("We are working to integrate the upstream patches")


def test_use_case_8_products_statements_and_recommended_is_no_status() -> None:
    statements = vex("csaf-vex/2022-evd-uc-08-001.json").vex
    assert len(statements) == 21
    first = [s for s in statements if s.vulnerability_id == "CVE-2021-44228"]
    assert Counter(s.status for s in first) == Counter(
        {VexStatus.FIXED: 2, VexStatus.AFFECTED: 4, VexStatus.NOT_AFFECTED: 5}
    )
    # CSAFPID-0011 is both fixed and recommended: one statement, 'fixed'.
    assert [s.status for s in first if s.product == "Example Company JKL 5.2"] == [VexStatus.FIXED]
    second = {s.product: s for s in statements if s.vulnerability_id == "CVE-2021-45105"}
    assert second["Example Company JKL 5.1"].status == VexStatus.AFFECTED
    assert second["Example Company JKL 5.1"].action_statement == "Update to the new version 5.2 or later."
    assert (
        second["Example Company JKL >=1.0|<=4.4"].impact_statement == "Log4j was not included in those versions at all."
    )


def test_flag_justification_and_impact_statement() -> None:
    doc = vex("csaf-vex/sec-vex-2022-0001.json")
    assert doc.document_id == "SEC-VEX-2022-0001" and doc.subject == "Secvisogram <=1.14.0"
    assert [s.vulnerability_id for s in doc.vex] == ["CVE-2021-44228", "CVE-2021-45046", "CVE-2021-45105"]
    for statement in doc.vex:
        assert statement.status == VexStatus.NOT_AFFECTED
        assert statement.justification == "component_not_present"
        assert statement.impact_statement == "Secvisogram is written in JavaScript. No Java is included."
        assert statement.timestamp == datetime(2022, 5, 27, 10, 0)


def test_vex_product_is_the_purl_when_it_has_one() -> None:
    def add_purl(doc: dict[str, Any]) -> None:
        doc["product_tree"]["branches"][0]["branches"][0]["branches"][0]["product"]["product_identification_helper"] = {
            "purl": "pkg:npm/secvisogram@1.14.0"
        }
        doc["vulnerabilities"][0]["ids"] = [{"system_name": "GHSA", "text": "GHSA-jfh8-c2jp-5v3q"}]

    statement = CSAF_VEX.parse(edited("csaf-vex/sec-vex-2022-0001.json", add_purl)).vex[0]
    assert statement.product == statement.product_purl == "pkg:npm/secvisogram@1.14.0"
    assert statement.aliases == ["GHSA-jfh8-c2jp-5v3q"]


def test_csaf_vex_refuses_other_categories() -> None:
    with pytest.raises(SchemaError) as err:
        CSAF_VEX.parse(load("csaf/rhsa-2021_5217.json"))
    assert err.value.pointer == "/document/category"
    assert "'csaf_security_advisory', not 'csaf_vex'" in err.value.message


# --------------------------------------------------------------------------- invalid samples

INVALID_CASES = [
    (
        "csaf/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-01-01.json",
        "/product_tree/product_groups/0/product_ids/0",
        "product_groups references product ID 'CSAFPID-9080700' that the product_tree does not define",
    ),
    (
        "csaf/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-02-01.json",
        "/product_tree/full_product_names/1/product_id",
        "product ID 'CSAFPID-9080700' is defined more than once",
    ),
    (
        "csaf/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-03-01.json",
        "/product_tree/relationships/0/relates_to_product_reference",
        "'CSAFPID-9080701' in terms of itself (circular definition)",
    ),
    (
        "csaf/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-06-01.json",
        "/vulnerabilities/0/product_status/known_not_affected/0",
        "'CSAFPID-9080700' is both known_affected and known_not_affected",
    ),
    (
        "csaf/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-08-01.json",
        "/vulnerabilities/0/scores/0/cvss_v3",
        "invalid CVSS object: the required property 'baseSeverity' is missing",
    ),
    (
        "csaf/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-13-01.json",
        "/product_tree/full_product_names/0/product_identification_helper/purl",
        "invalid package URL 'pkg:maven/@1.3.4'",
    ),
    (
        "csaf-vex/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-33-01.json",
        "/vulnerabilities/0/flags/1",
        "product ID 'CSAFPID-9080700' has more than one flag",
    ),
    (
        "csaf-vex/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-27-07-01.json",
        "/vulnerabilities/0/product_status",
        "must list products under fixed, known_affected, known_not_affected or under_investigation",
    ),
    (
        "csaf-vex/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-27-09-01.json",
        "/vulnerabilities/0/product_status/known_not_affected/2",
        "'CSAFPID-9080702' is known_not_affected but has no impact statement",
    ),
    (
        "csaf-vex/invalid/oasis_csaf_tc-csaf_2_0-2021-6-1-27-10-01.json",
        "/vulnerabilities/0/product_status/known_affected/2",
        "'CSAFPID-9080702' is known_affected but has no action statement",
    ),
]


@pytest.mark.parametrize(("rel", "pointer", "words"), INVALID_CASES)
def test_invalid_samples_fail_the_mandatory_test_they_illustrate(rel: str, pointer: str, words: str) -> None:
    cand = load(rel)
    (fmt,) = [f for f in csaf.FORMATS if f.sniff(cand)]
    with pytest.raises(SchemaError) as err:
        fmt.parse(cand)
    assert err.value.pointer == pointer
    assert words in err.value.message
    assert err.value.path == cand.path


@pytest.mark.parametrize("rel", INVALID_VEX)
def test_profile_tests_follow_the_category_not_the_importer(rel: str) -> None:
    with pytest.raises(SchemaError) as as_vex:
        CSAF_VEX.parse(load(rel))
    with pytest.raises(SchemaError) as as_advisory:
        CSAF.parse(load(rel))
    assert as_vex.value.message == as_advisory.value.message


def test_undefined_product_in_product_status() -> None:
    def typo(doc: dict[str, Any]) -> None:
        doc["vulnerabilities"][0]["product_status"]["known_affected"][0] = "CSAFPID-9080700"

    with pytest.raises(SchemaError) as err:
        CSAF_VEX.parse(edited("csaf-vex/2022-evd-uc-01-a-001.json", typo))
    assert err.value.pointer == "/vulnerabilities/0/product_status/known_affected/0"
    assert err.value.message == (
        "product_status references product ID 'CSAFPID-9080700' that the product_tree does not define"
    )


def test_undefined_product_group() -> None:
    def typo(doc: dict[str, Any]) -> None:
        doc["vulnerabilities"][0]["remediations"][0]["group_ids"] = ["CSAFGID-404"]

    with pytest.raises(SchemaError) as err:
        CSAF_VEX.parse(edited("csaf-vex/2022-evd-uc-01-a-001.json", typo))
    assert err.value.pointer == "/vulnerabilities/0/remediations/0/group_ids/0"
    assert "product group ID 'CSAFGID-404'" in err.value.message


def test_indirect_circular_definition() -> None:
    def loop(doc: dict[str, Any]) -> None:
        rels = doc["product_tree"]["relationships"]
        rels[0]["product_reference"] = rels[1]["full_product_name"]["product_id"]
        rels[1]["product_reference"] = rels[0]["full_product_name"]["product_id"]

    with pytest.raises(SchemaError) as err:
        CSAF.parse(edited("csaf/rhsa-2003_315.json", loop))
    assert err.value.pointer == "/product_tree/relationships/0/product_reference"
    assert "circular definition" in err.value.message


@pytest.mark.parametrize(
    ("rel", "change", "pointer", "words"),
    [
        (
            "csaf/rhsa-2019_1862.json",
            lambda doc: doc.update(vulnerabilities=[{"cve": "CVE-2019-0001"}]),
            "/vulnerabilities",
            "a csaf_informational_advisory must not have vulnerabilities",
        ),
        (
            "csaf/rhsa-2021_5217.json",
            lambda doc: doc.pop("product_tree"),
            "",
            "a csaf_security_advisory document must have a product_tree",
        ),
        (
            "csaf-vex/2022-evd-uc-01-f-001.json",
            lambda doc: doc.pop("product_tree"),
            "",
            "a csaf_vex document must have a product_tree",
        ),
        (
            "csaf/rhsa-2021_5217.json",
            lambda doc: doc["vulnerabilities"][0].pop("product_status"),
            "/vulnerabilities/0",
            "a csaf_security_advisory vulnerability must have a product_status",
        ),
        (
            "csaf-vex/2022-evd-uc-01-f-001.json",
            lambda doc: doc["vulnerabilities"][0].pop("cve"),
            "/vulnerabilities/0",
            "needs a 'cve' or an 'ids' entry",
        ),
    ],
)
def test_profile_requirements(rel: str, change: Callable[[dict[str, Any]], object], pointer: str, words: str) -> None:
    cand = edited(rel, change)
    (fmt,) = [f for f in csaf.FORMATS if f.sniff(cand)]
    with pytest.raises(SchemaError) as err:
        fmt.parse(cand)
    assert err.value.pointer == pointer
    assert words in err.value.message


def test_cvss_version_and_vector_disagree() -> None:
    def wrong_version(doc: dict[str, Any]) -> None:
        doc["vulnerabilities"][0]["scores"][0]["cvss_v3"]["version"] = "3.0"

    with pytest.raises(SchemaError) as err:
        CSAF.parse(edited("csaf/rhsa-2024_4546.json", wrong_version))
    assert err.value.pointer == "/vulnerabilities/0/scores/0/cvss_v3/vectorString"
    assert "version is '3.0' but the vectorString is 'CVSS:3.1/" in err.value.message


def test_other_schema_failures_keep_the_schema_message() -> None:
    def bad_date(doc: dict[str, Any]) -> None:
        doc["document"]["tracking"]["current_release_date"] = "yesterday"

    with pytest.raises(SchemaError) as err:
        CSAF.parse(edited("csaf/rhsa-2021_5217.json", bad_date))
    assert err.value.pointer == "/document/tracking/current_release_date"
    assert err.value.message.startswith("fails the CSAF 2.0 schema")


def test_other_csaf_versions_are_unsupported() -> None:
    def newer(doc: dict[str, Any]) -> None:
        doc["document"]["csaf_version"] = "2.1"

    cand = edited("csaf/rhsa-2021_5217.json", newer)
    assert CSAF.sniff(cand)
    with pytest.raises(UnsupportedFormatError) as err:
        CSAF.parse(cand)
    assert err.value.pointer == "/document/csaf_version"
    assert "CSAF version 2.1 is not supported" in err.value.message


def test_mismatching_published_score_is_a_warning() -> None:
    def wrong_score(doc: dict[str, Any]) -> None:
        doc["vulnerabilities"][0]["scores"][0]["cvss_v3"]["baseScore"] = 9.1

    doc = CSAF.parse(edited("csaf/rhsa-2024_4546.json", wrong_score))
    assert doc.warnings == [
        "/vulnerabilities/0/scores/0/cvss_v3: published base score 9.1 differs from 7.5 computed from "
        "'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H'"
    ]
    assert doc.advisories[0].severities[1].base_score == 9.1


# --------------------------------------------------------------------------- CVSS calculator


def published_cvss3(rel: str) -> list[tuple[str, float]]:
    raw = orjson.loads((FIXTURES / rel).read_bytes())
    return [
        (score["cvss_v3"]["vectorString"], score["cvss_v3"]["baseScore"])
        for vuln in raw.get("vulnerabilities", ())
        for score in vuln.get("scores", ())
        if "cvss_v3" in score
    ]


def test_calculator_matches_every_published_csaf_base_score() -> None:
    pairs = [pair for rel in ADVISORIES + VEX for pair in published_cvss3(rel)]
    assert len(pairs) == 7  # bsi, cisco, rhsa-2024_4546 and four in use case 8
    for vector, published in pairs:
        assert cvss3_base_score(vector) == published, vector


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:L/I:L/A:N", 5.4),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
        ("CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:N", 5.9),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:U/MAV:P", 9.8),
    ],
)
def test_calculator_reference_vectors(vector: str, score: float) -> None:
    assert cvss3_base_score(vector) == score


@pytest.mark.parametrize(
    ("vector", "words"),
    [
        ("CVSS:2.0/AV:N", "does not start with CVSS:3.0/ or CVSS:3.1/"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H", "lacks the base metric(s) A"),
        ("CVSS:3.1/AV:N/AV:L/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "gives the metric AV more than once"),
        ("CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "invalid value 'Q' for metric AV"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/XX:1", "unknown CVSS v3 metric 'XX:1'"),
    ],
)
def test_calculator_rejects_broken_vectors(vector: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        parse_cvss3(vector)


# --------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize("rel", VEX + INVALID_VEX)
def test_vex_samples_sniffed_by_csaf_vex_only(rel: str) -> None:
    cand = load(rel)
    assert CSAF_VEX.sniff(cand)
    assert [f.name for f in (CSAF, *OTHER_FORMATS) if f.sniff(cand)] == []


@pytest.mark.parametrize("rel", ADVISORIES + INVALID_ADVISORIES)
def test_advisory_samples_sniffed_by_csaf_only(rel: str) -> None:
    cand = load(rel)
    assert CSAF.sniff(cand)
    assert [f.name for f in (CSAF_VEX, *OTHER_FORMATS) if f.sniff(cand)] == []


@pytest.mark.parametrize(
    "rel", ["osv/GO-2020-0001.json", "cve5/CVE-2021-44228.json", "ghsa/invalid/GHSA-wjx8-cgrm-hh8p.json"]
)
def test_other_documents_are_not_csaf(rel: str) -> None:
    cand = load(rel)
    assert not CSAF.sniff(cand) and not CSAF_VEX.sniff(cand)
