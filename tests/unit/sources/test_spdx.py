"""SPDX adapter: 2.3 and 2.2 JSON documents, UTF-16, SPDX 3 refusal, invalid samples."""

from __future__ import annotations

import codecs
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.sources import cyclonedx, openvex, spdx
from core.errors import SchemaError, UnsupportedFormatError
from core.records import DocumentKind
from core.sources import Candidate
from tests.unit.sources.fixture_docs import FixtureDocs

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "spdx"
_docs = FixtureDocs(FIXTURES)
load = _docs.load
edited = _docs.edited
SPDX = spdx.SPDX
OTHER_FORMATS = (openvex.OPENVEX, cyclonedx.CYCLONEDX_VEX, cyclonedx.CYCLONEDX)
TRIVY_2022 = (
    "invalid/spdx-trivy-vmware_log-intelligence-fluentd-sha256_"
    "086af034f561f343f633be9d9f9e95f65ae6c61b8ddb2c6755ef5bb25b40f53a.json"
)

VALID = {
    "01-MinimalSBOM.json": "2.3",
    "04-SBOMwSecurity.json": "2.3",
    "SPDXJSONExample-v2.3.spdx.json": "2.3",
    "elasticsearch.spdx.json": "2.3",
    "examplemaven-0.0.1-enriched.spdx.json": "2.3",
    "hello-source.spdx.json": "2.3",
    "sbom.spdx.json": "2.3",
    "syft-sbom-without-app-component.spdx.json": "2.3",
    "edge/appbomination.spdx.json": "2.2",
    "edge/ControlCharacters.spdx.json": "2.2",
    "edge/SPDXJSONExample-UTF-16.spdx.json": "2.2",
}


def component(doc_rel: str, ref: str) -> Any:
    parsed = SPDX.parse(load(doc_rel))
    assert parsed.sbom is not None
    return next(c for c in parsed.sbom.components if c.ref == ref)


# --- sniffing -------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", [*VALID, "edge/sbom.spdx3.json", TRIVY_2022])
def test_spdx_samples_are_sniffed_by_spdx_only(rel: str) -> None:
    cand = load(rel)
    assert SPDX.sniff(cand)
    assert not any(fmt.sniff(cand) for fmt in OTHER_FORMATS)


def test_object_without_spdx_fields_is_not_sniffed() -> None:
    cand = load("invalid/invalid_spdx.json")
    assert not SPDX.sniff(cand)
    assert not any(fmt.sniff(cand) for fmt in OTHER_FORMATS)
    with pytest.raises(SchemaError) as err:
        SPDX.parse(cand)
    assert '"spdxVersion" is missing' in err.value.message


@pytest.mark.parametrize("data", [b"", b"null", b"[]", b'{"@context": ["https://example.org/ctx"]}'])
def test_sniff_rejects_other_input_without_raising(data: bytes) -> None:
    assert not SPDX.sniff(Candidate(path="x.json", data=data))


# --- valid documents ------------------------------------------------------------------------


@pytest.mark.parametrize(("rel", "version"), list(VALID.items()))
def test_every_valid_sample_parses(rel: str, version: str) -> None:
    doc = SPDX.parse(load(rel))
    assert (doc.format, doc.kind, doc.media_type) == ("spdx", DocumentKind.SBOM, "application/spdx+json")
    assert doc.format_version == version
    assert doc.sbom is not None
    assert doc.sbom.spec_version == f"SPDX-{version}"
    assert doc.sbom.serial_number == doc.document_id
    assert doc.sbom.created is not None


def test_spec_example_2_3() -> None:
    doc = SPDX.parse(load("SPDXJSONExample-v2.3.spdx.json"))
    sbom = doc.sbom
    assert sbom is not None
    assert doc.document_id == "http://spdx.org/spdxdocs/spdx-example-444504E0-4F89-41D3-9A0C-0305E82C3301"
    assert sbom.created == datetime(2010, 1, 29, 18, 30, 22)
    # documentDescribes lists a file first; the subject is the first described package.
    assert (sbom.subject_name, sbom.subject_version, sbom.subject_purl) == ("glibc", "2.11.1", None)
    assert doc.subject == "glibc@2.11.1"
    assert [c.ref for c in sbom.components] == [
        "SPDXRef-Package",
        "SPDXRef-fromDoap-1",
        "SPDXRef-fromDoap-0",
        "SPDXRef-Saxon",
    ]
    glibc = sbom.components[0]
    assert glibc.sha1 == "85ed0817af83a24ad8da68c2b5094de69833983c"
    assert glibc.sha256 == "11b6d3ee554eedf79299905a98f9b9a04e498210b59f15094c916c91d150efcd"
    assert glibc.cpe == "cpe:2.3:a:pivotal_software:spring_framework:4.1.0:*:*:*:*:*:*:*"
    assert glibc.licenses == ["(LGPL-2.0-only OR LicenseRef-3)", "(LGPL-2.0-only AND LicenseRef-3)"]
    assert glibc.supplier == "Jane Doe"
    assert glibc.type == "source"
    jena = sbom.components[2]
    assert (jena.name, jena.version, jena.purl) == (
        "Jena",
        "3.12.0",
        "pkg:maven/org.apache.jena/apache-jena@3.12.0",
    )
    commons = sbom.components[1]
    assert commons.licenses == []  # NOASSERTION is not a licence


def test_minimal_and_security_sboms() -> None:
    minimal = SPDX.parse(load("01-MinimalSBOM.json"))
    assert minimal.subject == "pkg:github/spdx/tools-java@2235d5d7f7fe46ce1e0d54b7831c5681633b25cc"
    assert minimal.sbom is not None
    (tools_java,) = minimal.sbom.components
    assert tools_java.sha1 == "e01bcba3c55fa7f0c82d08d0cdce9061b21bf32f"
    assert tools_java.supplier == "SPDX"
    xlsx = component("04-SBOMwSecurity.json", "SPDXRef-xlsx")
    assert xlsx.purl == "pkg:maven/org.webjars.npm/xlsx@0.16.6"
    assert xlsx.cpe is None  # its SECURITY ref is an advisory, not a CPE
    assert xlsx.supplier == "Webjar"


def test_elasticsearch_vendor_sbom_underscore_category() -> None:
    doc = SPDX.parse(load("elasticsearch.spdx.json"))
    sbom = doc.sbom
    assert sbom is not None
    assert doc.document_id == "elasticsearch-8.9.1"
    assert sbom.subject_purl == "pkg:bitnami/elasticsearch@8.9.1?arch=arm64"
    assert sbom.created == datetime(2023, 8, 18, 20, 9, 40, 708000)
    es = sbom.components[0]
    assert es.cpe == "cpe:2.3:*:elastic:elasticsearch:8.9.1:*:*:*:*:*:*:*"
    assert es.licenses == ["Elastic-2.0"]
    assert len(sbom.components) == 6
    assert sbom.components[2].purl == "pkg:maven/co.elastic.apm/apm-agent@1.36.0"
    assert sbom.components[2].licenses == []  # NONE


def test_syft_sbom_mixed_categories_and_file_subject() -> None:
    doc = SPDX.parse(load("syft-sbom-without-app-component.spdx.json"))
    sbom = doc.sbom
    assert sbom is not None
    assert [c.purl for c in sbom.components] == [
        "pkg:maven/co.elastic.apm/apm-agent@1.36.0",  # PACKAGE_MANAGER
        "pkg:golang/github.com/buildpacks/lifecycle@v0.20.2",  # PACKAGE-MANAGER
        None,
    ]
    assert sbom.components[1].cpe == "cpe:2.3:a:buildpacks:lifecycle:v0.20.2:*:*:*:*:*:*:*"
    assert sbom.components[1].supplier is None  # NOASSERTION
    assert sbom.subject_name == "launcher"  # DESCRIBES relationship
    assert sbom.components[2].type == "file"
    assert sbom.components[2].sha256 == "716665ae98fb4b4675d5184f80884547597d47be1395d1049dc9e16035f32cc1"


def test_k8s_bom_and_maven_and_source_examples() -> None:
    k8s = SPDX.parse(load("sbom.spdx.json")).sbom
    assert k8s is not None
    assert [(c.name, c.version) for c in k8s.components] == [
        ("hello-server-src", "0.1.0"),
        ("hyper", "0.14"),
        ("tokio", "1.19.2"),
        ("pretty_env_logger", "0.4.0"),
    ]
    assert k8s.components[2].sha256 == "c51a52ed6686dd62c320f9b89299e9dfb46f730c7a48e635c19f21d116cb1439"
    assert k8s.components[3].licenses == ["MIT OR Apache-2.0"]
    maven = SPDX.parse(load("examplemaven-0.0.1-enriched.spdx.json"))
    assert maven.subject == "examplemaven@0.0.1"
    assert maven.sbom is not None and len(maven.sbom.components) == 6
    hello = SPDX.parse(load("hello-source.spdx.json"))
    assert hello.subject == "hello"
    assert hello.sbom is not None and hello.sbom.components[0].licenses == ["MIT"]


def test_spdx_2_2_appbomination() -> None:
    doc = SPDX.parse(load("edge/appbomination.spdx.json"))
    sbom = doc.sbom
    assert sbom is not None
    assert doc.subject == "App-BOM-ination@1.0"
    assert len(sbom.components) == 7
    junit = next(c for c in sbom.components if c.name == "junit")
    assert (junit.purl, junit.sha1) == (
        "pkg:maven/junit/junit@4.12",
        "4e6be5af63e3373b4f0cbc4c151c13e059151e00",
    )
    assert junit.licenses == ["EPL-1.0"]
    app = next(c for c in sbom.components if c.ref == "SPDXRef-1")
    assert app.licenses == ["(LicenseRef-1 AND Apache-2.0)", "Apache-2.0"]
    assert app.supplier == "ACT Project"


def test_spdx_2_2_control_characters() -> None:
    doc = SPDX.parse(load("edge/ControlCharacters.spdx.json"))
    assert doc.sbom is not None
    assert doc.subject == "go1.16.4.linux-amd64@1.16.4"
    dist = doc.sbom.components[0]
    assert dist.sha256 == "7154e88f5a8047aad4b80ebace58a059e36e7e2e4eb3b383127a28c711b4ff59"
    assert dist.licenses == ["LicenseRef-Golang-BSD-plus-Patents"]


def test_utf16_with_bom_imports() -> None:
    cand = load("edge/SPDXJSONExample-UTF-16.spdx.json")
    assert cand.data.startswith(codecs.BOM_UTF16_LE)
    doc = SPDX.parse(cand)
    assert doc.sbom is not None
    assert doc.format_version == "2.2"
    assert doc.subject == "glibc@2.11.1"  # from the DESCRIBES relationships as well
    jena = next(c for c in doc.sbom.components if c.name == "Jena")
    assert jena.purl == "pkg:maven/org.apache.jena/apache-jena@3.12.0"  # PACKAGE_MANAGER


# --- refused and invalid documents ----------------------------------------------------------


def test_spdx_3_json_ld_is_recognised_and_refused() -> None:
    with pytest.raises(UnsupportedFormatError) as err:
        SPDX.parse(load("edge/sbom.spdx3.json"))
    assert err.value.message == "SPDX 3.0.1 (JSON-LD) is not supported; supported: SPDX-2.2, SPDX-2.3"
    assert err.value.pointer == "/@context"


def test_other_spdx_2_versions_are_unsupported() -> None:
    def old(doc: dict[str, Any]) -> None:
        doc["spdxVersion"] = "SPDX-2.1"

    with pytest.raises(UnsupportedFormatError) as err:
        SPDX.parse(edited("01-MinimalSBOM.json", old))
    assert err.value.message == "SPDX 2.1 is not supported; supported: SPDX-2.2, SPDX-2.3"
    assert err.value.pointer == "/spdxVersion"


def test_real_trivy_2022_output_names_the_first_missing_field() -> None:
    with pytest.raises(SchemaError) as err:
        SPDX.parse(load(TRIVY_2022))
    # The file lists "files" before "packages": 91 files lack checksums, 514 packages lack
    # downloadLocation.
    assert err.value.pointer == "/files/0"
    assert err.value.message == (
        "files[0] ('usr/local/bundle/specifications/http_parser.rb-0.6.0.gemspec') is missing the "
        'required field "checksums" (and 604 more missing required fields)'
    )


def test_missing_package_download_location() -> None:
    with pytest.raises(SchemaError) as err:
        SPDX.parse(edited("04-SBOMwSecurity.json", lambda d: d["packages"][1].pop("downloadLocation")))
    assert err.value.pointer == "/packages/1"
    assert err.value.message == "packages[1] ('xlsx') is missing the required field \"downloadLocation\""


def test_schema_violation_is_reported_with_pointer() -> None:
    def bad_relationship(doc: dict[str, Any]) -> None:
        doc["relationships"][0]["relationshipType"] = "DESCRIBE"

    with pytest.raises(SchemaError) as err:
        SPDX.parse(edited("01-MinimalSBOM.json", bad_relationship))
    assert err.value.pointer == "/relationships/0/relationshipType"
    assert '"DESCRIBE" is not one of' in err.value.message


def test_duplicate_spdxid_is_rejected() -> None:
    def duplicate(doc: dict[str, Any]) -> None:
        doc["packages"][1]["SPDXID"] = "SPDXRef-Package"

    with pytest.raises(SchemaError) as err:
        SPDX.parse(edited("04-SBOMwSecurity.json", duplicate))
    assert err.value.pointer == "/packages/1/SPDXID"
    assert "SPDXID 'SPDXRef-Package' is used twice (first at /packages/0)" in err.value.message


def test_relationship_to_unknown_element_is_rejected() -> None:
    def dangle(doc: dict[str, Any]) -> None:
        doc["relationships"][0]["relatedSpdxElement"] = "SPDXRef-Missing"

    with pytest.raises(SchemaError) as err:
        SPDX.parse(edited("01-MinimalSBOM.json", dangle))
    assert err.value.pointer == "/relationships/0/relatedSpdxElement"
    assert "relationship DESCRIBES refers to SPDXID 'SPDXRef-Missing'" in err.value.message


def test_external_document_and_noassertion_references_are_allowed() -> None:
    def external(doc: dict[str, Any]) -> None:
        doc["relationships"].append(
            {
                "spdxElementId": "SPDXRef-Package",
                "relationshipType": "OTHER",
                "relatedSpdxElement": "NOASSERTION",
            }
        )

    doc = SPDX.parse(edited("01-MinimalSBOM.json", external))
    assert doc.sbom is not None and len(doc.sbom.components) == 1


def test_document_describes_unknown_element_is_rejected() -> None:
    def dangle(doc: dict[str, Any]) -> None:
        doc["documentDescribes"] = ["SPDXRef-nope"]

    with pytest.raises(SchemaError) as err:
        SPDX.parse(edited("hello-source.spdx.json", dangle))
    assert err.value.pointer == "/documentDescribes/0"


def test_unparsable_purl_external_ref_is_rejected() -> None:
    def bad_purl(doc: dict[str, Any]) -> None:
        doc["packages"][1]["externalRefs"][0]["referenceLocator"] = "pkg:maven"

    with pytest.raises(SchemaError) as err:
        SPDX.parse(edited("04-SBOMwSecurity.json", bad_purl))
    assert err.value.pointer == "/packages/1/externalRefs/0/referenceLocator"
    assert "invalid package URL 'pkg:maven'" in err.value.message
