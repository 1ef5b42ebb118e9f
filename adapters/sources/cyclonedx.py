"""CycloneDX JSON BOMs, spec 1.4 to 1.6: SBOMs, and VEX when the BOM lists vulnerabilities.

Both formats share one loader: the spec-version gate, the official schema of that version
(with the SPDX licence and JSF signature side schemas registered offline) and the integrity
rules the schema cannot express (unique bom-refs, resolvable references, parsable purls).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import Any

from adapters.sources._common import check_purl, get_in, is_purl, parse_time, validator
from core.errors import SchemaError, UnsupportedFormatError
from core.records import DocumentKind, ParsedDocument, Sbom, SbomComponent, VexStatement, VexStatus
from core.schema import json_pointer
from core.sources import Candidate, SourceFormat

MEDIA_TYPE = "application/vnd.cyclonedx+json"
_SUPPORTED = ("1.4", "1.5", "1.6")
_SIDE_SCHEMAS = tuple(
    (f"http://cyclonedx.org/schema/{name}", f"cyclonedx/{name}")
    for name in ("spdx.schema.json", "jsf-0.82.schema.json")
)
_BOM_LINK = "urn:cdx:"
_STATE_STATUS = {
    "not_affected": VexStatus.NOT_AFFECTED,
    "false_positive": VexStatus.NOT_AFFECTED,
    "exploitable": VexStatus.AFFECTED,
    "in_triage": VexStatus.UNDER_INVESTIGATION,
    "resolved": VexStatus.FIXED,
    "resolved_with_pedigree": VexStatus.FIXED,
}
_VERSION_STATUS = {
    "affected": VexStatus.AFFECTED,
    "unaffected": VexStatus.NOT_AFFECTED,
    "unknown": VexStatus.UNDER_INVESTIGATION,
}


def _is_bom(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("bomFormat") == "CycloneDX"


def _has_vulnerabilities(doc: Mapping[str, Any]) -> bool:
    vulns = doc.get("vulnerabilities")
    return isinstance(vulns, list) and len(vulns) > 0


class CycloneDxVexFormat:
    """A CycloneDX BOM with a non-empty ``vulnerabilities`` array, read as VEX statements."""

    name: str = "cyclonedx-vex"
    kind: DocumentKind = DocumentKind.VEX
    media_type: str = MEDIA_TYPE
    streams = False

    def sniff(self, candidate: Candidate) -> bool:
        """True for ``bomFormat: CycloneDX`` with at least one vulnerability."""
        doc = candidate.json
        return _is_bom(doc) and _has_vulnerabilities(doc)

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Validate the BOM and emit one statement per (vulnerability, affects entry)."""
        bom = _load(candidate)
        statements, warnings = _vex_statements(bom, candidate.path)
        document_id = _document_id(bom, candidate)
        subject = _label(get_in(bom, "metadata", "component"))
        if subject is None:
            subject = statements[0].product if statements else document_id
        return ParsedDocument(
            format=self.name,
            kind=self.kind,
            media_type=MEDIA_TYPE,
            document_id=document_id,
            subject=subject,
            format_version=bom["specVersion"],
            vex=statements,
            warnings=warnings,
        )


class CycloneDxFormat:
    """A CycloneDX SBOM (any BOM without vulnerabilities)."""

    name: str = "cyclonedx"
    kind: DocumentKind = DocumentKind.SBOM
    media_type: str = MEDIA_TYPE
    streams = False

    def sniff(self, candidate: Candidate) -> bool:
        """True for ``bomFormat: CycloneDX`` without vulnerabilities (those are cyclonedx-vex)."""
        doc = candidate.json
        return _is_bom(doc) and not _has_vulnerabilities(doc)

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Validate the BOM and normalize its subject and (flattened) components."""
        bom = _load(candidate)
        path = candidate.path
        meta = bom.get("metadata") or {}
        subject = meta.get("component") or {}
        sbom = Sbom(
            spec_version=bom["specVersion"],
            serial_number=bom.get("serialNumber"),
            subject_name=subject.get("name"),
            subject_version=subject.get("version"),
            subject_purl=subject.get("purl"),
            created=parse_time(meta.get("timestamp"), path=path, pointer="/metadata/timestamp"),
            components=[_component(c) for c in _walk_components(bom.get("components"))],
        )
        document_id = _document_id(bom, candidate)
        return ParsedDocument(
            format=self.name,
            kind=self.kind,
            media_type=MEDIA_TYPE,
            document_id=document_id,
            subject=_label(subject) or document_id,
            format_version=bom["specVersion"],
            sbom=sbom,
        )


def _load(candidate: Candidate) -> dict[str, Any]:
    path = candidate.path
    bom = candidate.json
    if not isinstance(bom, dict):
        raise SchemaError("a CycloneDX document must be a JSON object", path=path, pointer="")
    version = bom.get("specVersion")
    if not isinstance(version, str):
        raise SchemaError(
            '"specVersion" is missing or not a string; a CycloneDX BOM must say which spec it follows',
            path=path,
            pointer="/specVersion" if "specVersion" in bom else "",
        )
    if version not in _SUPPORTED:
        raise UnsupportedFormatError(
            f"CycloneDX {version} is not supported; supported: {', '.join(_SUPPORTED)}",
            path=path,
            pointer="/specVersion",
        )
    if version != "1.4":
        _check_license_choice(bom, path)
    schema = validator(f"CycloneDX {version} schema", f"cyclonedx/bom-{version}.schema.json", _SIDE_SCHEMAS)
    schema.check(bom, path=path)
    refs = _check_refs_and_purls(bom, path)
    _check_links(bom, refs, path)
    return bom


def _objects(doc: Any) -> Iterator[tuple[tuple[str | int, ...], Mapping[str, Any]]]:
    """Every JSON object in the document with its path, in document order (no recursion limit)."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), doc)]
    while stack:
        parts, node = stack.pop()
        if isinstance(node, dict):
            yield parts, node
            children: list[tuple[str | int, Any]] = list(node.items())
        elif isinstance(node, list):
            children = list(enumerate(node))
        else:
            continue
        # Reversed so that the first problem in document order is the one reported.
        stack.extend(((*parts, key), child) for key, child in reversed(children))


def _check_license_choice(bom: Mapping[str, Any], path: str) -> None:
    """Since 1.5 a licence list is either licence entries or exactly one expression.

    The schema says so with a ``oneOf`` whose failure message only dumps the list back.
    """
    for parts, node in _objects(bom):
        licenses = node.get("licenses")
        if not isinstance(licenses, list) or len(licenses) < 2:
            continue
        if any(isinstance(entry, Mapping) and "expression" in entry for entry in licenses):
            raise SchemaError(
                "licenses mixes an SPDX license expression with other entries; since CycloneDX 1.5 "
                "a license list holds either license entries or exactly one expression",
                path=path,
                pointer=json_pointer((*parts, "licenses")),
            )


def _check_refs_and_purls(bom: Mapping[str, Any], path: str) -> set[str]:
    """Every bom-ref defined anywhere in the BOM (each exactly once); every purl parses."""
    seen: dict[str, str] = {}
    for parts, node in _objects(bom):
        ref = node.get("bom-ref")
        if isinstance(ref, str):
            pointer = json_pointer((*parts, "bom-ref"))
            if ref in seen:
                raise SchemaError(
                    f"bom-ref {ref!r} is defined twice (first at {seen[ref]}); bom-refs must be unique",
                    path=path,
                    pointer=pointer,
                )
            seen[ref] = pointer
        purl = node.get("purl")
        if isinstance(purl, str):
            check_purl(purl, path=path, pointer=json_pointer((*parts, "purl")))
    return set(seen)


def _check_links(bom: Mapping[str, Any], refs: set[str], path: str) -> None:
    """Dependencies and vulnerability ``affects`` must point at something this BOM defines."""

    def check(ref: Any, pointer: str, what: str) -> None:
        if isinstance(ref, str) and not ref.startswith(_BOM_LINK) and ref not in refs:
            raise SchemaError(
                f"{what} refers to bom-ref {ref!r}, which nothing in this BOM defines "
                "(a reference into another BOM must be a BOM-Link, urn:cdx:...)",
                path=path,
                pointer=pointer,
            )

    for i, dep in enumerate(bom.get("dependencies") or []):
        check(dep.get("ref"), f"/dependencies/{i}/ref", "dependency")
        for key in ("dependsOn", "provides"):
            for j, ref in enumerate(dep.get(key) or []):
                check(ref, f"/dependencies/{i}/{key}/{j}", f"dependency {key}")
    for i, vuln in enumerate(bom.get("vulnerabilities") or []):
        for j, affects in enumerate(vuln.get("affects") or []):
            check(affects.get("ref"), f"/vulnerabilities/{i}/affects/{j}/ref", "vulnerability affects")


def _walk_components(components: Any) -> Iterator[Mapping[str, Any]]:
    """Components and their nested components, depth first in document order."""
    stack = list(reversed(components or []))
    while stack:
        component = stack.pop()
        yield component
        stack.extend(reversed(component.get("components") or []))


def _component(c: Mapping[str, Any]) -> SbomComponent:
    hashes = {h.get("alg"): h.get("content") for h in c.get("hashes") or []}
    licenses: list[str] = []
    for entry in c.get("licenses") or []:
        value = entry.get("expression") or get_in(entry, "license", "id") or get_in(entry, "license", "name")
        if isinstance(value, str) and value not in licenses:
            licenses.append(value)
    return SbomComponent(
        ref=c.get("bom-ref"),
        name=c["name"],
        version=c.get("version"),
        purl=c.get("purl"),
        type=c.get("type"),
        cpe=c.get("cpe"),
        sha1=hashes.get("SHA-1"),
        sha256=hashes.get("SHA-256"),
        licenses=licenses,
        supplier=get_in(c, "supplier", "name"),
    )


def _vex_statements(bom: Mapping[str, Any], path: str) -> tuple[list[VexStatement], list[str]]:
    # Local affects refs name a component of this BOM; users match VEX on purls, so resolve.
    subject = get_in(bom, "metadata", "component")
    roots = ([subject] if subject else []) + list(bom.get("components") or [])
    purls = {
        comp["bom-ref"]: comp["purl"] for comp in _walk_components(roots) if comp.get("bom-ref") and comp.get("purl")
    }
    doc_time = parse_time(get_in(bom, "metadata", "timestamp"), path=path, pointer="/metadata/timestamp")
    statements: list[VexStatement] = []
    warnings: list[str] = []
    for i, vuln in enumerate(bom.get("vulnerabilities") or []):
        pointer = f"/vulnerabilities/{i}"
        vuln_id = vuln.get("id")
        if not vuln_id:
            raise SchemaError(
                "vulnerability has no id, so its VEX statements cannot be recorded",
                path=path,
                pointer=pointer,
            )
        affects = vuln.get("affects") or []
        if not affects:
            warnings.append(f"vulnerability {vuln_id} lists no affected components; nothing was recorded")
        analysis = vuln.get("analysis") or {}
        detail = analysis.get("detail") or None
        responses = ", ".join(analysis.get("response") or []) or None
        # Later entries win: the analysis' own time is the most precise one.
        timestamp = doc_time
        for obj, key, where in (
            (vuln, "published", pointer),
            (vuln, "updated", pointer),
            (analysis, "firstIssued", pointer + "/analysis"),
            (analysis, "lastUpdated", pointer + "/analysis"),
        ):
            timestamp = parse_time(obj.get(key), path=path, pointer=f"{where}/{key}") or timestamp
        aliases: list[str] = []
        for ref in vuln.get("references") or []:
            if ref.get("id") and ref["id"] != vuln_id and ref["id"] not in aliases:
                aliases.append(ref["id"])
        for entry in affects:
            status = _status(analysis.get("state"), entry)
            product, purl = _resolve(entry["ref"], purls)
            statements.append(
                VexStatement(
                    vulnerability_id=vuln_id,
                    product=product,
                    status=status,
                    aliases=list(aliases),
                    product_purl=purl,
                    justification=analysis.get("justification"),
                    impact_statement=detail,
                    action_statement=responses or (detail if status is VexStatus.AFFECTED else None),
                    timestamp=timestamp,
                )
            )
    return statements, warnings


def _status(state: str | None, affects: Mapping[str, Any]) -> VexStatus:
    """The analysis state; without one, the versions' statuses (CycloneDX's default: affected)."""
    if state is not None:
        return _STATE_STATUS[state]
    statuses = {_VERSION_STATUS[v.get("status", "affected")] for v in affects.get("versions") or []}
    return statuses.pop() if len(statuses) == 1 else VexStatus.AFFECTED


def _resolve(ref: str, purls: Mapping[str, str]) -> tuple[str, str | None]:
    """(product, purl) for an affects ref: a local bom-ref resolves to its component's purl."""
    if ref.startswith(_BOM_LINK):
        # A BOM-Link's fragment is the bom-ref inside the other BOM, often a purl.
        fragment = ref.partition("#")[2]
        return ref, fragment if is_purl(fragment) else None
    purl = purls.get(ref)
    return (purl or ref), purl


def _document_id(bom: Mapping[str, Any], candidate: Candidate) -> str:
    # serialNumber is optional; the content digest is the only other stable identity.
    serial = bom.get("serialNumber")
    return serial if isinstance(serial, str) else "sha256:" + hashlib.sha256(candidate.data).hexdigest()


def _label(component: Any) -> str | None:
    """How a subject component is named for ordering: purl, else name@version, else name."""
    if not isinstance(component, Mapping):
        return None
    if component.get("purl"):
        return str(component["purl"])
    name, version = component.get("name"), component.get("version")
    if not name:
        return None
    return f"{name}@{version}" if version else str(name)


CYCLONEDX_VEX = CycloneDxVexFormat()
CYCLONEDX = CycloneDxFormat()
FORMATS: tuple[SourceFormat, ...] = (CYCLONEDX_VEX, CYCLONEDX)
