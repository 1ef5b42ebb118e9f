"""Our own policy formats: policy snapshots and findings (docs/policy-format.md).

Both are JSON documents identified by their ``schema`` URL and validated with the JSON Schemas in
``schemas/stella/``. Semantic checks the schemas cannot express: rule ids are unique within a
snapshot, finding ids are unique within a findings document, and ``purl`` values parse as
package URLs. A findings document names its snapshot by ``policyId``/``policyVersion`` only, so
its :class:`PolicySnapshot` carries empty ``inputs_hash`` and fingerprint.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.sources._common import check_purl, parse_time, validator
from core.errors import SchemaError, UnsupportedFormatError
from core.records import DocumentKind, Finding, ParsedDocument, PolicySnapshot
from core.sources import Candidate, SourceFormat

SCHEMA_BASE = "https://stellaops.dev/schemas/"


def _unique(items: list[dict[str, Any]], list_ptr: str, what: str, path: str) -> None:
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        ident = item["id"]
        if ident in first:
            raise SchemaError(
                f"{what} id {ident!r} is used twice (first at {list_ptr}/{first[ident]})",
                path=path,
                pointer=f"{list_ptr}/{i}/id",
            )
        first[ident] = i


def _evaluated_at(doc: dict[str, Any], path: str) -> datetime:
    value = parse_time(doc["evaluatedAt"], path=path, pointer="/evaluatedAt", required=True)
    if value is None:  # unreachable with required=True; keeps the type exact
        raise SchemaError("evaluatedAt is required", path=path, pointer="/evaluatedAt")
    return value


class _StellaFormat:
    """Shared sniffing and version handling; subclasses name the schema and build the record."""

    name: str
    kind: DocumentKind
    media_type = "application/json"
    streams = False
    slug: str  # the path segment of the schema URL
    label: str  # how users call the format

    @property
    def schema_url(self) -> str:
        return f"{SCHEMA_BASE}{self.slug}/v1"

    def sniff(self, candidate: Candidate) -> bool:
        """A JSON object whose ``schema`` is one of our URLs for this format (any version)."""
        doc = candidate.json
        return isinstance(doc, dict) and str(doc.get("schema", "")).startswith(f"{SCHEMA_BASE}{self.slug}/")

    def _validated(self, candidate: Candidate) -> dict[str, Any]:
        doc = candidate.json
        if not isinstance(doc, dict):
            reason = candidate.json_error or "the document is not a JSON object"
            raise SchemaError(f"not a {self.label}: {reason}", path=candidate.path)
        if doc.get("schema") != self.schema_url:
            raise UnsupportedFormatError(
                f"{self.label} schema {doc.get('schema')!r} is not supported (this version reads {self.schema_url})",
                path=candidate.path,
                pointer="/schema",
            )
        validator(f"{self.label} schema", f"stella/{self.slug}.schema.json").check(doc, path=candidate.path)
        return doc


class PolicySnapshotFormat(_StellaFormat):
    """The ``policy-snapshot`` source format."""

    name = "policy-snapshot"
    kind = DocumentKind.POLICY
    slug = "policy-snapshot"
    label = "policy snapshot"

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Validate the snapshot; rule ids must be unique."""
        path = candidate.path
        doc = self._validated(candidate)
        _unique(doc["rules"], "/rules", "rule", path)
        evaluated = _evaluated_at(doc, path)
        snapshot = PolicySnapshot(
            policy_id=doc["policyId"],
            policy_version=doc["policyVersion"],
            inputs_hash=doc["inputsHash"],
            decision_trace_fingerprint=doc["decisionTrace"]["fingerprint"],
            evaluated_at=evaluated,
        )
        return ParsedDocument(
            format=self.name,
            kind=self.kind,
            media_type=self.media_type,
            document_id=f"policy:{snapshot.policy_id}@{snapshot.policy_version}:{snapshot.inputs_hash}",
            subject=snapshot.policy_id,
            format_version="v1",
            policy=snapshot,
        )


class FindingsFormat(_StellaFormat):
    """The ``findings`` source format."""

    name = "findings"
    kind = DocumentKind.FINDINGS
    slug = "findings"
    label = "findings document"

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Validate the findings; ids must be unique and purls valid."""
        path = candidate.path
        doc = self._validated(candidate)
        _unique(doc["findings"], "/findings", "finding", path)
        findings: list[Finding] = []
        for i, raw in enumerate(doc["findings"]):
            purl = raw.get("purl")
            if purl is not None:
                check_purl(purl, path=path, pointer=f"/findings/{i}/purl")
            findings.append(
                Finding(
                    finding_id=raw["id"],
                    vulnerability_id=raw["vulnerabilityId"],
                    subject=raw["subject"],
                    decision=raw["decision"],
                    purl=purl,
                    severity=raw.get("severity"),
                    reason=raw.get("reason"),
                )
            )
        evaluated = _evaluated_at(doc, path)
        snapshot = PolicySnapshot(
            policy_id=doc["policyId"],
            policy_version=doc["policyVersion"],
            inputs_hash="",
            decision_trace_fingerprint="",
            evaluated_at=evaluated,
            findings=findings,
        )
        stamp = evaluated.isoformat() + "Z"
        return ParsedDocument(
            format=self.name,
            kind=self.kind,
            media_type=self.media_type,
            document_id=f"findings:{snapshot.policy_id}@{snapshot.policy_version}:{stamp}",
            subject=snapshot.policy_id,
            format_version="v1",
            policy=snapshot,
        )


POLICY_SNAPSHOT = PolicySnapshotFormat()
FINDINGS = FindingsFormat()
FORMATS: tuple[SourceFormat, ...] = (POLICY_SNAPSHOT, FINDINGS)
