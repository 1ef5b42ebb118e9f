"""SPDX 2.2 and 2.3 JSON SBOMs; SPDX 3 JSON-LD is recognised and refused.

Both versions are validated with the official 2.3 schema: 2.3 only relaxed or added fields, so
every valid 2.2 document in our corpus passes it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from adapters.sources._common import check_purl, load_schema, parse_time, validator
from core.errors import SchemaError, UnsupportedFormatError
from core.records import DocumentKind, ParsedDocument, Sbom, SbomComponent
from core.sources import Candidate, SourceFormat

MEDIA_TYPE = "application/spdx+json"
_SCHEMA = "spdx/spdx-2.3-schema.json"
_SUPPORTED = ("SPDX-2.2", "SPDX-2.3")
_SPDX3_CONTEXT = re.compile(r"spdx\.org/rdf/(3[0-9.]*)")
_NO_VALUE = frozenset({"NOASSERTION", "NONE"})
_PACKAGE_MANAGER = frozenset({"PACKAGE-MANAGER", "PACKAGE_MANAGER"})
# "Organization: Name (email)" -> "Name"
_ACTOR = re.compile(r"^(?:Person|Organization|Tool):\s*(.*?)\s*(?:\([^()]*@[^()]*\)|\(\))?$")


def _spdx3_version(doc: Mapping[str, Any]) -> str | None:
    """The SPDX 3 version named by a JSON-LD ``@context`` (a string or a list), if any."""
    context = doc.get("@context")
    for item in context if isinstance(context, list) else [context]:
        if isinstance(item, str) and (match := _SPDX3_CONTEXT.search(item)):
            return match.group(1).rstrip(".")
    return None


class SpdxFormat:
    """SPDX JSON documents (``spdxVersion``), plus SPDX 3 JSON-LD so it can be refused clearly."""

    name: str = "spdx"
    kind: DocumentKind = DocumentKind.SBOM
    media_type: str = MEDIA_TYPE
    streams = False

    def sniff(self, candidate: Candidate) -> bool:
        """True for a top-level ``spdxVersion`` or an SPDX 3 JSON-LD ``@context``."""
        doc = candidate.json
        return isinstance(doc, dict) and ("spdxVersion" in doc or _spdx3_version(doc) is not None)

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Validate (version gate, required fields, schema, references) and normalize."""
        path = candidate.path
        doc = candidate.json
        if not isinstance(doc, dict):
            raise SchemaError("an SPDX document must be a JSON object", path=path, pointer="")
        version = doc.get("spdxVersion")
        if version is None:
            spdx3 = _spdx3_version(doc)
            if spdx3 is not None:
                raise UnsupportedFormatError(
                    f"SPDX {spdx3} (JSON-LD) is not supported; supported: {', '.join(_SUPPORTED)}",
                    path=path,
                    pointer="/@context",
                )
            raise SchemaError('"spdxVersion" is missing; this is not an SPDX 2 JSON document', path=path, pointer="")
        if version not in _SUPPORTED:
            shown = version.removeprefix("SPDX-") if isinstance(version, str) else repr(version)
            raise UnsupportedFormatError(
                f"SPDX {shown} is not supported; supported: {', '.join(_SUPPORTED)}",
                path=path,
                pointer="/spdxVersion",
            )
        _check_required(doc, path)
        validator("SPDX 2.3 schema", _SCHEMA).check(doc, path=path)
        ids = _check_ids(doc, path)
        _check_references(doc, ids, path)
        return _normalize(doc, version, path)


@functools.cache
def _required_fields() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(section, required fields) as the 2.3 schema states them; "" is the document itself."""
    schema = load_schema(_SCHEMA)
    sections: list[tuple[str, tuple[str, ...]]] = [("", tuple(schema["required"]))]
    for key, prop in schema["properties"].items():
        required = prop.get("items", {}).get("required") if prop.get("type") == "array" else None
        if required:
            sections.append((key, tuple(required)))
    return tuple(sections)


def _check_required(doc: Mapping[str, Any], path: str) -> None:
    """Name the first missing required field in document order, and how many are missing.

    Real tool output (e.g. old Trivy SPDX) misses hundreds of required fields; the schema
    validator's "deepest error" would report an unrelated enum problem instead.
    """
    required = dict(_required_fields())
    missing: list[tuple[str, str, str]] = []  # (pointer, what, field)
    missing.extend(("", "the document", field) for field in required[""] if field not in doc)
    for key in doc:
        items = doc[key]
        if key not in required or not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                continue
            label = item.get("name") or item.get("fileName") or item.get("SPDXID")
            what = f"{key}[{index}]" + (f" ({label!r})" if isinstance(label, str) else "")
            missing.extend((f"/{key}/{index}", what, f) for f in required[key] if f not in item)
    if missing:
        pointer, what, field = missing[0]
        more = f" (and {len(missing) - 1} more missing required fields)" if len(missing) > 1 else ""
        raise SchemaError(f'{what} is missing the required field "{field}"{more}', path=path, pointer=pointer)


def _elements(doc: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(f"/{key}/{i}", el) for key in ("packages", "files", "snippets") for i, el in enumerate(doc.get(key) or [])]


def _check_ids(doc: Mapping[str, Any], path: str) -> set[str]:
    """Every SPDXID in the document, each used exactly once."""
    seen = {doc["SPDXID"]: ""}
    for pointer, element in _elements(doc):
        spdx_id = element["SPDXID"]
        if spdx_id in seen:
            first = seen[spdx_id] or "/SPDXID"
            raise SchemaError(
                f"SPDXID {spdx_id!r} is used twice (first at {first}); SPDXIDs must be unique",
                path=path,
                pointer=pointer + "/SPDXID",
            )
        seen[spdx_id] = pointer
    return set(seen)


def _check_references(doc: Mapping[str, Any], ids: set[str], path: str) -> None:
    """Relationships, documentDescribes and hasFiles name elements that exist; purls parse."""

    def check(ref: str, pointer: str, what: str) -> None:
        # Elements of other documents (DocumentRef-x:SPDXRef-y) cannot be checked offline.
        if ref in ids or ref in _NO_VALUE or ref.startswith("DocumentRef-"):
            return
        raise SchemaError(
            f"{what} refers to SPDXID {ref!r}, which this document does not define",
            path=path,
            pointer=pointer,
        )

    for i, ref in enumerate(doc.get("documentDescribes") or []):
        check(ref, f"/documentDescribes/{i}", "documentDescribes")
    for i, rel in enumerate(doc.get("relationships") or []):
        what = f"relationship {rel['relationshipType']}"
        check(rel["spdxElementId"], f"/relationships/{i}/spdxElementId", what)
        check(rel["relatedSpdxElement"], f"/relationships/{i}/relatedSpdxElement", what)
    for i, package in enumerate(doc.get("packages") or []):
        for j, ref in enumerate(package.get("hasFiles") or []):
            check(ref, f"/packages/{i}/hasFiles/{j}", f"package {package['name']!r} hasFiles")
        for j, ext in enumerate(package.get("externalRefs") or []):
            if ext["referenceType"] == "purl":
                check_purl(
                    ext["referenceLocator"],
                    path=path,
                    pointer=f"/packages/{i}/externalRefs/{j}/referenceLocator",
                )


def _described(doc: Mapping[str, Any]) -> list[str]:
    """SPDXIDs the document DESCRIBES, in the order the document gives them."""
    doc_id = doc["SPDXID"]
    out = list(doc.get("documentDescribes") or [])
    for rel in doc.get("relationships") or []:
        kind = rel["relationshipType"]
        if kind == "DESCRIBES" and rel["spdxElementId"] == doc_id:
            out.append(rel["relatedSpdxElement"])
        elif kind == "DESCRIBED_BY" and rel["relatedSpdxElement"] == doc_id:
            out.append(rel["spdxElementId"])
    return out


def _normalize(doc: Mapping[str, Any], version: str, path: str) -> ParsedDocument:
    components = [_component(p) for p in doc.get("packages") or []]
    by_ref = {c.ref: c for c in components}
    # The subject is the first described *package*; a document may also describe files.
    subject_component = next((by_ref[ref] for ref in _described(doc) if ref in by_ref), None)
    sbom = Sbom(
        spec_version=version,
        serial_number=doc["documentNamespace"],
        subject_name=subject_component.name if subject_component else None,
        subject_version=subject_component.version if subject_component else None,
        subject_purl=subject_component.purl if subject_component else None,
        created=parse_time(doc["creationInfo"]["created"], path=path, pointer="/creationInfo/created"),
        components=components,
    )
    label = str(doc["name"])
    if subject_component is not None:
        label = subject_component.purl or subject_component.name
        if subject_component.purl is None and subject_component.version:
            label = f"{label}@{subject_component.version}"
    return ParsedDocument(
        format="spdx",
        kind=DocumentKind.SBOM,
        media_type=MEDIA_TYPE,
        document_id=doc["documentNamespace"],
        subject=label,
        format_version=version.removeprefix("SPDX-"),
        sbom=sbom,
    )


def _component(package: Mapping[str, Any]) -> SbomComponent:
    purl = cpe23 = cpe22 = None
    for ext in package.get("externalRefs") or []:
        category, kind, locator = ext["referenceCategory"], ext["referenceType"], ext["referenceLocator"]
        if category in _PACKAGE_MANAGER and kind == "purl" and purl is None:
            purl = locator
        elif category == "SECURITY" and kind == "cpe23Type" and cpe23 is None:
            cpe23 = locator
        elif category == "SECURITY" and kind == "cpe22Type" and cpe22 is None:
            cpe22 = locator
    checksums = {c["algorithm"]: c["checksumValue"] for c in package.get("checksums") or []}
    licenses: list[str] = []
    for key in ("licenseConcluded", "licenseDeclared"):
        value = package.get(key)
        if isinstance(value, str) and value not in _NO_VALUE and value not in licenses:
            licenses.append(value)
    purpose = package.get("primaryPackagePurpose")
    return SbomComponent(
        ref=package["SPDXID"],
        name=package["name"],
        version=package.get("versionInfo"),
        purl=purl,
        type=purpose.lower() if isinstance(purpose, str) else None,
        cpe=cpe23 or cpe22,
        sha1=checksums.get("SHA1"),
        sha256=checksums.get("SHA256"),
        licenses=licenses,
        supplier=_actor_name(package.get("supplier")),
    )


def _actor_name(value: Any) -> str | None:
    """``Organization: Example, Inc. (a@b.c)`` -> ``Example, Inc.``; NOASSERTION -> None."""
    if not isinstance(value, str) or value in _NO_VALUE:
        return None
    match = _ACTOR.match(value)
    name = match.group(1) if match else value
    return name or None


SPDX = SpdxFormat()
FORMATS: tuple[SourceFormat, ...] = (SPDX,)
