"""Our own policy-snapshot and findings formats (docs/policy-format.md)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # test-only dependency without stubs
import orjson
import pytest

from adapters.sources import dsse, epss, intoto, kev, policy, sigstore_bundle
from adapters.sources._common import load_schema
from core.errors import SchemaError, UnsupportedFormatError
from core.records import DocumentKind, Finding
from core.sources import Candidate
from tests.unit.sources.fixture_docs import FixtureDocs

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures"
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
IMAGE_DIGEST = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
SUBJECT = f"registry.example.com/payments/api@{IMAGE_DIGEST}"


def raw(rel: str) -> Any:
    return orjson.loads((FIXTURES / rel).read_bytes())


def from_json(value: Any) -> Candidate:
    return Candidate(path="synthetic.json", data=orjson.dumps(value))


def test_every_policy_fixture_is_sniffed_by_exactly_its_format() -> None:
    files = sorted(p for p in (FIXTURES / "policy").rglob("*.json"))
    assert len(files) == 13
    for path in files:
        expected = "findings" if path.name.startswith("findings") else "policy-snapshot"
        cand = Candidate(path=str(path), data=path.read_bytes())
        assert [f.name for f in MINE if f.sniff(cand)] == [expected], path.name


@pytest.mark.parametrize("name", ["policy-snapshot", "findings"])
def test_our_schemas_are_valid_draft_2020_12(name: str) -> None:
    schema = load_schema(f"stella/{name}.schema.json")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema"]["const"] == f"https://stellaops.dev/schemas/{name}/v1"


def test_policy_snapshot_runtime_baseline() -> None:
    doc = policy.POLICY_SNAPSHOT.parse(load("policy/snapshot-runtime-baseline.json"))
    assert (doc.format, doc.kind, doc.media_type, doc.format_version) == (
        "policy-snapshot",
        DocumentKind.POLICY,
        "application/json",
        "v1",
    )
    inputs = "sha256:92ea1d5ae85ff5355ad78b4edfacf5a688c7e0834cb74252c39adf1e96091937"
    assert doc.document_id == f"policy:acme/runtime-baseline@7:{inputs}"
    assert doc.subject == "acme/runtime-baseline"
    snap = doc.policy
    assert snap is not None
    assert (snap.policy_id, snap.policy_version, snap.inputs_hash) == ("acme/runtime-baseline", "7", inputs)
    assert (
        snap.decision_trace_fingerprint == raw("policy/snapshot-runtime-baseline.json")["decisionTrace"]["fingerprint"]
    )
    assert snap.decision_trace_fingerprint.startswith("sha256:") and len(snap.decision_trace_fingerprint) == 71
    assert snap.evaluated_at == datetime(2025, 8, 26, 7, 15)  # 09:15+02:00 in naive UTC
    assert snap.findings == []


def test_policy_snapshot_minimal_without_tenant_or_rules() -> None:
    doc = policy.POLICY_SNAPSHOT.parse(load("policy/snapshot-minimal.json"))
    assert doc.policy is not None
    assert (doc.policy.policy_id, doc.policy.policy_version) == ("acme/dev-lenient", "2025.08.1")
    assert doc.policy.evaluated_at == datetime(2025, 8, 20)


def test_findings_runtime_baseline() -> None:
    doc = policy.FINDINGS.parse(load("policy/findings-runtime-baseline.json"))
    assert (doc.format, doc.kind, doc.media_type, doc.format_version) == (
        "findings",
        DocumentKind.FINDINGS,
        "application/json",
        "v1",
    )
    assert (doc.document_id, doc.subject) == (
        "findings:acme/runtime-baseline@7:2025-08-26T07:15:00Z",
        "acme/runtime-baseline",
    )
    snap = doc.policy
    assert snap is not None
    assert (snap.policy_id, snap.policy_version, snap.inputs_hash, snap.decision_trace_fingerprint) == (
        "acme/runtime-baseline",
        "7",
        "",
        "",
    )
    assert snap.evaluated_at == datetime(2025, 8, 26, 7, 15)
    assert snap.findings == [
        Finding(
            "F-0001",
            "CVE-2021-44228",
            SUBJECT,
            "fail",
            purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
            severity="critical",
            reason="listed in CISA KEV (rule kev-block)",
        ),
        Finding(
            "F-0002",
            "GHSA-vwqx-4fm8-6qc9",
            SUBJECT,
            "warn",
            purl="pkg:deb/debian/git@2.39.5-0%2Bdeb12u1?arch=amd64",
            severity="high",
        ),
        Finding(
            "F-0003",
            "CVE-2024-3094",
            SUBJECT,
            "ignore",
            reason="vendor VEX: not_affected (vulnerable_code_not_present)",
        ),
        Finding("F-0004", "CVE-2023-44487", "payments-api 1.4.2", "pass", severity="medium"),
    ]


def test_findings_document_may_be_empty() -> None:
    doc = policy.FINDINGS.parse(load("policy/findings-empty.json"))
    assert doc.policy is not None and doc.policy.findings == []
    assert doc.document_id == "findings:acme/dev-lenient@2025.08.1:2025-08-20T00:00:00Z"


INVALID = [
    (
        "policy/invalid/snapshot-short-inputs-hash.json",
        SchemaError,
        r'"sha256:1234" does not match "\^sha256:\[0-9a-f\]\{64\}\$"',
        "/inputsHash",
    ),
    (
        "policy/invalid/snapshot-duplicate-rule-id.json",
        SchemaError,
        r"rule id 'kev-block' is used twice \(first at /rules/0\)",
        "/rules/3/id",
    ),
    (
        "policy/invalid/snapshot-schema-v2.json",
        UnsupportedFormatError,
        "policy snapshot schema 'https://stellaops.dev/schemas/policy-snapshot/v2' is not supported",
        "/schema",
    ),
    (
        "policy/invalid/snapshot-no-fingerprint.json",
        SchemaError,
        '"fingerprint" is a required property',
        "/decisionTrace",
    ),
    (
        "policy/invalid/findings-duplicate-id.json",
        SchemaError,
        r"finding id 'F-0001' is used twice \(first at /findings/0\)",
        "/findings/2/id",
    ),
    (
        "policy/invalid/findings-unknown-decision.json",
        SchemaError,
        '"block" is not one of',
        "/findings/1/decision",
    ),
    (
        "policy/invalid/findings-bad-purl.json",
        SchemaError,
        "invalid package URL 'pkg:maven/@2.14.1'",
        "/findings/0/purl",
    ),
    (
        "policy/invalid/findings-missing-subject.json",
        SchemaError,
        '"subject" is a required property',
        "/findings/3",
    ),
    (
        "policy/invalid/findings-bad-evaluated-at.json",
        SchemaError,
        '"2025-08-26 07:15" is not a "date-time"',
        "/evaluatedAt",
    ),
]


@pytest.mark.parametrize(("rel", "error", "message", "pointer"), INVALID)
def test_invalid_samples_are_rejected(rel: str, error: type[Exception], message: str, pointer: str) -> None:
    fmt = policy.FINDINGS if "/findings-" in rel else policy.POLICY_SNAPSHOT
    with pytest.raises(error, match=message) as err:
        fmt.parse(load(rel))
    assert getattr(err.value, "pointer", None) == pointer


def test_unknown_fields_are_errors_because_the_format_is_ours() -> None:
    doc = raw("policy/snapshot-minimal.json") | {"policyID": "typo"}
    with pytest.raises(SchemaError, match="Additional properties are not allowed") as err:
        policy.POLICY_SNAPSHOT.parse(from_json(doc))
    assert err.value.pointer == ""
    doc = raw("policy/snapshot-minimal.json") | {"tenant": "acme prod"}
    with pytest.raises(SchemaError, match="does not match") as err:
        policy.POLICY_SNAPSHOT.parse(from_json(doc))
    assert err.value.pointer == "/tenant"


def test_decision_trace_may_carry_extra_fields() -> None:
    doc = raw("policy/snapshot-minimal.json")
    doc["decisionTrace"]["nodes"] = 42
    assert policy.POLICY_SNAPSHOT.parse(from_json(doc)).policy is not None


def test_wrong_format_is_refused_clearly() -> None:
    with pytest.raises(SchemaError, match="not a findings document: not a JSON document"):
        policy.FINDINGS.parse(Candidate(path="x", data=b"hello"))
    findings_doc = load("policy/findings-empty.json")
    assert not policy.POLICY_SNAPSHOT.sniff(findings_doc)
    with pytest.raises(
        UnsupportedFormatError,
        match=re.escape("policy snapshot schema 'https://stellaops.dev/schemas/findings/v1'"),
    ):
        policy.POLICY_SNAPSHOT.parse(findings_doc)


def test_documentation_examples_parse() -> None:
    text = (ROOT / "docs" / "policy-format.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 2
    snapshot = policy.POLICY_SNAPSHOT.parse(Candidate(path="doc-1", data=blocks[0].encode()))
    findings = policy.FINDINGS.parse(Candidate(path="doc-2", data=blocks[1].encode()))
    assert snapshot.policy is not None and findings.policy is not None
    assert snapshot.policy.policy_id == findings.policy.policy_id == "acme/runtime-baseline"
    assert [f.decision for f in findings.policy.findings] == ["fail", "pass"]
