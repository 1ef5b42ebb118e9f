"""CSAF 2.0 importers: ``csaf-vex`` for the VEX profile, ``csaf`` for every other profile.

Both validate against the official CSAF 2.0 JSON Schema (with the FIRST CVSS schemas it
references registered locally) and then run the CSAF mandatory tests the schema cannot express
(see :mod:`adapters.sources._csaf_checks`). Which tests apply depends on the document's
category, not on the importer, so a document is valid or invalid the same way under both.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from adapters.sources._common import get_in, parse_time, validator
from adapters.sources._csaf_checks import (
    STATUS_GROUP,
    ProductTree,
    add_cvss,
    explain_cvss,
    json_object,
    run_mandatory_tests,
)
from core.errors import SchemaError, UnsupportedFormatError
from core.records import (
    Advisory,
    AdvisorySeverity,
    AffectedRange,
    DocumentKind,
    ParsedDocument,
    VexStatement,
    VexStatus,
)
from core.sources import Candidate, SourceFormat

CSAF_MEDIA_TYPE = "application/csaf+json"
_SCHEMA = "csaf/csaf_json_schema.json"
# The CSAF schema $refs the FIRST CVSS schemas by these URLs (their own $ids differ).
_RESOURCES = tuple(
    (f"https://www.first.org/cvss/{name}.json", f"csaf/{name}.json") for name in ("cvss-v2.0", "cvss-v3.0", "cvss-v3.1")
)
_CVSS_KEYS = (("cvss_v3", "CVSS_V3"), ("cvss_v2", "CVSS_V2"))


def _category(candidate: Candidate) -> str | None:
    """``document.category`` when the candidate looks like CSAF, else ``None``."""
    data = candidate.json
    document = data.get("document") if isinstance(data, dict) else None
    if not isinstance(document, dict) or "csaf_version" not in document:
        return None
    category = document.get("category")
    return category if isinstance(category, str) else ""


def _load(candidate: Candidate) -> tuple[dict[str, Any], ProductTree]:
    """Schema-validate and run the mandatory tests; return the document and its product index."""
    doc = json_object(candidate, "CSAF document")
    version = get_in(doc, "document", "csaf_version")
    if isinstance(version, str) and version != "2.0":
        raise UnsupportedFormatError(
            f"CSAF version {version} is not supported; this tool imports CSAF 2.0",
            path=candidate.path,
            pointer="/document/csaf_version",
        )
    try:
        validator("CSAF 2.0 schema", _SCHEMA, _RESOURCES).check(doc, path=candidate.path)
    except SchemaError as exc:
        clearer = explain_cvss(doc, path=candidate.path)
        if clearer is not None:
            raise clearer from exc
        raise
    return doc, run_mandatory_tests(doc, path=candidate.path)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _status_entries(vuln: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(status, product ID) once per product, in document order; ``recommended`` is no status."""
    seen: set[str] = set()
    for key, ids in (vuln.get("product_status") or {}).items():
        status = STATUS_GROUP.get(key)
        if status is None:
            continue
        for pid in ids:
            if pid not in seen:
                seen.add(pid)
                yield status, pid


def _severities(doc: Mapping[str, Any], warnings: list[str]) -> list[AdvisorySeverity]:
    document = doc["document"]
    publisher = document["publisher"]["name"]
    out: list[AdvisorySeverity] = []
    aggregate = get_in(document, "aggregate_severity", "text")
    if aggregate:
        out.append(AdvisorySeverity("CSAF", aggregate, None, publisher))
    for v, vuln in enumerate(doc.get("vulnerabilities") or ()):
        for i, score in enumerate(vuln.get("scores") or ()):
            for key, kind in _CVSS_KEYS:
                cvss = score.get(key)
                if cvss is None:
                    continue
                add_cvss(out, warnings, kind, cvss, publisher, ["vulnerabilities", v, "scores", i, key])
    return out


def _advisory(doc: Mapping[str, Any], index: ProductTree, path: str, warnings: list[str]) -> Advisory:
    document = doc["document"]
    tracking = document["tracking"]
    vulns = doc.get("vulnerabilities") or ()
    affected = [
        AffectedRange(
            ecosystem=None,
            name=index.products[pid].name,
            purl=index.purl_of(pid),
            range_type="CSAF",
            status=status,
            product_id=pid,
        )
        for vuln in vulns
        for status, pid in _status_entries(vuln)
    ]
    return Advisory(
        advisory_id=tracking["id"],
        modified=parse_time(
            tracking["current_release_date"], path=path, pointer="/document/tracking/current_release_date"
        ),
        published=parse_time(
            tracking["initial_release_date"], path=path, pointer="/document/tracking/initial_release_date"
        ),
        summary=document["title"],
        aliases=_unique(v["cve"] for v in vulns if "cve" in v),
        cwes=_unique(v["cwe"]["id"] for v in vulns if "cwe" in v),
        severities=_severities(doc, warnings),
        # The same product is often listed for several vulnerabilities; one row says it all.
        affected=_unique_rows(affected),
    )


def _unique_rows(rows: list[AffectedRange]) -> list[AffectedRange]:
    out: list[AffectedRange] = []
    for row in rows:
        if row not in out:
            out.append(row)
    return out


def _statements_by_product(vuln: Mapping[str, Any], key: str, index: ProductTree) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in vuln.get(key) or ():
        if key == "threats" and item.get("category") != "impact":
            continue
        for pid in index.members(item):
            text = item.get("label") if key == "flags" else item.get("details")
            if text and text not in out.setdefault(pid, []):
                out[pid].append(text)
    return out


def _joined(texts: Mapping[str, list[str]], pid: str) -> str | None:
    return "\n".join(texts.get(pid, ())) or None


def _vex_statements(doc: Mapping[str, Any], index: ProductTree, path: str) -> list[VexStatement]:
    timestamp = parse_time(
        doc["document"]["tracking"]["current_release_date"],
        path=path,
        pointer="/document/tracking/current_release_date",
    )
    out: list[VexStatement] = []
    for vuln in doc.get("vulnerabilities") or ():
        ids = [item["text"] for item in vuln.get("ids") or ()]
        vuln_id = vuln.get("cve") or ids[0]
        flags = _statements_by_product(vuln, "flags", index)
        impacts = _statements_by_product(vuln, "threats", index)
        actions = _statements_by_product(vuln, "remediations", index)
        for status, pid in _status_entries(vuln):
            product = index.products[pid]
            out.append(
                VexStatement(
                    vulnerability_id=vuln_id,
                    product=product.purl or product.name,
                    status=VexStatus(status),
                    aliases=[i for i in ids if i != vuln_id],
                    product_purl=index.purl_of(pid),
                    justification=next(iter(flags.get(pid, ())), None),
                    impact_statement=_joined(impacts, pid) if status == "not_affected" else None,
                    action_statement=_joined(actions, pid) if status == "affected" else None,
                    timestamp=timestamp,
                )
            )
    return out


def _first_product_name(index: ProductTree) -> str | None:
    return next((p.name for p in index.products.values()), None)


class CsafVexFormat:
    """CSAF 2.0 documents of category ``csaf_vex``: one VEX statement per vulnerability and product."""

    name = "csaf-vex"
    kind = DocumentKind.VEX
    media_type = CSAF_MEDIA_TYPE
    streams = False

    def sniff(self, candidate: Candidate) -> bool:
        """A JSON object whose ``document`` has a ``csaf_version`` and category ``csaf_vex``."""
        return _category(candidate) == "csaf_vex"

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Validate (schema, mandatory tests, VEX profile tests) and normalize to VEX statements."""
        doc, index = _load(candidate)
        category = doc["document"]["category"]
        if category != "csaf_vex":
            raise SchemaError(
                f"document category is {category!r}, not 'csaf_vex'; import it with format 'csaf'",
                path=candidate.path,
                pointer="/document/category",
            )
        statements = _vex_statements(doc, index, candidate.path)
        document_id = doc["document"]["tracking"]["id"]
        return ParsedDocument(
            format=self.name,
            kind=self.kind,
            media_type=self.media_type,
            document_id=document_id,
            subject=statements[0].product if statements else (_first_product_name(index) or document_id),
            format_version=doc["document"]["csaf_version"],
            vex=statements,
        )


class CsafAdvisoryFormat:
    """CSAF 2.0 documents of any category but ``csaf_vex``: one advisory per document."""

    name = "csaf"
    kind = DocumentKind.ADVISORY
    media_type = CSAF_MEDIA_TYPE
    streams = False

    def sniff(self, candidate: Candidate) -> bool:
        """A JSON object whose ``document`` has a ``csaf_version`` and a category other than ``csaf_vex``."""
        category = _category(candidate)
        return category is not None and category != "csaf_vex"

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Validate (schema and mandatory tests) and normalize to one :class:`Advisory`."""
        doc, index = _load(candidate)
        warnings: list[str] = []
        advisory = _advisory(doc, index, candidate.path, warnings)
        subject = advisory.affected[0].name if advisory.affected else _first_product_name(index)
        return ParsedDocument(
            format=self.name,
            kind=self.kind,
            media_type=self.media_type,
            document_id=advisory.advisory_id,
            subject=subject or advisory.advisory_id,
            format_version=doc["document"]["csaf_version"],
            advisories=[advisory],
            warnings=warnings,
        )


CSAF_VEX = CsafVexFormat()
CSAF = CsafAdvisoryFormat()
FORMATS: tuple[SourceFormat, ...] = (CSAF_VEX, CSAF)
