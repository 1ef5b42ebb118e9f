"""OSV adapter: OSV and GHSA records, osv-linter rejections, the GHSA CVSS quirk, sniffing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson
import pytest

from adapters.sources import csaf, cve5, osv
from core.errors import SchemaError
from core.records import Advisory, AffectedRange, DocumentKind, ParsedDocument
from core.sources import Candidate
from tests.unit.sources.fixture_docs import FixtureDocs

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
_docs = FixtureDocs(FIXTURES)
load = _docs.load
OSV = osv.OSV
OTHER_FORMATS = (*csaf.FORMATS, *cve5.FORMATS)

VALID = [
    "osv/CVE-2018-5407.json",
    "osv/CVE-2023-41045.json",
    "osv/GO-2020-0001.json",
    "osv/GO-2024-2963.json",
    "osv/MAL-2024-10238.json",
    "osv/PYSEC-2023-74.json",
    "osv/PYSEC-2026-1.json",
    "osv/UBUNTU-CVE-2025-38094.json",
    "ghsa/GHSA-266m-wp2v-x7mq.json",
    "ghsa/GHSA-75v8-2h7p-7m2m.json",
    "ghsa/GHSA-7fj7-39wj-c64f.json",
    "ghsa/GHSA-mp6f-p9gp-vpj9.json",
    "ghsa/GHSA-wjx8-cgrm-hh8p.json",
    "ghsa/GHSA-xx65-cc7g-9pfp.json",
    "ghsa/advisory-database-upstream/GHSA-mp6f-p9gp-vpj9.json",
    "ghsa/full_ranges.osv.json",
    "ghsa/withdrawn.osv.json",
    "ghsa/edge/GHSA-f5pg-7wfw-84q9.json",
    # Accepted although osv-linter rejects it, see test_unknown_package_name_is_accepted.
    "osv/invalid/nopackage-GHSA-9v2f-6vcg-3hgv.json",
]
REJECTED = [
    "osv/invalid/RHSA-2022_0216.json",
    "osv/invalid/SUSE-FU-2022_0444-1.json",
    "osv/invalid/nointroduced-CVE-2023-41045.json",
    "osv/invalid/nondistinct-CVE-2018-5407.json",
    "osv/edge/CYCLE-ROOT-1.json",
    "osv/edge/CYCLE-ROOT-2.json",
    "osv/edge/CYCLE-ROOT-3.json",
]
NOT_OSV = ["ghsa/edge/withdrawn.graphql.json", "ghsa/invalid/GHSA-wjx8-cgrm-hh8p.json"]


def parse(rel: str) -> ParsedDocument:
    return OSV.parse(load(rel))


def advisory(rel: str) -> Advisory:
    doc = parse(rel)
    assert len(doc.advisories) == 1
    return doc.advisories[0]


def spans(adv: Advisory) -> list[tuple[str | None, str, str | None, str | None, str | None]]:
    return [(r.ecosystem, r.name, r.range_type, r.introduced, r.fixed) for r in adv.affected]


@pytest.mark.parametrize("rel", VALID)
def test_every_valid_sample_parses_to_one_advisory(rel: str) -> None:
    raw = orjson.loads((FIXTURES / rel).read_bytes())
    doc = parse(rel)
    assert (doc.format, doc.kind, doc.media_type) == (
        "osv",
        DocumentKind.ADVISORY,
        "application/vnd.osv+json",
    )
    assert doc.document_id == raw["id"] == doc.advisories[0].advisory_id
    assert doc.format_version == raw.get("schema_version")
    assert doc.advisories[0].affected, "every accepted record has affected rows"
    assert not doc.vex and doc.sbom is None


def test_go_2020_0001_semver_fixed_version() -> None:
    doc = parse("osv/GO-2020-0001.json")
    adv = doc.advisories[0]
    assert doc.subject == "Go/github.com/gin-gonic/gin"
    assert adv.modified == datetime(2024, 5, 20, 16, 3, 47)
    assert adv.published == datetime(2021, 4, 14, 20, 4, 52)
    assert adv.withdrawn is None
    assert adv.summary == "Arbitrary log line injection in github.com/gin-gonic/gin"
    assert adv.aliases == ["CVE-2020-36567", "GHSA-6vm3-jj99-7229"]
    assert adv.affected == [
        AffectedRange(
            ecosystem="Go",
            name="github.com/gin-gonic/gin",
            range_type="SEMVER",
            introduced="0",
            fixed="1.6.0",
        )
    ]
    assert adv.severities == [] and adv.cwes == []


def test_go_stdlib_two_semver_intervals() -> None:
    adv = advisory("osv/GO-2024-2963.json")
    assert spans(adv) == [
        ("Go", "stdlib", "SEMVER", "0", "1.21.12"),
        ("Go", "stdlib", "SEMVER", "1.22.0-0", "1.22.5"),
    ]
    assert adv.aliases == ["CVE-2024-24791"]


def test_pysec_2023_74_git_ecosystem_and_versions_rows() -> None:
    adv = advisory("osv/PYSEC-2023-74.json")
    assert adv.modified == datetime(2023, 6, 5, 1, 13, 0, 534973)
    assert adv.aliases == ["CVE-2023-32681", "GHSA-j8r2-6x86-q33q"]
    assert adv.summary is not None and adv.summary.startswith("Requests is a HTTP library.")
    git, ecosystem, versions = adv.affected
    assert (git.range_type, git.introduced, git.fixed) == (
        "GIT",
        "0",
        "74ea7cf7a6a27a4eeb2ae24e162bcc942a6706d5",
    )
    assert (ecosystem.range_type, ecosystem.introduced, ecosystem.fixed) == ("ECOSYSTEM", "2.3.0", "2.31.0")
    assert versions.range_type == "VERSIONS" and versions.introduced is None
    assert len(versions.versions) == 66 and versions.versions[:2] == ["2.10.0", "2.11.0"]
    assert {r.purl for r in adv.affected} == {"pkg:pypi/requests"}
    assert {(r.ecosystem, r.name) for r in adv.affected} == {("PyPI", "requests")}


def test_packageless_git_range_named_by_repo_and_multiple_fixes() -> None:
    doc = parse("osv/CVE-2023-41045.json")
    adv = doc.advisories[0]
    repo = "https://github.com/graylog2/graylog2-server"
    # Two fixed commits (two release branches) both close the one 'introduced: 0'.
    assert spans(adv) == [
        (None, repo, "GIT", "0", "466af814523cffae9fbc7e77bab7472988f03c3e"),
        (None, repo, "GIT", "0", "a101f4f12180fd3dfa7d3345188a099877a3c327"),
    ]
    assert doc.subject == "CVE-2023-41045"
    assert adv.aliases == ["GHSA-g96c-x7rh-99r3"]
    assert [(s.type, s.base_score) for s in adv.severities] == [("CVSS_V3", 5.3)]


def test_alpine_ecosystems_and_cvss_base_score() -> None:
    adv = advisory("osv/CVE-2018-5407.json")
    assert len(adv.affected) == 7
    alpine = adv.affected[:6]
    assert [r.ecosystem for r in alpine] == [f"Alpine:v3.{n}" for n in range(3, 9)]
    assert {(r.name, r.purl, r.range_type, r.introduced, r.fixed) for r in alpine} == {
        ("openssl", "pkg:apk/alpine/openssl?arch=source", "ECOSYSTEM", "0", "1.0.2q-r0")
    }
    assert spans(adv)[6] == (
        None,
        "https://github.com/nodejs/node",
        "GIT",
        "cf41627411886000429bde058a6594fb7f6d6d47",
        "03b825811ed4af0addcdf6e75bacb3dc1c4c5940",
    )
    (severity,) = adv.severities
    assert (severity.type, severity.score, severity.base_score) == (
        "CVSS_V3",
        "CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:N/A:N",
        4.7,
    )
    assert adv.summary is not None and adv.summary.startswith("Simultaneous Multi-threading (SMT)")


def test_malicious_package_explicit_versions() -> None:
    doc = parse("osv/MAL-2024-10238.json")
    adv = doc.advisories[0]
    assert doc.format_version == "1.5.0"
    assert adv.summary == "Malicious code in 123bla (PyPI)"
    assert adv.affected == [AffectedRange(ecosystem="PyPI", name="123bla", range_type="VERSIONS", versions=["0.0.1"])]


def test_ubuntu_label_severity_upstream_and_open_range() -> None:
    doc = parse("osv/UBUNTU-CVE-2025-38094.json")
    adv = doc.advisories[0]
    assert doc.format_version == "1.7.3"
    assert doc.subject == "Ubuntu:Pro:14.04:LTS/linux"
    assert [(s.type, s.score, s.base_score) for s in adv.severities] == [("Ubuntu", "medium", None)]
    assert adv.aliases == [] and adv.related == ["CVE-2025-38094"]
    open_range, versions = adv.affected
    assert (open_range.range_type, open_range.introduced, open_range.fixed) == ("ECOSYSTEM", "0", None)
    assert open_range.purl == "pkg:deb/ubuntu/linux@3.13.0-206.257?arch=source&distro=esm-infra-legacy/trusty"
    assert len(versions.versions) == 180 and versions.versions[0] == "3.11.0-12.19"


def test_cvss_v4_base_score_is_computed() -> None:
    """6.3 is what FIRST's CVSS v4.0 calculator gives for the vector (AV:N/AC:L/AT:P/PR:N/UI:N/VA:L)."""
    adv = advisory("osv/PYSEC-2026-1.json")
    assert [(s.type, s.base_score) for s in adv.severities] == [("CVSS_V3", 5.3), ("CVSS_V4", 6.3)]
    assert spans(adv) == [("PyPI", "Werkzeug", "ECOSYSTEM", "0", "3.1.5")]


@pytest.mark.parametrize(
    ("rel", "score", "label"),
    [
        ("ghsa/GHSA-266m-wp2v-x7mq.json", 7.5, "HIGH"),
        ("ghsa/GHSA-75v8-2h7p-7m2m.json", 3.1, "LOW"),
        ("ghsa/GHSA-7fj7-39wj-c64f.json", 5.3, "MODERATE"),
        ("ghsa/GHSA-mp6f-p9gp-vpj9.json", 7.5, "HIGH"),
        ("ghsa/GHSA-wjx8-cgrm-hh8p.json", 8.8, "HIGH"),
        ("ghsa/GHSA-xx65-cc7g-9pfp.json", 5.9, "MODERATE"),
        ("ghsa/edge/GHSA-f5pg-7wfw-84q9.json", 9.8, "MODERATE"),
    ],
)
def test_ghsa_cvss_base_score_and_label(rel: str, score: float, label: str) -> None:
    adv = advisory(rel)
    assert [(s.type, s.base_score) for s in adv.severities] == [("CVSS_V3", score), ("GHSA", None)]
    assert adv.severities[1].score == label


def test_ghsa_ranges_and_cwes() -> None:
    nuget = advisory("ghsa/GHSA-266m-wp2v-x7mq.json")
    assert spans(nuget) == [("NuGet", "Microsoft.NetCore.App.Runtime.linux-arm", "ECOSYSTEM", "9.0.0", "9.0.6")]
    assert nuget.cwes == ["CWE-426"]
    formidable = advisory("ghsa/GHSA-75v8-2h7p-7m2m.json")
    assert spans(formidable) == [
        ("npm", "formidable", "ECOSYSTEM", "3.1.1-canary.20211030", "3.5.3"),
        ("npm", "formidable", "ECOSYSTEM", "2.1.0", None),
    ]
    swift = advisory("ghsa/GHSA-7fj7-39wj-c64f.json")
    assert [(r.introduced, r.fixed) for r in swift.affected] == [
        ("2.41.0", "2.42.0"),
        ("2.39.0", "2.39.1"),
        ("0", "2.29.1"),
    ]
    assert swift.cwes == ["CWE-113", "CWE-74"]
    contao = advisory("ghsa/GHSA-wjx8-cgrm-hh8p.json")
    assert spans(contao) == [
        ("Packagist", "contao/core-bundle", "ECOSYSTEM", "4.0.0", "4.4.46"),
        ("Packagist", "contao/core-bundle", "ECOSYSTEM", "4.5.0", "4.8.6"),
    ]
    spring = advisory("ghsa/GHSA-xx65-cc7g-9pfp.json")
    assert spans(spring) == [("Maven", "org.springframework.boot:spring-boot", "ECOSYSTEM", "1.5.0", "1.5.10")]
    assert spring.severities[0].score.startswith("CVSS:3.0/")


def test_two_revisions_of_one_ghsa_differ_only_in_modified() -> None:
    old = advisory("ghsa/GHSA-mp6f-p9gp-vpj9.json")
    new = advisory("ghsa/advisory-database-upstream/GHSA-mp6f-p9gp-vpj9.json")
    assert old.advisory_id == new.advisory_id == "GHSA-mp6f-p9gp-vpj9"
    assert old.modified == datetime(2022, 6, 14, 20, 54, 51)
    assert new.modified == datetime(2024, 4, 22, 18, 52, 15)
    assert (
        old.affected
        == new.affected
        == [
            AffectedRange(
                ecosystem="crates.io",
                name="sized-chunks",
                range_type="ECOSYSTEM",
                introduced="0",
                fixed="0.6.3",
            )
        ]
    )


def test_converter_output_cwes_on_affected_entries() -> None:
    adv = advisory("ghsa/full_ranges.osv.json")
    assert adv.advisory_id == "GHSA-mr95-9rr4-668f"
    assert adv.cwes == ["CWE-338"]
    assert spans(adv) == [
        ("Maven", "com.typesafe.akka:akka-actor_2.12", "ECOSYSTEM", "2.5.0", "2.5.16"),
        ("Maven", "com.typesafe.akka:akka-actor_2.11", "ECOSYSTEM", "2.5.0", "2.5.16"),
    ]


def test_withdrawn_record_with_unsorted_events() -> None:
    adv = advisory("ghsa/withdrawn.osv.json")
    assert adv.withdrawn == datetime(2018, 10, 11, 17, 29, 49)
    assert adv.aliases == ["CVE-2015-3227"]
    # ECOSYSTEM versions only compare with RubyGems rules, so the publisher's pairing is kept.
    assert [(r.introduced, r.fixed) for r in adv.affected] == [
        ("3.2.0", "3.2.22"),
        ("4.2.0", "4.2.2"),
        ("4.0.0", "4.1.11"),
    ]


def test_ghsa_trailing_slash_vector_is_normalized_with_a_warning() -> None:
    cand = load("ghsa/edge/GHSA-f5pg-7wfw-84q9.json")
    raw_vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C/"
    doc = OSV.parse(cand)
    assert doc.advisories[0].severities[0].score == raw_vector[:-1]
    assert len(doc.warnings) == 1
    assert "/severity/0/score" in doc.warnings[0] and "trailing '/'" in doc.warnings[0]
    # Raw bytes and the candidate's cached JSON stay as published.
    assert raw_vector.encode() in cand.data
    assert cand.json["severity"][0]["score"] == raw_vector


def test_other_trailing_slash_problems_stay_errors() -> None:
    raw = orjson.loads((FIXTURES / "ghsa/edge/GHSA-f5pg-7wfw-84q9.json").read_bytes())
    raw["severity"][0]["score"] = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H//"
    with pytest.raises(SchemaError) as err:
        OSV.parse(Candidate(path="edited.json", data=orjson.dumps(raw)))
    assert err.value.pointer == "/severity/0/score"
    assert "does not match" in err.value.message


def test_incomplete_cvss_vector_is_rejected() -> None:
    raw = orjson.loads((FIXTURES / "osv/PYSEC-2026-1.json").read_bytes())
    raw["severity"][0]["score"] = "CVSS:3.1/AV:N/AC:L"  # matches the schema's regex
    with pytest.raises(SchemaError) as err:
        OSV.parse(Candidate(path="edited.json", data=orjson.dumps(raw)))
    assert err.value.pointer == "/severity/0/score"
    assert "lacks the base metric(s) PR, UI, S, C, I, A" in err.value.message


def test_semver_events_are_sorted_before_pairing() -> None:
    raw = orjson.loads((FIXTURES / "osv/GO-2024-2963.json").read_bytes())
    raw["affected"][0]["ranges"][0]["events"] = [
        {"introduced": "1.22.0-0"},
        {"fixed": "1.21.12"},
        {"introduced": "0"},
        {"fixed": "1.22.5"},
    ]
    adv = OSV.parse(Candidate(path="edited.json", data=orjson.dumps(raw))).advisories[0]
    assert [(r.introduced, r.fixed) for r in adv.affected] == [("0", "1.21.12"), ("1.22.0-0", "1.22.5")]


def test_invalid_package_purl_is_rejected() -> None:
    raw = orjson.loads((FIXTURES / "osv/PYSEC-2023-74.json").read_bytes())
    raw["affected"][0]["package"]["purl"] = "pkg:pypi"
    with pytest.raises(SchemaError) as err:
        OSV.parse(Candidate(path="edited.json", data=orjson.dumps(raw)))
    assert err.value.pointer == "/affected/0/package/purl"
    assert "invalid package URL 'pkg:pypi'" in err.value.message


@pytest.mark.parametrize(
    ("rel", "pointer", "words"),
    [
        ("osv/invalid/RHSA-2022_0216.json", "", "lists no affected packages"),
        ("osv/invalid/SUSE-FU-2022_0444-1.json", "/affected", "lists no affected packages"),
        (
            "osv/invalid/nointroduced-CVE-2023-41045.json",
            "/affected/0/ranges/0/events",
            "no 'introduced' event",
        ),
        ("osv/edge/CYCLE-ROOT-1.json", "/id", '"CYCLE-ROOT-1" does not match'),
        ("osv/edge/CYCLE-ROOT-2.json", "/id", '"CYCLE-ROOT-2" does not match'),
        ("osv/edge/CYCLE-ROOT-3.json", "/id", '"CYCLE-ROOT-3" does not match'),
    ],
)
def test_rejected_samples_name_the_problem(rel: str, pointer: str, words: str) -> None:
    with pytest.raises(SchemaError) as err:
        parse(rel)
    assert err.value.pointer == pointer
    assert words in err.value.message
    assert err.value.path is not None and err.value.path.endswith(rel)


def test_empty_interval_is_a_warning_not_a_rejection() -> None:
    """osv-linter's "events must be distinct" is a lint rule, not the schema: the record is imported, and the
    warning names the one empty interval (the openssl GIT range's first), not the whole record."""
    parsed = OSV.parse(load("osv/invalid/nondistinct-CVE-2018-5407.json"))
    commit = "e818b74be2170fbe957a07b0da4401c2b694b3b8"
    assert parsed.warnings == [
        f"/affected/6/ranges/1: the interval 'introduced: {commit}', 'fixed: {commit}' is empty, no version lies "
        "in it (osv-linter); the range's other intervals are imported"
    ]
    assert parsed.advisories[0].advisory_id == "CVE-2018-5407"


def test_unknown_package_name_is_accepted() -> None:
    """osv-linter rejects 'Gradi0' because PyPI has no such package.

    That needs the PyPI registry, which an offline importer cannot ask, so the record is
    schema-valid and accepted as published.
    """
    adv = advisory("osv/invalid/nopackage-GHSA-9v2f-6vcg-3hgv.json")
    assert adv.affected == [AffectedRange(ecosystem="PyPI", name="Gradi0", range_type="VERSIONS", versions=["4.36.1"])]
    assert adv.cwes == ["CWE-94"]


def test_graphql_advisory_is_not_osv() -> None:
    cand = load("ghsa/edge/withdrawn.graphql.json")
    assert not OSV.sniff(cand)
    with pytest.raises(SchemaError) as err:
        OSV.parse(cand)
    assert "not an OSV record" in err.value.message and "id, modified" in err.value.message


def test_truncated_json_is_not_osv() -> None:
    cand = load("ghsa/invalid/GHSA-wjx8-cgrm-hh8p.json")
    assert not OSV.sniff(cand)
    with pytest.raises(SchemaError) as err:
        OSV.parse(cand)
    assert "cannot read the OSV record: malformed JSON" in err.value.message


@pytest.mark.parametrize("rel", VALID + REJECTED)
def test_sniffed_as_osv_only(rel: str) -> None:
    cand = load(rel)
    assert OSV.sniff(cand)
    assert [f.name for f in OTHER_FORMATS if f.sniff(cand)] == []


@pytest.mark.parametrize("rel", NOT_OSV)
def test_not_osv_sniffed_by_none_of_our_formats(rel: str) -> None:
    cand = load(rel)
    assert [f.name for f in (OSV, *OTHER_FORMATS) if f.sniff(cand)] == []


@pytest.mark.parametrize(
    "rel",
    ["csaf/rhsa-2021_5217.json", "csaf-vex/sec-vex-2022-0001.json", "cve5/CVE-2021-44228.json"],
)
def test_csaf_and_cve_records_are_not_osv(rel: str) -> None:
    assert not OSV.sniff(load(rel))
