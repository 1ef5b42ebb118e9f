"""DSSE envelopes, in-toto Statements and Sigstore bundles: structure checked, stored unverified."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.sources import dsse, epss, intoto, kev, policy, sigstore_bundle
from adapters.sources._attest import Where, decode_base64
from core.errors import SchemaError, UnsupportedFormatError
from core.records import AttestationSubject, DocumentKind, ParsedDocument
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

V01 = "https://in-toto.io/Statement/v0.1"
V1 = "https://in-toto.io/Statement/v1"
INTOTO = "application/vnd.in-toto+json"
BUNDLE_01 = "application/vnd.dev.sigstore.bundle+json;version=0.1"
BUNDLE_03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_03_ALT = "application/vnd.dev.sigstore.bundle+json;version=0.3"
A_TXT_SHA256 = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"


def from_json(value: Any, name: str = "synthetic.json") -> Candidate:
    return Candidate(path=name, data=orjson.dumps(value))


def raw(rel: str) -> Any:
    return orjson.loads((FIXTURES / rel).read_bytes())


def subjects(doc: ParsedDocument, index: int = 0) -> list[tuple[str, str, str]]:
    return [(s.name, s.digest_algorithm, s.digest) for s in doc.attestations[index].subjects]


def payload_sha256(envelope: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(base64.b64decode(envelope["payload"])).hexdigest()


# --- detection ------------------------------------------------------------------------------

SNIFFED = {
    "dsse/bazel-trusted-dsseEnvelope.build.slsa": "dsse",
    "dsse/binary-linux-amd64-multi-subject-first.intoto.jsonl": "dsse",
    "dsse/binary-linux-amd64-workflow_dispatch.intoto.jsonl": "dsse",
    "dsse/centos-7-cyclonedx.intoto.jsonl": "dsse",
    "dsse/clone-dsse.776a00e2.link": "dsse",
    "dsse/cosign-attestation.json": "dsse",
    "dsse/demo.dsse.layout": "dsse",
    "dsse/gke-gce-pre.bcid-vsa.jsonl": "dsse",
    "dsse/invalid/binary-linux-amd64-expired-cert.intoto.jsonl": "dsse",
    "dsse/invalid/binary-linux-amd64-untrusted-builder.intoto.jsonl": "dsse",
    "dsse/invalid/gcloud-container-invalid-payload-encoding.json": None,
    "dsse/edge/v1.0-gcloud-container-github-v1.0-valid.json": None,
    "intoto-statement/statement.json": "intoto-statement",
    "intoto-statement/npm-registry/npm-attestations.intoto.sigstore": "sigstore-bundle",
    "intoto-statement/invalid/npm-att-publish-nosubjects.intoto.sigstore": "sigstore-bundle",
    "intoto-statement/invalid/npm-stmt-mismatch-prov-type.intoto.sigstore": "sigstore-bundle",
    "slsa-provenance/statement-provenance-sigstorejs1.3.0.json": "intoto-statement",
    "slsa-provenance/slsa1-provenance.json": "intoto-statement",
    "slsa-provenance/predicate-only/slsa_predicate_v0_2.json": None,
    "slsa-provenance/predicate-only/slsa_predicate_v1_0.json": None,
    "slsa-provenance/partial/gcb-triggered-build-v1-example.json": None,
    "slsa-provenance/partial/gha-workflow-v1-rc1-example.json": None,
    **{
        f"sigstore-bundle/{name}": "sigstore-bundle"
        for name in (
            "Python-3.12.5.tgz.sigstore",
            "a.dsse.staging-rekor-v2.txt.sigstore.json",
            "bundle_v3.txt.sigstore",
            "bundle_v3_alt.txt.sigstore",
            "dsse-2sigs.sigstore.json",
            "npm-publish-bundle.json",
            "othername.sigstore.json",
            "public-key-validity.sigstore.json",
            "sigstore.js@2.0.0-provenance.sigstore.json",
            "trivy-cyclonedx-attestation.sigstore.json",
            "conformance/bundle-invalid-base64-signature_fail/bundle.sigstore.json",
            "conformance/bundle-malformed-json_fail/bundle.sigstore.json",
            "conformance/bundle-unknown-version_fail/bundle.sigstore.json",
            "conformance/dsse-invalid-sig_fail/bundle.sigstore.json",
            "conformance/happy-path-intoto-in-dsse-v3/bundle.sigstore.json",
            "conformance/happy-path-v0.3/bundle.sigstore.json",
            "invalid/bundle_cve_2022_36056.txt.sigstore",
            "invalid/bundle_invalid_version.txt.sigstore",
            "invalid/bundle_no_cert_v1.txt.sigstore",
            "invalid/bundle_no_checkpoint.txt.sigstore",
            "invalid/bundle_no_log_entry.txt.sigstore",
            "invalid/invalid-dsse-sig.intoto.sigstore",
            "invalid/mismatch-tlog.intoto.sigstore",
        )
    },
}


def test_every_attestation_fixture_is_listed() -> None:
    on_disk = {
        str(p.relative_to(FIXTURES))
        for d in ("dsse", "intoto-statement", "slsa-provenance", "sigstore-bundle")
        for p in (FIXTURES / d).rglob("*")
        if p.is_file() and p.name != "SOURCES.md"
    }
    assert on_disk == set(SNIFFED)


@pytest.mark.parametrize(("rel", "expected"), sorted(SNIFFED.items()))
def test_sniffed_by_exactly_the_expected_format(rel: str, expected: str | None) -> None:
    claimed = [f.name for f in MINE if f.sniff(load(rel))]
    assert claimed == ([expected] if expected else [])


# --- DSSE -------------------------------------------------------------------------------------

DSSE_VALID = [
    (
        "dsse/bazel-trusted-dsseEnvelope.build.slsa",
        V01,
        "https://slsa.dev/provenance/v1",
        [("fib", "sha256", "caaadba2846905ac477c777e96a636e1c2e067fdf6fed90ec9eeca4df18d6ed9")],
        [],
    ),
    (
        "dsse/binary-linux-amd64-multi-subject-first.intoto.jsonl",
        V01,
        "https://slsa.dev/provenance/v0.2",
        [
            ("artifact1", "sha256", "482ce8c8f7e867da3a3c05a9aee637703e17470ed1cf882a9e5b405e8f82619d"),
            ("artifact2", "sha256", "89cfc6954e88b2f92a7c2879d9eb085c42f3c7065d012a5066f450dbe59b2c00"),
            ("artifact3", "sha256", "7a5d21a6adac945561d859bd1decfc37b2408788cf3206df3519e281afd31b6e"),
        ],
        [],
    ),
    (
        "dsse/binary-linux-amd64-workflow_dispatch.intoto.jsonl",
        V01,
        "https://slsa.dev/provenance/v0.2",
        [
            (
                "gha_generic-binary-linux-amd64-workflow_dispatch",
                "sha256",
                "2892146b063a94cb4a4318c0e98d38af12dcf2b1e29237486b58463b59607bbd",
            )
        ],
        [],
    ),
    (
        "dsse/centos-7-cyclonedx.intoto.jsonl",
        V01,
        "https://cyclonedx.org/bom",
        [
            (
                "index.docker.io/library/centos",
                "sha256",
                "be65f488b7764ad3638f236b7b515b3678369a5124c47b8d32916d6487418ea4",
            )
        ],
        [],
    ),
    (
        "dsse/cosign-attestation.json",
        V01,
        "cosign.sigstore.dev/attestation/v1",
        [
            (
                "ghcr.io/aquasecurity/trivy-test-images",
                "sha256",
                "72c42ed48c3a2db31b7dafe17d275b634664a708d901ec9fd57b1529280f01fb",
            )
        ],
        [],
    ),
    (
        "dsse/gke-gce-pre.bcid-vsa.jsonl",
        V1,
        "https://slsa.dev/verification_summary/v1",
        [("_", "gce_image_id", "8970095005306000053")],
        ["keystore://76574:prod:vsa_signing_public_key"],
    ),
    (
        "dsse/clone-dsse.776a00e2.link",
        "link",
        None,
        [],
        ["776a00e29f3559e0141b3b096f696abc6cfb0c657ab40f441132b345b08453f5"],
    ),
    (
        "dsse/demo.dsse.layout",
        "layout",
        None,
        [],
        ["70ca5750c2eda80b18f41f4ec5f92146789b5d68dd09577be422a0159bd13680"],
    ),
]


@pytest.mark.parametrize(("rel", "stype", "ptype", "subs", "keyids"), DSSE_VALID)
def test_dsse_envelopes_are_recorded(
    rel: str, stype: str, ptype: str | None, subs: list[tuple[str, str, str]], keyids: list[str]
) -> None:
    doc = dsse.DSSE.parse(load(rel))
    assert (doc.format, doc.kind, doc.media_type) == ("dsse", DocumentKind.ATTESTATION, dsse.DSSE.media_type)
    assert doc.format_version == "v1"
    assert len(doc.attestations) == 1
    att = doc.attestations[0]
    assert (att.envelope_kind, att.entry_index, att.media_type) == ("dsse", 0, None)
    assert (att.payload_type, att.statement_type, att.predicate_type) == (INTOTO, stype, ptype)
    assert att.signature_count == 1
    assert att.keyids == keyids  # cosign and slsa-github-generator write keyid "" (no hint): dropped
    assert subjects(doc) == subs
    assert doc.document_id == payload_sha256(raw(rel))
    assert doc.subject == (subs[0][0] if subs else {"link": "link:clone-dsse", "layout": "layout"}[stype])


def test_dsse_tolerates_the_nonstandard_cert_field_on_signatures() -> None:
    """slsa-github-generator puts the Fulcio PEM in signatures[].cert; the envelope is still DSSE."""
    rel = "dsse/binary-linux-amd64-workflow_dispatch.intoto.jsonl"
    assert raw(rel)["signatures"][0]["cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert dsse.DSSE.parse(load(rel)).attestations[0].signature_count == 1


@pytest.mark.parametrize(
    ("rel", "digest"),
    [
        (
            "dsse/invalid/binary-linux-amd64-expired-cert.intoto.jsonl",
            "4bdb495d05cbb9eb0722ec4fcfef8a02d5ca7a2fca0b0fed718447f89d39a589",
        ),
        (
            "dsse/invalid/binary-linux-amd64-untrusted-builder.intoto.jsonl",
            "b01c4f22b92c57fe1c94ba99b568e8d704bbf544882784b5b8c765fc32e627c4",
        ),
    ],
)
def test_dsse_verification_and_policy_failures_import_unverified(rel: str, digest: str) -> None:
    """An expired signing certificate and an untrusted builder are verification/policy failures.

    The envelopes are structurally valid DSSE, and import stores attestations without verifying
    them (verification is a later step), so they must import; the verifier will refuse them.
    """
    doc = dsse.DSSE.parse(load(rel))
    assert subjects(doc) == [("binary-linux-amd64", "sha256", digest)]
    assert doc.attestations[0].predicate_type == "https://slsa.dev/provenance/v0.2"


def test_gcloud_occurrences_are_not_envelopes() -> None:
    """Container Analysis occurrences wrap envelopes; the wrapper itself fails the envelope schema."""
    for rel in (
        "dsse/edge/v1.0-gcloud-container-github-v1.0-valid.json",
        "dsse/invalid/gcloud-container-invalid-payload-encoding.json",
    ):
        with pytest.raises(SchemaError, match="fails the DSSE envelope schema") as err:
            dsse.DSSE.parse(load(rel))
        assert err.value.pointer == ""


def test_gcloud_valid_occurrence_wraps_an_envelope_with_url_safe_signature() -> None:
    occurrences = raw("dsse/edge/v1.0-gcloud-container-github-v1.0-valid.json")["provenance_summary"]["provenance"]
    first = occurrences[0]["envelope"]
    assert "_" in first["signatures"][0]["sig"]  # URL-safe alphabet, which DSSE allows
    att = dsse.DSSE.parse(from_json(first)).attestations[0]
    assert (att.statement_type, att.predicate_type, att.signature_count) == (
        V1,
        "https://slsa.dev/provenance/v1",
        1,
    )
    assert att.keyids == [
        "projects/verified-builder/locations/global/keyRings/attestor/cryptoKeys/google-hosted-worker/cryptoKeyVersions/1"
    ]
    digest = "7e9b6e7ba2842c91cf49f3e214d04a7a496f8214356f41d81a6e6dcad11f11e3"
    assert [(s.digest_algorithm, s.digest) for s in att.subjects] == [("sha256", digest)] * 2


def test_gcloud_valid_occurrence_second_envelope_has_a_corrupted_statement() -> None:
    """The fixture's second envelope decodes to JSON ending in '}}|': checked, it is refused."""
    second = raw("dsse/edge/v1.0-gcloud-container-github-v1.0-valid.json")["provenance_summary"]["provenance"][1]
    assert base64.urlsafe_b64decode(second["envelope"]["payload"]).endswith(b"}}|")
    with pytest.raises(SchemaError, match="the in-toto payload is not JSON") as err:
        dsse.DSSE.parse(from_json(second["envelope"]))
    assert err.value.pointer == "/payload"


def test_gcloud_invalid_occurrence_has_a_badly_encoded_payload() -> None:
    occurrence = raw("dsse/invalid/gcloud-container-invalid-payload-encoding.json")
    envelope = occurrence["provenance_summary"]["provenance"][0]["envelope"]
    assert envelope["payload"] == "invalid payload encoding"
    with pytest.raises(SchemaError, match="the DSSE payload is not valid base64") as err:
        dsse.DSSE.parse(from_json(envelope))
    assert err.value.pointer == "/payload"


def _cosign() -> dict[str, Any]:
    value: dict[str, Any] = raw("dsse/cosign-attestation.json")
    return value


def test_dsse_json_lines_with_several_envelopes() -> None:
    lines = (FIXTURES / "dsse/cosign-attestation.json").read_bytes().strip() + b"\n"
    lines += (FIXTURES / "dsse/centos-7-cyclonedx.intoto.jsonl").read_bytes()
    candidate = Candidate(path="two.intoto.jsonl", data=lines)
    assert candidate.is_jsonl and dsse.DSSE.sniff(candidate)
    doc = dsse.DSSE.parse(candidate)
    assert [a.entry_index for a in doc.attestations] == [0, 1]
    assert [a.predicate_type for a in doc.attestations] == [
        "cosign.sigstore.dev/attestation/v1",
        "https://cyclonedx.org/bom",
    ]
    assert doc.document_id == payload_sha256(_cosign())


def test_dsse_json_lines_error_points_at_the_entry() -> None:
    broken = _cosign() | {"payload": "%%%"}
    data = orjson.dumps(_cosign()) + b"\n" + orjson.dumps(broken) + b"\n"
    with pytest.raises(SchemaError, match="not valid base64") as err:
        dsse.DSSE.parse(Candidate(path="x.jsonl", data=data))
    assert err.value.pointer == "/1/payload"


def test_dsse_accepts_url_safe_unpadded_payload() -> None:
    env = _cosign()
    payload = base64.b64decode(env["payload"])
    env["payload"] = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    doc = dsse.DSSE.parse(from_json(env))
    assert doc.document_id == "sha256:" + hashlib.sha256(payload).hexdigest()


@pytest.mark.parametrize(
    ("change", "message", "pointer"),
    [
        ({"extra": 1}, "Additional properties are not allowed", ""),
        ({"signatures": []}, "fails the DSSE envelope schema", "/signatures"),
        ({"signatures": [{"keyid": "k"}]}, '"sig" is a required property', "/signatures/0"),
        ({"signatures": [{"sig": "not base64!"}]}, "the signature is not valid base64", "/signatures/0/sig"),
        ({"payloadType": None}, '"payloadType" is a required property', ""),
        ({"payloadType": 7}, "is not of type", "/payloadType"),
    ],
)
def test_dsse_envelope_is_otherwise_strict(change: dict[str, Any], message: str, pointer: str) -> None:
    env = {k: v for k, v in (_cosign() | change).items() if v is not None}
    with pytest.raises(SchemaError, match=message) as err:
        dsse.DSSE.parse(from_json(env))
    assert err.value.pointer == pointer


def _with_payload(statement: Any) -> dict[str, Any]:
    return _cosign() | {"payload": base64.b64encode(orjson.dumps(statement)).decode()}


def test_dsse_in_toto_payload_must_be_a_statement() -> None:
    with pytest.raises(UnsupportedFormatError, match="'bogus' is not a supported in-toto Statement type") as err:
        dsse.DSSE.parse(from_json(_with_payload({"_type": "bogus"})))
    assert err.value.pointer == "/payload"
    with pytest.raises(SchemaError, match="the in-toto payload is not JSON"):
        dsse.DSSE.parse(from_json(_cosign() | {"payload": base64.b64encode(b"not json").decode()}))


def test_dsse_other_payload_types_are_stored_as_they_are() -> None:
    env = _cosign() | {"payloadType": "text/plain", "payload": base64.b64encode(b"hello").decode()}
    att = dsse.DSSE.parse(from_json(env)).attestations[0]
    assert (att.payload_type, att.statement_type, att.subjects) == ("text/plain", None, [])


# --- in-toto Statements ----------------------------------------------------------------------


def test_statement_v1_with_slsa_v1_provenance() -> None:
    cand = load("intoto-statement/statement.json")
    doc = intoto.INTOTO_STATEMENT.parse(cand)
    assert (doc.format, doc.media_type, doc.format_version) == ("intoto-statement", INTOTO, "v1")
    assert doc.document_id == "sha256:" + hashlib.sha256(cand.data).hexdigest()
    assert doc.subject == "a.txt"
    att = doc.attestations[0]
    assert (att.envelope_kind, att.statement_type, att.predicate_type) == (
        "intoto-statement",
        V1,
        "https://slsa.dev/provenance/v1",
    )
    assert (att.payload_type, att.signature_count, att.keyids) == (None, 0, [])
    assert subjects(doc) == [("a.txt", "sha256", A_TXT_SHA256)]


def test_statement_v01_with_sha512_subject() -> None:
    doc = intoto.INTOTO_STATEMENT.parse(load("slsa-provenance/statement-provenance-sigstorejs1.3.0.json"))
    assert doc.format_version == "v0.1"
    assert doc.attestations[0].predicate_type == "https://slsa.dev/provenance/v0.2"
    assert subjects(doc) == [
        (
            "pkg:npm/sigstore@1.3.0",
            "sha512",
            "76176ffa33808b54602c7c35de5c6e9a4deb96066dba6533f50ac234f4f1f4c6"
            "b3527515dc17c06fbe2860030f410eee69ea20079bd3a2c6f3dcf3b329b10751",
        )
    ]


def test_slsa_v1_predicate_without_run_details_is_rejected() -> None:
    """slsa-github-generator's test file labels a predicate SLSA v1.0 but omits runDetails.

    SLSA v1 makes buildDefinition and runDetails both required: without runDetails there is no
    builder identity, so the provenance cannot be evaluated. Rejecting it at import says so
    plainly instead of storing provenance a later policy check could only misread.
    """
    with pytest.raises(SchemaError, match="requires buildDefinition and runDetails; runDetails is missing") as err:
        intoto.INTOTO_STATEMENT.parse(load("slsa-provenance/slsa1-provenance.json"))
    assert err.value.pointer == "/predicate"


def _statement(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = raw("intoto-statement/statement.json") | changes
    return value


@pytest.mark.parametrize(
    ("statement", "message", "pointer"),
    [
        (_statement(subject=[]), "the Statement has no subjects", "/subject"),
        (_statement(subject="a.txt"), "subject must be a list", "/subject"),
        (
            _statement(subject=[{"digest": {"sha256": A_TXT_SHA256}}]),
            "the subject has no name",
            "/subject/0/name",
        ),
        (_statement(subject=[{"name": "a", "digest": {}}]), "subject 'a' has no digest", "/subject/0/digest"),
        (
            _statement(subject=[{"name": "a", "digest": {"sha256": A_TXT_SHA256.upper()}}]),
            "is not lowercase hex",
            "/subject/0/digest/sha256",
        ),
        (
            _statement(subject=[{"name": "a", "digest": {"sha256": A_TXT_SHA256[:40]}}]),
            "the sha256 digest has 40 hex digits, expected 64",
            "/subject/0/digest/sha256",
        ),
        (_statement(predicateType=""), "the Statement has no predicateType", "/predicateType"),
        (_statement(predicate=[1]), "predicate must be a JSON object", "/predicate"),
    ],
)
def test_statement_structure_errors(statement: dict[str, Any], message: str, pointer: str) -> None:
    with pytest.raises(SchemaError, match=message) as err:
        intoto.INTOTO_STATEMENT.parse(from_json(statement))
    assert err.value.pointer == pointer


def test_unknown_statement_type_is_claimed_and_refused_by_name() -> None:
    cand = from_json(_statement(_type="https://in-toto.io/StatementA/v0.1"))
    assert intoto.INTOTO_STATEMENT.sniff(cand)
    with pytest.raises(UnsupportedFormatError, match=re.escape("StatementA/v0.1")) as err:
        intoto.INTOTO_STATEMENT.parse(cand)
    assert err.value.pointer == "/_type"


def test_custom_digest_algorithms_are_kept_verbatim() -> None:
    statement = _statement(subject=[{"name": "img", "digest": {"sha256": A_TXT_SHA256, "imageId": "x-1"}}])
    doc = intoto.INTOTO_STATEMENT.parse(from_json(statement))
    assert doc.attestations[0].subjects == [
        AttestationSubject("img", "sha256", A_TXT_SHA256),
        AttestationSubject("img", "imageId", "x-1"),
    ]


# --- Sigstore bundles ------------------------------------------------------------------------

BUNDLES = [
    ("sigstore-bundle/Python-3.12.5.tgz.sigstore", BUNDLE_01, "0.1"),
    ("sigstore-bundle/a.dsse.staging-rekor-v2.txt.sigstore.json", BUNDLE_03, "0.3"),
    ("sigstore-bundle/bundle_v3.txt.sigstore", BUNDLE_03, "0.3"),
    ("sigstore-bundle/bundle_v3_alt.txt.sigstore", BUNDLE_03_ALT, "0.3"),
    ("sigstore-bundle/dsse-2sigs.sigstore.json", BUNDLE_01, "0.1"),
    ("sigstore-bundle/npm-publish-bundle.json", BUNDLE_01, "0.1"),
    ("sigstore-bundle/othername.sigstore.json", BUNDLE_03, "0.3"),
    ("sigstore-bundle/public-key-validity.sigstore.json", BUNDLE_03, "0.3"),
    ("sigstore-bundle/sigstore.js@2.0.0-provenance.sigstore.json", BUNDLE_01, "0.1"),
    ("sigstore-bundle/trivy-cyclonedx-attestation.sigstore.json", BUNDLE_03, "0.3"),
    ("sigstore-bundle/conformance/happy-path-v0.3/bundle.sigstore.json", BUNDLE_03_ALT, "0.3"),
    ("sigstore-bundle/conformance/happy-path-intoto-in-dsse-v3/bundle.sigstore.json", BUNDLE_03, "0.3"),
]


@pytest.mark.parametrize(("rel", "media_type", "version"), BUNDLES)
def test_bundle_media_type_and_version(rel: str, media_type: str, version: str) -> None:
    doc = sigstore_bundle.SIGSTORE_BUNDLE.parse(load(rel))
    assert (doc.format, doc.kind, doc.media_type, doc.format_version) == (
        "sigstore-bundle",
        DocumentKind.ATTESTATION,
        media_type,
        version,
    )
    att = doc.attestations[0]
    assert (att.envelope_kind, att.media_type, att.entry_index) == ("sigstore-bundle", media_type, 0)
    assert len(att.subjects) >= 1


MESSAGE_SIGNATURES = [
    (
        "sigstore-bundle/Python-3.12.5.tgz.sigstore",
        "38dc4e2c261d49c661196066edbfb70fdb16be4a79cc8220c224dfeb5636d405",
    ),
    (
        "sigstore-bundle/bundle_v3.txt.sigstore",
        "5e6ae9de58c1177bea615b4fcbfb2fd688e8c4b51c2e56b6a38e817833ec24a2",
    ),
    (
        "sigstore-bundle/bundle_v3_alt.txt.sigstore",
        "4191e6b4e2b0260e6e297d4797d2a873584965afef021bf22f2bb7bec41102d0",
    ),
    (
        "sigstore-bundle/othername.sigstore.json",
        "bc103b4a84971ef6459b294a2b98568a2bfb72cded09d4acd1e16366a401f95b",
    ),
    ("sigstore-bundle/conformance/happy-path-v0.3/bundle.sigstore.json", A_TXT_SHA256),
]


@pytest.mark.parametrize(("rel", "digest"), MESSAGE_SIGNATURES)
def test_message_signature_bundle_subject_is_the_artifact_digest(rel: str, digest: str) -> None:
    doc = sigstore_bundle.SIGSTORE_BUNDLE.parse(load(rel))
    att = doc.attestations[0]
    assert (att.payload_type, att.statement_type, att.predicate_type, att.signature_count) == (
        None,
        None,
        None,
        1,
    )
    assert att.subjects == [AttestationSubject("", "sha256", digest)]
    assert doc.document_id == doc.subject == f"sha256:{digest}"
    # messageDigest is base64 of the raw digest; the subject is the same bytes in hex.
    assert base64.b64decode(raw(rel)["messageSignature"]["messageDigest"]["digest"]).hex() == digest


def test_public_key_hint_becomes_a_keyid() -> None:
    att = sigstore_bundle.SIGSTORE_BUNDLE.parse(load("sigstore-bundle/public-key-validity.sigstore.json"))
    assert att.attestations[0].keyids == ["IpekKjxVkmTfB4YqY8q5sGEAeVtF9x3m7jHdhAxpgjQ="]


DSSE_BUNDLES = [
    (
        "sigstore-bundle/a.dsse.staging-rekor-v2.txt.sigstore.json",
        V1,
        "https://slsa.dev/provenance/v1",
        ("a.txt", "sha256", A_TXT_SHA256),
        [],
    ),
    (
        "sigstore-bundle/conformance/happy-path-intoto-in-dsse-v3/bundle.sigstore.json",
        V1,
        "https://slsa.dev/provenance/v1",
        ("a.txt", "sha256", A_TXT_SHA256),
        [],
    ),
    (
        "sigstore-bundle/npm-publish-bundle.json",
        V01,
        "https://github.com/npm/attestation/tree/main/specs/publish/v0.1",
        (
            "pkg:npm/sigstore@1.3.0",
            "sha512",
            "76176ffa33808b54602c7c35de5c6e9a4deb96066dba6533f50ac234f4f1f4c6"
            "b3527515dc17c06fbe2860030f410eee69ea20079bd3a2c6f3dcf3b329b10751",
        ),
        ["SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA"],
    ),
    (
        "sigstore-bundle/sigstore.js@2.0.0-provenance.sigstore.json",
        V1,
        "https://slsa.dev/provenance/v1",
        (
            "pkg:npm/sigstore@2.0.0",
            "sha512",
            "46d4e2f74c4877316640000a6fdf8a8b59f1e0847667973e9859f774dd31b8f1"
            "e0937813b777fb66a2ac67d50540fe34640966eee9fc2ccca387082b4c85cd3c",
        ),
        [],
    ),
    (
        "sigstore-bundle/trivy-cyclonedx-attestation.sigstore.json",
        V01,
        "https://cyclonedx.org/bom",
        (
            "ghcr.io/ringodev/demo-sbom",
            "sha256",
            "ea9c657ca44371fadd027510f2a1a68b799003294bf6a4827827971cc4390ad4",
        ),
        [],
    ),
]


@pytest.mark.parametrize(("rel", "stype", "ptype", "subject", "keyids"), DSSE_BUNDLES)
def test_dsse_bundle_records_the_statement(
    rel: str, stype: str, ptype: str, subject: tuple[str, str, str], keyids: list[str]
) -> None:
    doc = sigstore_bundle.SIGSTORE_BUNDLE.parse(load(rel))
    att = doc.attestations[0]
    assert (att.payload_type, att.statement_type, att.predicate_type) == (INTOTO, stype, ptype)
    assert (att.signature_count, att.keyids) == (1, keyids)
    assert subjects(doc) == [subject]
    assert doc.document_id == payload_sha256(raw(rel)["dsseEnvelope"])
    assert doc.subject == subject[0]
    assert doc.warnings == []


def test_same_statement_gets_the_same_document_id_bare_or_in_a_bundle() -> None:
    bare = intoto.INTOTO_STATEMENT.parse(load("intoto-statement/statement.json"))
    bundled = sigstore_bundle.SIGSTORE_BUNDLE.parse(load("sigstore-bundle/a.dsse.staging-rekor-v2.txt.sigstore.json"))
    statement = base64.b64decode(
        raw("sigstore-bundle/a.dsse.staging-rekor-v2.txt.sigstore.json")["dsseEnvelope"]["payload"]
    )
    assert bundled.document_id == "sha256:" + hashlib.sha256(statement).hexdigest()
    # Different bytes (whitespace, predicate), same artifact: the subjects agree, the ids differ.
    assert subjects(bare) == subjects(bundled)
    assert bare.document_id != bundled.document_id


def test_bundle_with_two_dsse_signatures_imports_with_a_warning() -> None:
    doc = sigstore_bundle.SIGSTORE_BUNDLE.parse(load("sigstore-bundle/dsse-2sigs.sigstore.json"))
    assert doc.attestations[0].signature_count == 2
    assert doc.warnings == ["the DSSE envelope carries 2 signatures; Sigstore verification requires one"]
    assert doc.subject == "slsa-provenance-0.0.7.tgz"


@pytest.mark.parametrize(
    ("rel", "predicate_type"),
    [
        ("sigstore-bundle/invalid/bundle_cve_2022_36056.txt.sigstore", None),
        (
            "sigstore-bundle/invalid/invalid-dsse-sig.intoto.sigstore",
            "https://slsa.dev/provenance/v1.0?draft",
        ),
        ("sigstore-bundle/invalid/mismatch-tlog.intoto.sigstore", "https://slsa.dev/provenance/v1.0?draft"),
        (
            "sigstore-bundle/conformance/dsse-invalid-sig_fail/bundle.sigstore.json",
            "https://slsa.dev/provenance/v1",
        ),
    ],
)
def test_verification_failures_import_as_unverified_bundles(rel: str, predicate_type: str | None) -> None:
    """A bad signature, a log entry for another signature (CVE-2022-36056) or a mismatched tlog
    entry can only be found by verifying. These bundles are structurally valid, import stores
    attestations unverified, so they must import now; the later verification step refuses them.
    """
    doc = sigstore_bundle.SIGSTORE_BUNDLE.parse(load(rel))
    assert doc.attestations[0].predicate_type == predicate_type
    assert doc.attestations[0].signature_count == 1


@pytest.mark.parametrize(
    ("rel", "error", "message", "pointer"),
    [
        (
            "sigstore-bundle/invalid/bundle_invalid_version.txt.sigstore",
            SchemaError,
            "mediaType 'this is completely wrong' is not a Sigstore bundle media type",
            "/mediaType",
        ),
        (
            "sigstore-bundle/conformance/bundle-unknown-version_fail/bundle.sigstore.json",
            UnsupportedFormatError,
            r"Sigstore bundle version 99\.9 is not supported \(supported: 0\.1, 0\.2, 0\.3\)",
            "/mediaType",
        ),
        (
            "sigstore-bundle/invalid/bundle_no_cert_v1.txt.sigstore",
            SchemaError,
            "x509CertificateChain has no certificates",
            "/verificationMaterial/x509CertificateChain/certificates",
        ),
        (
            "sigstore-bundle/invalid/bundle_no_log_entry.txt.sigstore",
            SchemaError,
            "a v0.1 bundle must carry exactly one transparency log entry, found 0",
            "/verificationMaterial/tlogEntries",
        ),
        (
            "sigstore-bundle/invalid/bundle_no_checkpoint.txt.sigstore",
            SchemaError,
            "the inclusionProof has no checkpoint",
            "/verificationMaterial/tlogEntries/0/inclusionProof/checkpoint",
        ),
        (
            "sigstore-bundle/conformance/bundle-invalid-base64-signature_fail/bundle.sigstore.json",
            SchemaError,
            "the signature is not valid base64",
            "/messageSignature/signature",
        ),
        (
            "sigstore-bundle/conformance/bundle-malformed-json_fail/bundle.sigstore.json",
            SchemaError,
            "not a readable Sigstore bundle: malformed JSON",
            None,
        ),
    ],
)
def test_structurally_broken_bundles_are_rejected(
    rel: str, error: type[Exception], message: str, pointer: str | None
) -> None:
    with pytest.raises(error, match=message) as err:
        sigstore_bundle.SIGSTORE_BUNDLE.parse(load(rel))
    assert getattr(err.value, "pointer", None) == pointer


def _v3() -> dict[str, Any]:
    value: dict[str, Any] = raw("sigstore-bundle/bundle_v3.txt.sigstore")
    return value


def _v1() -> dict[str, Any]:
    value: dict[str, Any] = raw("sigstore-bundle/Python-3.12.5.tgz.sigstore")
    return value


def _vm(bundle: dict[str, Any], **changes: Any) -> dict[str, Any]:
    vm = {k: v for k, v in (bundle["verificationMaterial"] | changes).items() if v is not None}
    return bundle | {"verificationMaterial": vm}


def test_bundle_structure_rules_by_version() -> None:
    chain = _v1()["verificationMaterial"]["x509CertificateChain"]
    cert = _v3()["verificationMaterial"]["certificate"]
    cases: list[tuple[dict[str, Any], str, str | None]] = [
        (
            _vm(_v1(), x509CertificateChain=None, certificate=cert),
            "only allowed from bundle v0.3",
            "/certificate",
        ),
        (
            _vm(_v3(), certificate=None, x509CertificateChain=chain),
            "must use certificate, not",
            "/x509CertificateChain",
        ),
        (_vm(_v3(), publicKey={"hint": "k"}), "found publicKey and certificate", ""),
        (_vm(_v3(), certificate=None), "found none", ""),
        (
            _v1() | {"mediaType": BUNDLE_01.replace("0.1", "0.2"), **_no_proof(_v1())},
            "v0.2 bundle's log entry",
            "",
        ),
        (_v3() | {"dsseEnvelope": _cosign()}, "found both", None),
        ({k: v for k, v in _v3().items() if k != "messageSignature"}, "found neither", None),
        (_v3() | {"extra": True}, "unexpected field 'extra'", None),
    ]
    for bundle, message, sub in cases:
        with pytest.raises(SchemaError, match=message) as err:
            sigstore_bundle.SIGSTORE_BUNDLE.parse(from_json(bundle))
        if sub == "":
            assert err.value.pointer is not None and err.value.pointer.startswith("/verificationMaterial")
        elif sub is not None:
            assert err.value.pointer == "/verificationMaterial" + sub


def _no_proof(bundle: dict[str, Any]) -> dict[str, Any]:
    entry = {k: v for k, v in bundle["verificationMaterial"]["tlogEntries"][0].items() if k != "inclusionProof"}
    return {"verificationMaterial": bundle["verificationMaterial"] | {"tlogEntries": [entry]}}


@pytest.mark.parametrize(
    "media_type",
    [
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle.v0.2+json",
    ],
)
def test_v02_bundle_with_checkpoint_is_accepted_in_both_spellings(media_type: str) -> None:
    """The corpus has no valid v0.2 bundle: the no-checkpoint one, completed, must pass."""
    bundle = raw("sigstore-bundle/invalid/bundle_no_checkpoint.txt.sigstore")
    proof = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    proof["checkpoint"] = {
        "envelope": "rekor.sigstage.dev - 1\n2783629\nyI+q1pOVBmLshdZ/AMZyobBGoZSnlP7DEJKa1oih/EM=\n"
    }
    doc = sigstore_bundle.SIGSTORE_BUNDLE.parse(from_json(bundle | {"mediaType": media_type}))
    assert (doc.media_type, doc.format_version) == (media_type, "0.2")
    digest = base64.b64decode(bundle["messageSignature"]["messageDigest"]["digest"]).hex()
    assert doc.attestations[0].subjects == [AttestationSubject("", "sha256", digest)]


def test_v01_bundle_in_the_new_spelling_is_accepted() -> None:
    bundle = _v1() | {"mediaType": "application/vnd.dev.sigstore.bundle.v0.1+json"}
    assert sigstore_bundle.SIGSTORE_BUNDLE.parse(from_json(bundle)).format_version == "0.1"


def test_unparseable_media_type_with_the_bundle_prefix_is_unsupported() -> None:
    with pytest.raises(UnsupportedFormatError, match="unrecognised Sigstore bundle media type") as err:
        sigstore_bundle.SIGSTORE_BUNDLE.parse(from_json(_v3() | {"mediaType": "application/vnd.dev.sigstore.bundle"}))
    assert err.value.pointer == "/mediaType"


def test_bundle_dsse_envelope_gets_the_dsse_checks() -> None:
    bundle = raw("sigstore-bundle/trivy-cyclonedx-attestation.sigstore.json")
    bundle["dsseEnvelope"]["payload"] = "@@@"
    with pytest.raises(SchemaError, match="the DSSE payload is not valid base64") as err:
        sigstore_bundle.SIGSTORE_BUNDLE.parse(from_json(bundle))
    assert err.value.pointer == "/dsseEnvelope/payload"


def test_message_digest_must_match_its_algorithm() -> None:
    bundle = _v3()
    bundle["messageSignature"]["messageDigest"]["algorithm"] = "SHA2_512"
    with pytest.raises(SchemaError, match="SHA2_512 message digest is 32 bytes, expected 64"):
        sigstore_bundle.SIGSTORE_BUNDLE.parse(from_json(bundle))


# --- npm registry attestation documents ------------------------------------------------------

NPM_SUBJECT = (
    "pkg:npm/%40laurentsimon/provenance-npm-test@1.0.0",
    "sha512",
    "29d19f26233f4441328412b34fd73ed104ecfef62f14097890cccf7455b521b6"
    "5c5acff851849faa85c85395aa22d401436f01f3afb61b19c780e906c88c7f20",
)


def test_npm_attestations_document_yields_one_attestation_per_bundle() -> None:
    doc = sigstore_bundle.SIGSTORE_BUNDLE.parse(load("intoto-statement/npm-registry/npm-attestations.intoto.sigstore"))
    assert (doc.format, doc.media_type, doc.format_version) == ("sigstore-bundle", "application/json", None)
    assert [a.entry_index for a in doc.attestations] == [0, 1]
    assert [a.media_type for a in doc.attestations] == [BUNDLE_01, BUNDLE_01]
    assert [a.predicate_type for a in doc.attestations] == [
        "https://slsa.dev/provenance/v0.2",
        "https://github.com/npm/attestation/tree/main/specs/publish/v0.1",
    ]
    assert [a.keyids for a in doc.attestations] == [
        [],
        ["SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA"],
    ]
    assert subjects(doc, 0) == subjects(doc, 1) == [NPM_SUBJECT]
    assert doc.subject == NPM_SUBJECT[0]


def test_npm_statement_without_subjects_is_rejected() -> None:
    with pytest.raises(
        SchemaError, match=r"the Statement has no subjects.*\(at /subject in the decoded payload\)"
    ) as err:
        sigstore_bundle.SIGSTORE_BUNDLE.parse(
            load("intoto-statement/invalid/npm-att-publish-nosubjects.intoto.sigstore")
        )
    assert err.value.pointer == "/attestations/1/bundle/dsseEnvelope/payload"


def test_npm_statement_with_unknown_type_is_rejected() -> None:
    with pytest.raises(
        UnsupportedFormatError, match=re.escape("'https://in-toto.io/StatementA/v0.1' is not a supported")
    ) as err:
        sigstore_bundle.SIGSTORE_BUNDLE.parse(
            load("intoto-statement/invalid/npm-stmt-mismatch-prov-type.intoto.sigstore")
        )
    assert err.value.pointer == "/attestations/0/bundle/dsseEnvelope/payload"


def test_npm_declared_predicate_type_must_match_the_statement() -> None:
    doc = raw("intoto-statement/npm-registry/npm-attestations.intoto.sigstore")
    doc["attestations"][0]["predicateType"] = "https://slsa.dev/provenance/v1"
    with pytest.raises(SchemaError, match="does not match the bundle's Statement") as err:
        sigstore_bundle.SIGSTORE_BUNDLE.parse(from_json(doc))
    assert err.value.pointer == "/attestations/0/predicateType"


# --- base64 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("aGk=", b"hi"), ("aGk", b"hi"), ("-_8=", b"\xfb\xff"), ("-_8", b"\xfb\xff"), ("+/8=", b"\xfb\xff")],
)
def test_base64_standard_and_url_safe(text: str, expected: bytes) -> None:
    assert decode_base64(text, Where("x"), "v") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a b=", "outside the base64 alphabets"),
        ("+-8=", "outside the base64 alphabets"),
        ("aGk==", "wrong length or padding"),
        ("a", "wrong length or padding"),
        ("", "is empty"),
    ],
)
def test_base64_is_strict(text: str, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        decode_base64(text, Where("x", "/f"), "the value")


# --- robustness -------------------------------------------------------------------------------

ODD_VALUES: list[Any] = [None, 0, 1.5, True, "", "x", [], [1], {}, {"a": 1}]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value[:2]):
            out += _paths(child, (*prefix, i))
    return out


def _replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = orjson.loads(orjson.dumps(doc))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return copy


@pytest.mark.parametrize(
    ("fmt", "rel"),
    [
        (sigstore_bundle.SIGSTORE_BUNDLE, "sigstore-bundle/sigstore.js@2.0.0-provenance.sigstore.json"),
        (sigstore_bundle.SIGSTORE_BUNDLE, "sigstore-bundle/bundle_v3.txt.sigstore"),
        (sigstore_bundle.SIGSTORE_BUNDLE, "intoto-statement/npm-registry/npm-attestations.intoto.sigstore"),
        (dsse.DSSE, "dsse/cosign-attestation.json"),
        (intoto.INTOTO_STATEMENT, "intoto-statement/statement.json"),
    ],
)
def test_wrong_types_anywhere_give_user_errors_not_crashes(fmt: Any, rel: str) -> None:
    """Replace every value (to depth 6) by values of other types: parse must fail cleanly or pass."""
    doc = raw(rel)
    rejected = attempts = 0
    for path in _paths(doc):
        if len(path) > 6:
            continue
        for value in ODD_VALUES:
            cand = from_json(_replaced(doc, path, value))
            attempts += 1
            fmt.sniff(cand)
            try:
                fmt.parse(cand)
            except (SchemaError, UnsupportedFormatError):
                rejected += 1
    assert rejected > attempts // 4  # guards against a vacuous run: many replacements must be refused
