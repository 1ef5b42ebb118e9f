"""Unsigned in-toto Statements (v0.1 and v1), e.g. decoded SLSA provenance.

No official JSON Schema exists (the normative definitions are protobuf and CUE), so the checks
are explicit: a supported ``_type``, at least one subject with a name and well-formed digests,
a ``predicateType``, and for SLSA provenance v1 the required ``buildDefinition`` and
``runDetails``. Predicate bodies without the Statement wrapper (no ``_type``) are not
Statements and are not recognised.
"""

from __future__ import annotations

from adapters.sources._attest import STATEMENT_PREFIX, Where, check_statement, content_id, subject_label
from core.contract.payload_types import IN_TOTO
from core.errors import SchemaError
from core.records import Attestation, DocumentKind, ParsedDocument
from core.sources import Candidate, SourceFormat


class InTotoStatementFormat:
    """The ``intoto-statement`` source format."""

    name = "intoto-statement"
    kind = DocumentKind.ATTESTATION
    media_type = IN_TOTO
    streams = False

    def sniff(self, candidate: Candidate) -> bool:
        """A JSON object whose ``_type`` is an in-toto Statement URI (known or not)."""
        doc = candidate.json
        # Unknown Statement types are claimed too, so that parse refuses them by name instead
        # of the import reporting an unrecognised file.
        return isinstance(doc, dict) and str(doc.get("_type", "")).startswith(STATEMENT_PREFIX)

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Check the Statement and record it as one unsigned attestation."""
        doc = candidate.json
        if doc is None:
            raise SchemaError(f"not an in-toto Statement: {candidate.json_error}", path=candidate.path)
        info = check_statement(doc, Where(candidate.path))
        attestation = Attestation(
            envelope_kind="intoto-statement",
            statement_type=info.statement_type,
            predicate_type=info.predicate_type,
            subjects=info.subjects,
        )
        return ParsedDocument(
            format=self.name,
            kind=self.kind,
            media_type=self.media_type,
            document_id=content_id(candidate.data),
            subject=subject_label(info, self.name),
            format_version=info.version,
            attestations=[attestation],
        )


INTOTO_STATEMENT = InTotoStatementFormat()
FORMATS: tuple[SourceFormat, ...] = (INTOTO_STATEMENT,)
