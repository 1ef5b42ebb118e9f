"""DSSE envelopes (Dead Simple Signing Envelope), alone or one per line in JSON Lines files.

Accepts the JSON form of ``envelope.proto`` checked against the vendored Sigstore
``Envelope.schema.json`` (with the DSSE-required fields made required, and extra fields allowed
on signatures for slsa-github-generator's ``cert``), with strict base64 in ``payload`` and
``sig``. An ``application/vnd.in-toto+json`` payload must be an in-toto Statement v0.1/v1 or
in-toto v0.9 link/layout metadata. Signatures are not verified here.

Wrappers that merely contain an envelope (Google Container Analysis "occurrences") are not
envelopes and are not recognised. In JSON Lines files the first pointer step is the entry index.
"""

from __future__ import annotations

from typing import Any

from adapters.sources._attest import (
    Where,
    check_envelope,
    content_id,
    looks_like_envelope,
    read_envelope_payload,
    subject_label,
)
from core.contract.media_types import DSSE_ENVELOPE
from core.errors import SchemaError
from core.records import Attestation, DocumentKind, ParsedDocument
from core.sources import Candidate, JsonLines, SourceFormat


class DsseFormat:
    """The ``dsse`` source format."""

    name = "dsse"
    kind = DocumentKind.ATTESTATION
    media_type = DSSE_ENVELOPE
    streams = False

    def sniff(self, candidate: Candidate) -> bool:
        """An object with payloadType, payload and signatures, or JSON Lines of such objects."""
        doc = candidate.json
        if isinstance(doc, JsonLines):
            return bool(doc) and all(looks_like_envelope(item) for item in doc)
        return looks_like_envelope(doc)

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Check every envelope and record one attestation per envelope."""
        doc: Any = candidate.json
        if doc is None:
            raise SchemaError(f"not a DSSE envelope: {candidate.json_error}", path=candidate.path)
        multi = isinstance(doc, JsonLines)
        envelopes = list(doc) if multi else [doc]
        attestations: list[Attestation] = []
        doc_id = subject = ""
        for index, item in enumerate(envelopes):
            where = Where(candidate.path, f"/{index}" if multi else "")
            env = check_envelope(item, where)
            info = read_envelope_payload(env, where)
            attestations.append(
                Attestation(
                    envelope_kind="dsse",
                    entry_index=index,
                    payload_type=env.payload_type,
                    statement_type=info.statement_type,
                    predicate_type=info.predicate_type,
                    signature_count=env.signature_count,
                    keyids=env.keyids,
                    subjects=info.subjects,
                )
            )
            if index == 0:
                doc_id, subject = content_id(env.payload), subject_label(info, env.payload_type)
        return ParsedDocument(
            format=self.name,
            kind=self.kind,
            media_type=self.media_type,
            document_id=doc_id,
            subject=subject,
            format_version="v1",
            attestations=attestations,
        )


DSSE = DsseFormat()
FORMATS: tuple[SourceFormat, ...] = (DSSE,)
