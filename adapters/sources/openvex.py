"""OpenVEX documents: v0.2.0 (validated by the official schema) and legacy v0.0.1.

A v0.0.1 document (unversioned ``@context`` or ``.../v0.0.1``) writes the vulnerability and
the products as plain strings and the version as a string, so it fails the v0.2.0 schema by
design. OpenVEX's own library (go-vex) still reads it in a compatibility mode, so we do too,
through a small explicit check of the legacy shape.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters.sources._common import check_purl, load_schema, parse_time
from core.errors import SchemaError, UnsupportedFormatError
from core.records import DocumentKind, ParsedDocument, VexStatement, VexStatus
from core.schema import SchemaValidator
from core.sources import Candidate, SourceFormat

MEDIA_TYPE = "application/openvex+json"
_CONTEXT = "https://openvex.dev/ns"
_SUPPORTED = ("0.0.1", "0.2.0")
_JUSTIFICATIONS = frozenset(
    {
        "component_not_present",
        "vulnerable_code_not_present",
        "vulnerable_code_not_in_execute_path",
        "vulnerable_code_cannot_be_controlled_by_adversary",
        "inline_mitigations_already_exist",
    }
)
_STATUSES = frozenset(status.value for status in VexStatus)
_IRI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@functools.cache
def _v020_schema() -> SchemaValidator:
    """The v0.2.0 schema, with the document ``@id`` relaxed from ``iri`` to ``iri-reference``.

    Trivy, the largest OpenVEX producer, writes document IDs such as
    ``aquasecurity/trivy:613f...`` that are IRI references but not absolute IRIs. Every other
    ``format`` stays asserted; a relative document ID only earns a warning.
    """
    schema = copy.deepcopy(load_schema("openvex/openvex_json_schema.json"))
    schema["properties"]["@id"]["format"] = "iri-reference"
    return SchemaValidator("OpenVEX 0.2.0 schema", schema)


def _context_version(context: str) -> str | None:
    """``0.2.0`` for ``https://openvex.dev/ns/v0.2.0``; the unversioned context is v0.0.1."""
    rest = context[len(_CONTEXT) :]
    if rest in ("", "/"):
        return "0.0.1"
    if rest.startswith("/v") and len(rest) > 2:
        return rest[2:]
    return None


class OpenVexFormat:
    """OpenVEX JSON documents (``@context`` ``https://openvex.dev/ns...``)."""

    name: str = "openvex"
    kind: DocumentKind = DocumentKind.VEX
    media_type: str = MEDIA_TYPE
    streams = False

    def sniff(self, candidate: Candidate) -> bool:
        """True when the top-level ``@context`` is an OpenVEX context URL."""
        doc = candidate.json
        if not isinstance(doc, dict):
            return False
        context = doc.get("@context")
        return isinstance(context, str) and context.startswith(_CONTEXT)

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Validate (the spec's status rules, then the schema or the legacy check) and normalize."""
        path = candidate.path
        doc = candidate.json
        if not isinstance(doc, dict):
            raise SchemaError("an OpenVEX document must be a JSON object", path=path, pointer="")
        context = doc.get("@context")
        if "@context" not in doc:
            raise SchemaError(
                f'"@context" is missing; an OpenVEX document declares "@context": "{_CONTEXT}/v0.2.0"',
                path=path,
                pointer="",
            )
        if not isinstance(context, str) or not context.startswith(_CONTEXT):
            raise SchemaError(
                f'"@context" {context!r} is not an OpenVEX context such as "{_CONTEXT}/v0.2.0"',
                path=path,
                pointer="/@context",
            )
        version = _context_version(context)
        if version not in _SUPPORTED:
            raise UnsupportedFormatError(
                f"OpenVEX {version or context} is not supported; supported: {', '.join(_SUPPORTED)}",
                path=path,
                pointer="/@context",
            )
        # The spec's status rules run before the schema: the schema expresses them as
        # if/then/anyOf, whose failure message does not tell the user what is missing.
        _check_status_rules(doc.get("statements"), path)
        if version == "0.2.0":
            _v020_schema().check(doc, path=path)
        else:
            _check_legacy(doc, path)
        return _normalize(doc, version, path)


def _check_status_rules(statements: Any, path: str) -> None:
    if not isinstance(statements, list):
        return
    for index, stmt in enumerate(statements):
        if not isinstance(stmt, Mapping):
            continue
        pointer = f"/statements/{index}"
        status = stmt.get("status")
        if status == "not_affected" and not stmt.get("justification") and not stmt.get("impact_statement"):
            raise SchemaError(
                "statement has status 'not_affected' but neither a justification nor an "
                "impact_statement; OpenVEX requires one of them to say why",
                path=path,
                pointer=pointer,
            )
        if status == "affected" and not stmt.get("action_statement"):
            raise SchemaError(
                "statement has status 'affected' but no action_statement; OpenVEX requires one "
                "saying how to remediate or mitigate",
                path=path,
                pointer=pointer,
            )


def _require_string(obj: Mapping[str, Any], key: str, path: str, pointer: str) -> None:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        if key not in obj:
            raise SchemaError(f'"{key}" is missing', path=path, pointer=pointer)
        raise SchemaError(f'"{key}" must be a non-empty string', path=path, pointer=f"{pointer}/{key}")


def _check_legacy(doc: Mapping[str, Any], path: str) -> None:
    """The v0.0.1 shape as go-vex reads it: string vulnerability, string products."""
    _require_string(doc, "@id", path, "")
    _require_string(doc, "author", path, "")
    parse_time(doc.get("timestamp"), path=path, pointer="/timestamp")
    version = doc.get("version")
    if version is not None and not (
        (isinstance(version, int) and version >= 1) or (isinstance(version, str) and version.isdigit())
    ):
        raise SchemaError(f"version {version!r} is not a positive integer", path=path, pointer="/version")
    statements = doc.get("statements")
    if not isinstance(statements, list) or not statements:
        raise SchemaError('"statements" must be a non-empty list', path=path, pointer="/statements")
    for index, stmt in enumerate(statements):
        pointer = f"/statements/{index}"
        if not isinstance(stmt, Mapping):
            raise SchemaError("a statement must be a JSON object", path=path, pointer=pointer)
        _require_string(stmt, "vulnerability", path, pointer)
        status = stmt.get("status")
        if status not in _STATUSES:
            raise SchemaError(
                f"status {status!r} is not one of {', '.join(sorted(_STATUSES))}",
                path=path,
                pointer=pointer + "/status",
            )
        justification = stmt.get("justification")
        if justification is not None and justification not in _JUSTIFICATIONS:
            raise SchemaError(
                f"justification {justification!r} is not one of {', '.join(sorted(_JUSTIFICATIONS))}",
                path=path,
                pointer=pointer + "/justification",
            )
        for key in ("products", "subcomponents"):
            items = stmt.get(key, [])
            if not isinstance(items, list):
                raise SchemaError(f'"{key}" must be a list of strings', path=path, pointer=f"{pointer}/{key}")
            for item_index, item in enumerate(items):
                if not isinstance(item, str) or not item.strip():
                    raise SchemaError(
                        f"a v0.0.1 {key[:-1]} must be a non-empty identifier string",
                        path=path,
                        pointer=f"{pointer}/{key}/{item_index}",
                    )
        parse_time(stmt.get("timestamp"), path=path, pointer=pointer + "/timestamp")


def _identifier(component: Any) -> str | None:
    """A product's or subcomponent's identifier: ``@id``, else purl, CPE 2.3, CPE 2.2."""
    if isinstance(component, str):
        return component
    if not isinstance(component, Mapping):
        return None
    ident = component.get("@id")
    if isinstance(ident, str) and ident:
        return ident
    ids = component.get("identifiers")
    if isinstance(ids, Mapping):
        for key in ("purl", "cpe23", "cpe22"):
            value = ids.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def _purl_of(component: Any, path: str, pointer: str) -> str | None:
    """The component's package URL (``@id`` or ``identifiers.purl``); a malformed one is an error."""
    ident = component if isinstance(component, str) else component.get("@id")
    if isinstance(ident, str) and ident.startswith("pkg:"):
        suffix = "" if isinstance(component, str) else "/@id"
        return check_purl(ident, path=path, pointer=pointer + suffix)
    if isinstance(component, Mapping):
        purl = (component.get("identifiers") or {}).get("purl")
        if isinstance(purl, str):
            return check_purl(purl, path=path, pointer=pointer + "/identifiers/purl")
    return None


def _normalize(doc: Mapping[str, Any], version: str, path: str) -> ParsedDocument:
    document_id = str(doc["@id"])
    warnings: list[str] = []
    if version != "0.2.0":
        warnings.append(f"OpenVEX {version} document read in compatibility mode (current is 0.2.0)")
    if not _IRI_SCHEME.match(document_id):
        warnings.append(f"document @id {document_id!r} is not an absolute IRI (kept as given)")
    doc_time = parse_time(doc.get("timestamp"), path=path, pointer="/timestamp")
    statements: list[VexStatement] = []
    for index, stmt in enumerate(doc["statements"]):
        pointer = f"/statements/{index}"
        products = stmt.get("products") or []
        if not products:
            warnings.append(f"statement {index} names no products; nothing was recorded for it")
            continue
        statements.extend(_statements(stmt, products, pointer, doc_time, path))
    subject = statements[0].product if statements else document_id
    return ParsedDocument(
        format="openvex",
        kind=DocumentKind.VEX,
        media_type=MEDIA_TYPE,
        document_id=document_id,
        subject=subject,
        format_version=version,
        vex=statements,
        warnings=warnings,
    )


def _statements(
    stmt: Mapping[str, Any], products: list[Any], pointer: str, doc_time: datetime | None, path: str
) -> list[VexStatement]:
    vuln = stmt["vulnerability"]
    vuln_id = vuln if isinstance(vuln, str) else str(vuln["name"])
    aliases = [] if isinstance(vuln, str) else list(vuln.get("aliases") or [])
    timestamp = parse_time(stmt.get("timestamp"), path=path, pointer=pointer + "/timestamp") or doc_time
    # v0.0.1 lists subcomponents once per statement; v0.2.0 nests them in each product.
    legacy_subs = [str(s) for s in stmt.get("subcomponents") or []]
    for sub_index, sub in enumerate(legacy_subs):
        _purl_of(sub, path, f"{pointer}/subcomponents/{sub_index}")
    out: list[VexStatement] = []
    for product_index, product in enumerate(products):
        product_pointer = f"{pointer}/products/{product_index}"
        product_id = _identifier(product)
        if product_id is None:
            raise SchemaError("product has neither an @id nor identifiers", path=path, pointer=product_pointer)
        subs = legacy_subs
        if isinstance(product, Mapping):
            subs = []
            for sub_index, sub in enumerate(product.get("subcomponents") or []):
                sub_id = _identifier(sub)
                if sub_id is None:
                    raise SchemaError(
                        "subcomponent has neither an @id nor identifiers",
                        path=path,
                        pointer=f"{product_pointer}/subcomponents/{sub_index}",
                    )
                _purl_of(sub, path, f"{product_pointer}/subcomponents/{sub_index}")
                subs.append(sub_id)
        out.append(
            VexStatement(
                vulnerability_id=vuln_id,
                product=product_id,
                status=VexStatus(stmt["status"]),
                aliases=aliases,
                product_purl=_purl_of(product, path, product_pointer),
                subcomponents=list(subs),
                justification=stmt.get("justification"),
                impact_statement=stmt.get("impact_statement"),
                action_statement=stmt.get("action_statement"),
                timestamp=timestamp,
            )
        )
    return out


OPENVEX = OpenVexFormat()
FORMATS: tuple[SourceFormat, ...] = (OPENVEX,)
