"""OpenVEX adapter: real v0.2.0 and legacy v0.0.1 documents, invalid samples, sniffing."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.sources import cyclonedx, openvex, spdx
from core.errors import SchemaError, UnsupportedFormatError
from core.records import DocumentKind, VexStatus
from core.sources import Candidate
from tests.unit.sources.fixture_docs import FixtureDocs

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "openvex"
_docs = FixtureDocs(FIXTURES)
load = _docs.load
edited = _docs.edited
OPENVEX = openvex.OPENVEX
OTHER_FORMATS = (cyclonedx.CYCLONEDX_VEX, cyclonedx.CYCLONEDX, spdx.SPDX)

VALID = ["demo.vex.json", "oci.openvex.json", "trivy.openvex.json", "v0.2.0.json"]
LEGACY = ["edge/v0.0.1.json", "edge/v0.0.1-noversion.json", "edge/images.vex.json"]
ALL_SAMPLES = [
    *VALID,
    *LEGACY,
    "edge/sample-history.openvex.json",
    "invalid/openvex-nested.json",
    "invalid/unknown.json",
]


# --- sniffing ---------------------------------------------------------------------------


@pytest.mark.parametrize("rel", [s for s in ALL_SAMPLES if s != "invalid/unknown.json"])
def test_every_openvex_sample_is_sniffed_by_openvex_only(rel: str) -> None:
    cand = load(rel)
    assert OPENVEX.sniff(cand)
    assert not any(fmt.sniff(cand) for fmt in OTHER_FORMATS)


def test_empty_object_is_not_recognised_by_any_of_these_formats() -> None:
    # unknown.json is "{}": import must call it unrecognised rather than a broken OpenVEX file.
    cand = load("invalid/unknown.json")
    assert not OPENVEX.sniff(cand)
    assert not any(fmt.sniff(cand) for fmt in OTHER_FORMATS)


@pytest.mark.parametrize(
    "data", [b"", b"not json", b"[1, 2]", b'{"@context": 5}', b'{"@context": "https://example.org/ns"}']
)
def test_sniff_rejects_other_input_without_raising(data: bytes) -> None:
    assert not OPENVEX.sniff(Candidate(path="x.json", data=data))


# --- valid v0.2.0 documents ---------------------------------------------------------------


def test_every_valid_sample_parses_as_openvex_0_2_0() -> None:
    for rel in VALID:
        doc = OPENVEX.parse(load(rel))
        assert (doc.format, doc.kind, doc.media_type) == (
            "openvex",
            DocumentKind.VEX,
            "application/openvex+json",
        )
        assert doc.format_version == "0.2.0"
        assert doc.vex


def test_trivy_production_vex() -> None:
    doc = OPENVEX.parse(load("trivy.openvex.json"))
    assert doc.document_id == "aquasecurity/trivy:613fd55abbc2857b5ca28b07a26f3cd4c8b0ddc4c8a97c57497a2d4c4880d7fc"
    assert doc.subject == "pkg:golang/github.com/aquasecurity/trivy"
    assert len(doc.vex) == 21
    assert {s.status for s in doc.vex} == {VexStatus.NOT_AFFECTED}
    assert Counter(s.justification for s in doc.vex) == {
        "vulnerable_code_not_present": 11,
        "vulnerable_code_not_in_execute_path": 10,
    }
    assert {s.product for s in doc.vex} == {"pkg:golang/github.com/aquasecurity/trivy"}
    assert {s.product_purl for s in doc.vex} == {"pkg:golang/github.com/aquasecurity/trivy"}
    first = doc.vex[0]
    assert first.vulnerability_id == "GO-2024-2575"
    assert first.aliases == ["CVE-2024-26147", "GHSA-r53h-jv2g-vpx6"]
    assert first.subcomponents == ["pkg:golang/helm.sh/helm/v3"]
    assert first.impact_statement == "Govulncheck determined that the vulnerable code isn't called"
    assert first.action_statement is None
    # No statement timestamps: the document's, converted to naive UTC (+04:00 -> 07:38).
    assert first.timestamp == datetime(2024, 7, 9, 7, 38, 0, 115697)
    aws = next(s for s in doc.vex if s.vulnerability_id == "GO-2022-0646")
    assert aws.aliases == ["CVE-2020-8911", "CVE-2020-8912", "GHSA-7f33-f4f5-xwgw", "GHSA-f5pg-7wfw-84q9"]
    assert aws.subcomponents == ["pkg:golang/github.com/aws/aws-sdk-go"]


def test_trivy_relative_document_id_is_accepted_with_a_warning() -> None:
    # The v0.2.0 schema says @id is an IRI; Trivy writes a relative reference. We accept it
    # (only the document @id is relaxed) and tell the user.
    doc = OPENVEX.parse(load("trivy.openvex.json"))
    assert any("not an absolute IRI" in w for w in doc.warnings)
    assert OPENVEX.parse(load("v0.2.0.json")).warnings == []


def test_product_ids_must_still_be_iris() -> None:
    def relative_product(doc: dict[str, Any]) -> None:
        doc["statements"][0]["products"][0]["@id"] = "alpine image"

    with pytest.raises(SchemaError) as err:
        OPENVEX.parse(edited("v0.2.0.json", relative_product))
    assert err.value.pointer == "/statements/0/products/0/@id"
    assert "iri" in err.value.message


def test_oci_vex_one_statement_per_product() -> None:
    doc = OPENVEX.parse(load("oci.openvex.json"))
    assert len(doc.vex) == 21  # 7 vulnerabilities x 3 image repositories
    assert Counter(s.vulnerability_id for s in doc.vex)["CVE-2023-42363"] == 3
    products = [s.product for s in doc.vex[:3]]
    assert products == [
        "pkg:oci/trivy?repository_url=index.docker.io%2Faquasec%2Ftrivy",
        "pkg:oci/trivy?repository_url=public.ecr.aws%2Faquasecurity%2Ftrivy",
        "pkg:oci/trivy?repository_url=ghcr.io/aquasecurity/trivy",
    ]
    first = doc.vex[0]
    assert first.product_purl == first.product
    assert first.subcomponents == [
        "pkg:apk/alpine/busybox",
        "pkg:apk/alpine/busybox-binsh",
        "pkg:apk/alpine/ssl_client",
    ]
    assert first.justification == "vulnerable_code_cannot_be_controlled_by_adversary"
    assert first.impact_statement == "awk is not used"


def test_v0_2_0_fixed_and_not_affected() -> None:
    doc = OPENVEX.parse(load("v0.2.0.json"))
    assert [(s.vulnerability_id, s.status) for s in doc.vex] == [
        ("CVE-2023-1255", VexStatus.FIXED),
        ("CVE-2023-2650", VexStatus.FIXED),
        ("CVE-2023-2975", VexStatus.FIXED),
        ("CVE-2023-3446", VexStatus.NOT_AFFECTED),
        ("CVE-2023-3817", VexStatus.NOT_AFFECTED),
    ]
    fixed, not_affected = doc.vex[0], doc.vex[3]
    assert fixed.justification is None
    assert fixed.subcomponents == ["pkg:apk/alpine/libssl3@3.0.8-r3", "pkg:apk/alpine/libcrypto3@3.0.8-r3"]
    assert not_affected.justification == "vulnerable_code_not_present"
    assert not_affected.impact_statement == "affected functions were removed before packaging"
    assert fixed.product_purl == (
        "pkg:oci/alpine@sha256%3A124c7d2707904eea7431fffe91522a01e5a861a624ee31d03372cc1d138a3126"
    )
    assert fixed.timestamp == datetime(2023, 7, 18, 0, 28, 47, 696004)


def test_demo_statement_timestamp_wins_over_document_timestamp() -> None:
    doc = OPENVEX.parse(load("demo.vex.json"))
    assert doc.document_id.startswith("https://openvex.dev/docs/public/vex-d7653e1c")
    assert [s.product for s in doc.vex] == [
        "pkg:apk/distro/git@2.39.0-r1?arch=armv7",
        "pkg:apk/distro/git@2.39.0-r1?arch=x86_64",
    ]
    assert {s.status for s in doc.vex} == {VexStatus.FIXED}
    # statement 21:55:19.945015302-06:00 (the document says .945014473)
    assert doc.vex[0].timestamp == datetime(2023, 12, 5, 3, 55, 19, 945015)


def test_identifiers_purl_counts_as_the_product_purl() -> None:
    def identifiers_only(doc: dict[str, Any]) -> None:
        doc["statements"][0]["products"] = [{"identifiers": {"purl": "pkg:apk/wolfi/git@2.39.0-r1"}}]

    doc = OPENVEX.parse(edited("demo.vex.json", identifiers_only))
    assert doc.vex[0].product == "pkg:apk/wolfi/git@2.39.0-r1"
    assert doc.vex[0].product_purl == "pkg:apk/wolfi/git@2.39.0-r1"


# --- legacy v0.0.1 --------------------------------------------------------------------------


@pytest.mark.parametrize("rel", ["edge/v0.0.1.json", "edge/v0.0.1-noversion.json"])
def test_legacy_documents_are_read_in_compatibility_mode(rel: str) -> None:
    doc = OPENVEX.parse(load(rel))
    assert doc.format_version == "0.0.1"
    assert doc.document_id == "https://openvex.dev/docs/example/vex-9fb3463de1b57"
    assert [(s.vulnerability_id, s.product, s.status) for s in doc.vex] == [
        ("CVE-2023-12345", "pkg:apk/wolfi/git@2.39.0-r1?arch=armv7", VexStatus.FIXED),
        ("CVE-2023-12345", "pkg:apk/wolfi/git@2.39.0-r1?arch=x86_64", VexStatus.FIXED),
    ]
    assert doc.vex[0].product_purl == "pkg:apk/wolfi/git@2.39.0-r1?arch=armv7"
    assert doc.vex[0].timestamp == datetime(2023, 1, 9, 0, 2, 3, 647787)
    assert any("compatibility mode" in w for w in doc.warnings)


def test_images_legacy_document_without_document_timestamp_is_accepted() -> None:
    # Decision: accept. v0.0.1 has no schema, go-vex reads it, and every statement carries
    # its own timestamp, so nothing is lost; non-purl product names are kept as given.
    doc = OPENVEX.parse(load("edge/images.vex.json"))
    assert doc.format_version == "0.0.1"
    assert [s.product for s in doc.vex] == [
        "pkg:oci/alpine@sha256%3Af271e74b17ced29b915d351685fd4644785c6d1559dd1f2d4189a5e851ef753a",
        "nginx",
        "registry.k8s.io/kube-apiserver:v1.26.0",
        "pkg:oci/kube-apiserver?repository_url=registry.k8s.io&tag=v1.26.0",
    ]
    assert [s.product_purl is not None for s in doc.vex] == [True, False, False, True]
    assert {s.status for s in doc.vex} == {VexStatus.UNDER_INVESTIGATION}
    assert {s.timestamp for s in doc.vex} == {datetime(2022, 12, 22, 21, 36, 43)}


def test_legacy_status_vocabulary_is_checked() -> None:
    def bad_status(doc: dict[str, Any]) -> None:
        doc["statements"][0]["status"] = "patched"

    with pytest.raises(SchemaError) as err:
        OPENVEX.parse(edited("edge/v0.0.1.json", bad_status))
    assert err.value.pointer == "/statements/0/status"
    assert "'patched' is not one of" in err.value.message


def test_legacy_requires_a_document_id() -> None:
    with pytest.raises(SchemaError) as err:
        OPENVEX.parse(edited("edge/v0.0.1.json", lambda d: d.pop("@id")))
    assert err.value.message == '"@id" is missing'


def test_unknown_context_version_is_unsupported() -> None:
    def future(doc: dict[str, Any]) -> None:
        doc["@context"] = "https://openvex.dev/ns/v0.9.0"

    with pytest.raises(UnsupportedFormatError) as err:
        OPENVEX.parse(edited("demo.vex.json", future))
    assert err.value.message == "OpenVEX 0.9.0 is not supported; supported: 0.0.1, 0.2.0"
    assert err.value.pointer == "/@context"


# --- invalid documents ----------------------------------------------------------------------


def test_missing_document_id_is_rejected() -> None:
    with pytest.raises(SchemaError) as err:
        OPENVEX.parse(load("invalid/openvex-nested.json"))
    assert '"@id" is a required property' in err.value.message
    assert err.value.pointer == ""


def test_empty_object_forced_as_openvex_names_the_missing_context() -> None:
    with pytest.raises(SchemaError) as err:
        OPENVEX.parse(load("invalid/unknown.json"))
    assert '"@context" is missing' in err.value.message
    assert err.value.pointer == ""


def test_foreign_context_forced_as_openvex_is_rejected() -> None:
    def foreign(doc: dict[str, Any]) -> None:
        doc["@context"] = "https://www.w3.org/ns/csvw"

    with pytest.raises(SchemaError) as err:
        OPENVEX.parse(edited("demo.vex.json", foreign))
    assert "'https://www.w3.org/ns/csvw' is not an OpenVEX context" in err.value.message
    assert err.value.pointer == "/@context"


def test_non_spec_statement_field_is_rejected_by_the_schema() -> None:
    # vexctl's sample writes a "statement" field the v0.2.0 schema does not allow.
    with pytest.raises(SchemaError) as err:
        OPENVEX.parse(load("edge/sample-history.openvex.json"))
    assert "'statement' was unexpected" in err.value.message
    assert err.value.pointer == "/statements/0"


def test_not_affected_needs_justification_or_impact_statement() -> None:
    def strip(doc: dict[str, Any]) -> None:
        del doc["statements"][3]["justification"]
        del doc["statements"][3]["impact_statement"]

    with pytest.raises(SchemaError) as err:
        OPENVEX.parse(edited("v0.2.0.json", strip))
    assert err.value.pointer == "/statements/3"
    assert "neither a justification nor an impact_statement" in err.value.message


def test_affected_needs_an_action_statement() -> None:
    def affected(doc: dict[str, Any]) -> None:
        doc["statements"][0]["status"] = "affected"

    with pytest.raises(SchemaError) as err:
        OPENVEX.parse(edited("demo.vex.json", affected))
    assert err.value.pointer == "/statements/0"
    assert "no action_statement" in err.value.message

    def with_action(doc: dict[str, Any]) -> None:
        affected(doc)
        doc["statements"][0]["action_statement"] = "Upgrade to 2.39.1"

    ok = OPENVEX.parse(edited("demo.vex.json", with_action))
    assert ok.vex[0].status is VexStatus.AFFECTED
    assert ok.vex[0].action_statement == "Upgrade to 2.39.1"


def test_malformed_product_purl_is_rejected() -> None:
    def bad_purl(doc: dict[str, Any]) -> None:
        doc["statements"][0]["products"][1]["@id"] = "pkg:apk"

    with pytest.raises(SchemaError) as err:
        OPENVEX.parse(edited("demo.vex.json", bad_purl))
    assert err.value.pointer == "/statements/0/products/1/@id"
    assert "invalid package URL 'pkg:apk'" in err.value.message
