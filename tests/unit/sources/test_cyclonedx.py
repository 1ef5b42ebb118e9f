"""CycloneDX adapters: SBOMs (cyclonedx) and BOMs with vulnerabilities (cyclonedx-vex)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.sources import cyclonedx, openvex, spdx
from core.errors import SchemaError, UnsupportedFormatError
from core.records import DocumentKind, VexStatus
from core.sources import Candidate
from tests.unit.sources.fixture_docs import FixtureDocs

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
_docs = FixtureDocs(FIXTURES)
load = _docs.load
edited = _docs.edited
SBOM = cyclonedx.CYCLONEDX
VEX = cyclonedx.CYCLONEDX_VEX
OTHER_FORMATS = (openvex.OPENVEX, spdx.SPDX)

SBOM_VALID = [
    "cyclonedx/apigateway-saasbom.json",
    "cyclonedx/bom.1.4.json",
    "cyclonedx/cbom-with-dependencies.json",
    "cyclonedx/centos-7-cyclonedx.json",
    "cyclonedx/minikube-kbom.json",
    "cyclonedx/pcie-sata-hbom.json",
    "cyclonedx/valid-attestation-1.6.json",
    "cyclonedx/valid-bom-1.5.json",
    "cyclonedx/valid-bom-1.6.json",
    "cyclonedx/valid-signatures-1.6.json",
    "cyclonedx-vex/CISA-Case-8/bom-1.json",
    "cyclonedx-vex/CISA-Case-8/bom-2.json",
    # Listed as invalid in the corpus, but valid: see test_bom_missing_refs_is_accepted.
    "cyclonedx/invalid/bom-missing-refs.json",
]
SBOM_UNSUPPORTED = {
    "cyclonedx/edge/dropwizard-1.3.15-bom-1.2.json": "1.2",
    "cyclonedx/edge/valid-minimal-viable-1.7.json": "1.7",
    "cyclonedx-vex/bom-examples-VEX/bom.json": "1.3",
}
SBOM_SCHEMA_INVALID = [
    "cyclonedx/invalid/invalid-component-ref-1.6.json",
    "cyclonedx/invalid/invalid-dependency-1.6.json",
    "cyclonedx/invalid/invalid-hash-sha256-1.6.json",
    "cyclonedx/invalid/invalid-license-declared-concluded-mix-1.6.json",
    "cyclonedx/invalid/invalid-missing-component-type-1.6.json",
    "cyclonedx/invalid/invalid-serialnumber-1.6.json",
]
VEX_VALID = [
    "cyclonedx-vex/CISA-Case-8/vex.json",
    "cyclonedx-vex/bom-examples-VEX/vex.json",
    "cyclonedx-vex/trivy-cyclonedx-vex.json",
    "cyclonedx-vex/valid-vulnerability-1.6.json",
    "cyclonedx-vex/vex-affected.json",
    "cyclonedx-vex/vex-fixed.json",
    "cyclonedx-vex/vex-not_affected.json",
    "cyclonedx-vex/vex-under_investigation.json",
    "cyclonedx-vex/vex-usecase11-ripple20.json",
]


# --- sniffing -------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", SBOM_VALID + list(SBOM_UNSUPPORTED) + SBOM_SCHEMA_INVALID)
def test_sboms_are_sniffed_as_cyclonedx_only(rel: str) -> None:
    cand = load(rel)
    assert SBOM.sniff(cand)
    assert not VEX.sniff(cand)
    assert not any(fmt.sniff(cand) for fmt in OTHER_FORMATS)


@pytest.mark.parametrize("rel", VEX_VALID)
def test_boms_with_vulnerabilities_are_sniffed_as_cyclonedx_vex_only(rel: str) -> None:
    cand = load(rel)
    assert VEX.sniff(cand)
    assert not SBOM.sniff(cand)
    assert not any(fmt.sniff(cand) for fmt in OTHER_FORMATS)


def test_empty_vulnerabilities_array_is_an_sbom() -> None:
    cand = load("cyclonedx/minikube-kbom.json")  # has "vulnerabilities": []
    assert orjson.loads(cand.data)["vulnerabilities"] == []
    assert SBOM.sniff(cand)
    assert not VEX.sniff(cand)


def test_wrong_bom_format_is_not_sniffed_but_rejected_when_forced() -> None:
    cand = load("cyclonedx/invalid/invalid-bomformat-1.6.json")
    assert not SBOM.sniff(cand)
    assert not VEX.sniff(cand)
    with pytest.raises(SchemaError) as err:
        SBOM.parse(cand)
    assert err.value.pointer == "/bomFormat"
    assert '"AnotherFormat" is not one of "CycloneDX"' in err.value.message


@pytest.mark.parametrize("data", [b"", b"[]", b'{"bomFormat": 1}', b"\xff\xfe{"])
def test_sniff_rejects_other_input_without_raising(data: bytes) -> None:
    cand = Candidate(path="x.json", data=data)
    assert not SBOM.sniff(cand)
    assert not VEX.sniff(cand)


# --- SBOMs --------------------------------------------------------------------------------


def test_every_valid_sbom_parses() -> None:
    for rel in SBOM_VALID:
        doc = SBOM.parse(load(rel))
        assert (doc.format, doc.kind) == ("cyclonedx", DocumentKind.SBOM)
        assert doc.media_type == "application/vnd.cyclonedx+json"
        assert doc.sbom is not None
        assert doc.sbom.spec_version == doc.format_version
        assert doc.vex == []


def test_laravel_sbom() -> None:
    doc = SBOM.parse(load("cyclonedx/bom.1.4.json"))
    sbom = doc.sbom
    assert sbom is not None
    assert sbom.spec_version == "1.4"
    assert sbom.serial_number is None
    # No serialNumber: the document is identified by its content digest.
    assert doc.document_id.startswith("sha256:") and len(doc.document_id) == 71
    assert (sbom.subject_name, sbom.subject_version) == ("cyclonedx-php-composer-demo", "dev-master")
    assert sbom.subject_purl == "pkg:composer/cyclonedx/cyclonedx-php-composer-demo@dev-master"
    assert doc.subject == sbom.subject_purl
    assert sbom.created is None
    assert len(sbom.components) == 62
    first = sbom.components[0]
    assert (first.ref, first.name, first.version) == ("asm89/stack-cors-1.3.0.0", "stack-cors", "1.3.0")
    assert first.purl == "pkg:composer/asm89/stack-cors@1.3.0"
    assert (first.type, first.licenses) == ("library", ["MIT"])
    by_name = {c.name: c for c in sbom.components}
    assert by_name["framework"].purl == "pkg:composer/laravel/framework@v7.30.6"


def test_valid_bom_1_6_hashes_cpe_licenses_supplier() -> None:
    doc = SBOM.parse(load("cyclonedx/valid-bom-1.6.json"))
    sbom = doc.sbom
    assert sbom is not None
    assert sbom.serial_number == doc.document_id == "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79"
    assert sbom.created == datetime(2020, 4, 13, 20, 20, 39)
    assert doc.subject == "Acme Application@9.1.1"
    tomcat, mylib, framework = sbom.components
    assert tomcat.sha1 == "e6b1000b94e835ffd37f4c6dcbdad43f4b48a02a"
    assert tomcat.sha256 == "f498a8ff2dd007e29c2074f5e4b01a9a01775c3ff3aeaf6906ea503bc5791b7b"
    assert tomcat.licenses == ["Apache-2.0"]
    assert mylib.cpe == "cpe:/a:example:myapplication:1.0.0"
    assert mylib.supplier == "Example, Inc."
    assert mylib.licenses == ["EPL-2.0 OR GPL-2.0-with-classpath-exception"]
    assert framework.ref is None
    assert framework.purl == "pkg:maven/com.example/myframework@1.0.0?packaging=war"
    assert framework.licenses == ["Some random license"]
    assert framework.type == "framework"


def test_minikube_kbom_flattens_nested_components() -> None:
    sbom = SBOM.parse(load("cyclonedx/minikube-kbom.json")).sbom
    assert sbom is not None
    assert sbom.subject_purl == "pkg:k8s/k8s.io%2Fkubernetes@1.27.0"
    assert sbom.created == datetime(2023, 9, 29, 6, 25)
    assert len(sbom.components) == 18
    names = [c.name for c in sbom.components]
    # "minikube" (a platform) nests the control-plane applications and images, depth first.
    assert names.index("minikube") < names.index("k8s.io/apiserver")
    apiserver = next(c for c in sbom.components if c.name == "k8s.io/apiserver")
    assert apiserver.purl == "pkg:k8s/k8s.io%2Fapiserver@1.27.0"
    assert sum(c.type == "container" for c in sbom.components) == 6


def test_centos_trivy_sbom() -> None:
    doc = SBOM.parse(load("cyclonedx/centos-7-cyclonedx.json"))
    sbom = doc.sbom
    assert sbom is not None
    assert sbom.created == datetime(2022, 6, 14, 15, 8, 48)
    assert [c.purl for c in sbom.components] == [
        "pkg:rpm/centos/bash@4.2.46-31.el7?arch=x86_64&distro=centos-7.6.1810",
        "pkg:rpm/centos/openssl-libs@1.0.2k-16.el7?arch=x86_64&epoch=1&distro=centos-7.6.1810",
        None,
    ]
    assert [c.licenses for c in sbom.components] == [["GPLv3+"], ["OpenSSL+"], []]
    assert sbom.components[2].type == "operating-system"


def test_hbom_suppliers_and_saasbom_without_components() -> None:
    hbom = SBOM.parse(load("cyclonedx/pcie-sata-hbom.json")).sbom
    assert hbom is not None
    assert [c.supplier for c in hbom.components] == [
        "Samtec",
        "Molex",
        "3M",
        "Multicomp",
        "TE Connectivity",
        "Multicomp",
    ]
    assert {c.type for c in hbom.components} == {"device"}
    saas = SBOM.parse(load("cyclonedx/apigateway-saasbom.json"))
    assert saas.sbom is not None and saas.sbom.components == []
    assert saas.subject == "Acme Cloud Example@2022-1"


def test_cbom_with_crypto_assets() -> None:
    sbom = SBOM.parse(load("cyclonedx/cbom-with-dependencies.json")).sbom
    assert sbom is not None
    assert [(c.ref, c.type) for c in sbom.components] == [
        ("aes128gcm", "cryptographic-asset"),
        ("crypto-library", "library"),
        ("some-library", "library"),
    ]


@pytest.mark.parametrize("rel", ["cyclonedx/valid-signatures-1.6.json", "cyclonedx/valid-attestation-1.6.json"])
def test_jsf_signed_documents_import(rel: str) -> None:
    # jsonschema_rs asserts format "uri", so the JSF algorithm oneOf is unambiguous.
    doc = SBOM.parse(load(rel))
    assert doc.document_id == "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79"
    assert doc.format_version == "1.6"


def test_signed_bom_component() -> None:
    sbom = SBOM.parse(load("cyclonedx/valid-signatures-1.6.json")).sbom
    assert sbom is not None
    assert [(c.name, c.version, c.type) for c in sbom.components] == [("amce app", "1.0", "application")]


def test_bom_missing_refs_is_accepted() -> None:
    # The corpus files this under invalid/ ("dependencies reference bom-refs with no
    # component"), but every dependency ref resolves: 60e9f57b... is the alpine component,
    # 0f585d64... is metadata.component. Two components merely lack a bom-ref, which
    # CycloneDX allows; Trivy's own test imports the file successfully.
    doc = SBOM.parse(load("cyclonedx/invalid/bom-missing-refs.json"))
    sbom = doc.sbom
    assert sbom is not None
    assert [(c.ref, c.name) for c in sbom.components] == [
        (None, "musl"),
        ("60e9f57b-d4a6-4f71-ad14-0893ac609182", "alpine"),
        (None, "pear/log"),
    ]
    assert sbom.components[0].purl == "pkg:apk/alpine/musl@1.2.3-r0?distro=3.16.0"
    assert sbom.subject_name == "test-project"
    assert sbom.created == datetime(2022, 5, 28, 10, 20, 3, 795270)


# --- rejections -------------------------------------------------------------------------------


@pytest.mark.parametrize(("rel", "version"), list(SBOM_UNSUPPORTED.items()))
def test_unsupported_spec_versions(rel: str, version: str) -> None:
    with pytest.raises(UnsupportedFormatError) as err:
        SBOM.parse(load(rel))
    assert err.value.message == f"CycloneDX {version} is not supported; supported: 1.4, 1.5, 1.6"
    assert err.value.pointer == "/specVersion"


@pytest.mark.parametrize(
    ("rel", "pointer", "words"),
    [
        (
            "cyclonedx/invalid/invalid-component-ref-1.6.json",
            "/components/1/bom-ref",
            "shorter than 1 character",
        ),
        ("cyclonedx/invalid/invalid-dependency-1.6.json", "/dependencies/0", '"ref" is a required property'),
        (
            "cyclonedx/invalid/invalid-hash-sha256-1.6.json",
            "/components/0/hashes/2/content",
            '"foo" does not match',
        ),
        (
            "cyclonedx/invalid/invalid-license-declared-concluded-mix-1.6.json",
            "/components/0/licenses",
            "mixes an SPDX license expression with other entries",
        ),
        (
            "cyclonedx/invalid/invalid-missing-component-type-1.6.json",
            "/components/0",
            '"type" is a required property',
        ),
        (
            "cyclonedx/invalid/invalid-serialnumber-1.6.json",
            "/serialNumber",
            '"urn:uuid:3e671687-395b-41f5-a30f" does not match',
        ),
    ],
)
def test_spec_suite_invalid_documents(rel: str, pointer: str, words: str) -> None:
    with pytest.raises(SchemaError) as err:
        SBOM.parse(load(rel))
    assert err.value.pointer == pointer
    assert words in err.value.message


def test_dangling_dependency_ref_is_rejected() -> None:
    def dangle(doc: dict[str, Any]) -> None:
        doc["dependencies"][1]["dependsOn"].append("no-such-component")

    with pytest.raises(SchemaError) as err:
        SBOM.parse(edited("cyclonedx/invalid/bom-missing-refs.json", dangle))
    assert err.value.pointer == "/dependencies/1/dependsOn/1"
    assert "bom-ref 'no-such-component', which nothing in this BOM defines" in err.value.message


def test_duplicate_bom_ref_is_rejected() -> None:
    def duplicate(doc: dict[str, Any]) -> None:
        doc["components"][3]["bom-ref"] = doc["components"][0]["bom-ref"]

    with pytest.raises(SchemaError) as err:
        SBOM.parse(edited("cyclonedx/bom.1.4.json", duplicate))
    assert err.value.pointer == "/components/3/bom-ref"
    assert "bom-ref 'asm89/stack-cors-1.3.0.0' is defined twice (first at /components/0/bom-ref)" in (err.value.message)


def test_unparsable_component_purl_is_rejected() -> None:
    def bad_purl(doc: dict[str, Any]) -> None:
        doc["components"][1]["purl"] = "pkg:composer"

    with pytest.raises(SchemaError) as err:
        SBOM.parse(edited("cyclonedx/bom.1.4.json", bad_purl))
    assert err.value.pointer == "/components/1/purl"
    assert "invalid package URL 'pkg:composer'" in err.value.message


def test_missing_spec_version_is_rejected() -> None:
    with pytest.raises(SchemaError) as err:
        SBOM.parse(edited("cyclonedx/valid-bom-1.5.json", lambda d: d.pop("specVersion")))
    assert '"specVersion" is missing' in err.value.message


# --- VEX ---------------------------------------------------------------------------------------


def test_every_vex_sample_parses() -> None:
    for rel in VEX_VALID:
        doc = VEX.parse(load(rel))
        assert (doc.format, doc.kind) == ("cyclonedx-vex", DocumentKind.VEX)
        assert doc.sbom is None
        assert doc.vex


@pytest.mark.parametrize(
    ("rel", "status", "justification", "action"),
    [
        ("cyclonedx-vex/vex-affected.json", VexStatus.AFFECTED, None, "will_not_fix, update"),
        ("cyclonedx-vex/vex-fixed.json", VexStatus.FIXED, None, None),
        ("cyclonedx-vex/vex-not_affected.json", VexStatus.NOT_AFFECTED, "code_not_present", "will_not_fix"),
        ("cyclonedx-vex/vex-under_investigation.json", VexStatus.UNDER_INVESTIGATION, None, None),
    ],
)
def test_cisa_case_1_statuses(rel: str, status: VexStatus, justification: str | None, action: str | None) -> None:
    doc = VEX.parse(load(rel))
    (stmt,) = doc.vex
    assert stmt.vulnerability_id == "CVE-2021-44228"
    assert stmt.status is status
    assert stmt.justification == justification
    assert stmt.action_statement == action
    assert stmt.impact_statement is not None and stmt.impact_statement.startswith("This version of Product")
    # Local ref to metadata.component, which has no purl: the bom-ref is the product.
    assert stmt.product.startswith("product-")
    assert stmt.product_purl is None
    assert stmt.timestamp == datetime(2022, 3, 3)


def test_exploitable_without_response_uses_detail_as_action() -> None:
    def no_response(doc: dict[str, Any]) -> None:
        del doc["vulnerabilities"][0]["analysis"]["response"]

    (stmt,) = VEX.parse(edited("cyclonedx-vex/vex-affected.json", no_response)).vex
    assert stmt.status is VexStatus.AFFECTED
    assert stmt.action_statement == stmt.impact_statement
    assert stmt.action_statement is not None and "advised to upgrade" in stmt.action_statement


def test_cisa_case_8_statements() -> None:
    doc = VEX.parse(load("cyclonedx-vex/CISA-Case-8/vex.json"))
    abc = "urn:cdx:cbb2cd68-2857-43b8-a10b-e8c03d277d18/1#product-ABC"
    jkl = "urn:cdx:e4c3eedc-4978-470c-ad02-6ffff63738ff/1#product-JKL"
    assert [(s.vulnerability_id, s.product, s.status) for s in doc.vex] == [
        ("CVE-2021-44228", abc, VexStatus.AFFECTED),
        ("CVE-2021-44228", jkl, VexStatus.AFFECTED),
        ("CVE-2021-44228", abc, VexStatus.NOT_AFFECTED),
        ("CVE-2021-44228", jkl, VexStatus.NOT_AFFECTED),
        ("CVE-2021-44228", jkl, VexStatus.FIXED),
        ("CVE-2021-45105", abc, VexStatus.AFFECTED),
        ("CVE-2021-45105", jkl, VexStatus.AFFECTED),
        ("CVE-2021-45105", abc, VexStatus.NOT_AFFECTED),
        ("CVE-2021-45105", jkl, VexStatus.NOT_AFFECTED),
        ("CVE-2021-45105", jkl, VexStatus.NOT_AFFECTED),
        ("CVE-2021-45105", jkl, VexStatus.FIXED),
    ]
    assert {s.justification for s in doc.vex if s.status is VexStatus.NOT_AFFECTED} == {"code_not_present"}
    # BOM-Link fragments here are plain bom-refs, not purls.
    assert {s.product_purl for s in doc.vex} == {None}
    assert doc.subject == abc


def test_bom_link_with_purl_fragment_gives_product_purl() -> None:
    doc = VEX.parse(load("cyclonedx-vex/bom-examples-VEX/vex.json"))
    (stmt,) = doc.vex
    assert stmt.product == (
        "urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1#"
        "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0?type=jar"
    )
    assert stmt.product_purl == "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0?type=jar"
    assert stmt.vulnerability_id == "CVE-2020-25649"
    assert stmt.aliases == ["SNYK-JAVA-COMFASTERXMLJACKSONCORE-1048302"]
    assert (stmt.status, stmt.justification) == (VexStatus.NOT_AFFECTED, "code_not_reachable")
    assert stmt.action_statement == "will_not_fix, update"
    assert stmt.timestamp == datetime(2021, 10, 26)  # vulnerability "updated"


def test_trivy_cyclonedx_vex() -> None:
    doc = VEX.parse(load("cyclonedx-vex/trivy-cyclonedx-vex.json"))
    assert [(s.vulnerability_id, s.status, s.justification) for s in doc.vex] == [
        ("CVE-2021-44228", VexStatus.NOT_AFFECTED, "code_not_reachable"),
        ("CVE-2022-27943", VexStatus.NOT_AFFECTED, None),  # no justification: CycloneDX allows it
    ]
    assert [s.product_purl for s in doc.vex] == [
        "pkg:maven/org.springframework.boot/spring-boot@2.6.0",
        "pkg:deb/ubuntu/libstdc%2B%2B6@12.3.0-1ubuntu1~22.04?arch=amd64&distro=ubuntu-22.04",
    ]
    assert doc.format_version == "1.5"
    assert doc.document_id.startswith("sha256:")


def test_local_ref_resolves_to_component_purl() -> None:
    doc = VEX.parse(load("cyclonedx-vex/valid-vulnerability-1.6.json"))
    (stmt,) = doc.vex
    assert stmt.vulnerability_id == "SNYK-JAVA-COMFASTERXMLJACKSONCORE-32111"
    assert stmt.aliases == ["CVE-2018-7489"]
    assert stmt.product == stmt.product_purl == "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.4"
    assert (
        stmt.impact_statement
        == "An optional explanation of why the application is not affected by the vulnerable component."
    )
    assert stmt.timestamp == datetime(2022, 2, 1)  # analysis.lastUpdated wins


def test_ripple20_nineteen_not_affected() -> None:
    doc = VEX.parse(load("cyclonedx-vex/vex-usecase11-ripple20.json"))
    assert len(doc.vex) == 19
    assert {(s.product, s.status, s.justification) for s in doc.vex} == {
        ("acme-product", VexStatus.NOT_AFFECTED, "code_not_reachable")
    }
    assert doc.vex[0].vulnerability_id == "CVE-2020-11896"
    assert doc.subject == "Acme Product@2.2.0"


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("false_positive", VexStatus.NOT_AFFECTED),
        ("resolved_with_pedigree", VexStatus.FIXED),
        ("in_triage", VexStatus.UNDER_INVESTIGATION),
        ("exploitable", VexStatus.AFFECTED),
    ],
)
def test_analysis_state_mapping(state: str, status: VexStatus) -> None:
    def set_state(doc: dict[str, Any]) -> None:
        doc["vulnerabilities"][0]["analysis"]["state"] = state

    (stmt,) = VEX.parse(edited("cyclonedx-vex/vex-fixed.json", set_state)).vex
    assert stmt.status is status


def test_without_analysis_the_version_statuses_decide() -> None:
    def no_analysis(doc: dict[str, Any]) -> None:
        del doc["vulnerabilities"][1]["analysis"]  # affects versions all "unaffected"
        del doc["vulnerabilities"][0]["analysis"]  # affects versions all "affected"

    doc = VEX.parse(edited("cyclonedx-vex/CISA-Case-8/vex.json", no_analysis))
    assert doc.vex[0].status is VexStatus.AFFECTED
    assert doc.vex[2].status is VexStatus.NOT_AFFECTED


def test_dangling_affects_ref_is_rejected() -> None:
    def dangle(doc: dict[str, Any]) -> None:
        doc["vulnerabilities"][0]["affects"][0]["ref"] = "product-XYZ"

    with pytest.raises(SchemaError) as err:
        VEX.parse(edited("cyclonedx-vex/vex-affected.json", dangle))
    assert err.value.pointer == "/vulnerabilities/0/affects/0/ref"
    assert "refers to bom-ref 'product-XYZ'" in err.value.message


def test_vulnerability_without_id_is_rejected() -> None:
    with pytest.raises(SchemaError) as err:
        VEX.parse(edited("cyclonedx-vex/vex-fixed.json", lambda d: d["vulnerabilities"][0].pop("id")))
    assert err.value.pointer == "/vulnerabilities/0"
    assert "vulnerability has no id" in err.value.message


def test_spec_1_3_reference_bom_is_rejected_as_unsupported() -> None:
    # The BOM that bom-examples-VEX/vex.json links to is spec 1.3: kept only as a reference.
    with pytest.raises(UnsupportedFormatError) as err:
        VEX.parse(load("cyclonedx-vex/bom-examples-VEX/bom.json"))
    assert "CycloneDX 1.3 is not supported" in err.value.message
