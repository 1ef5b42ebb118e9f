"""CVE JSON 5.x importer: published and rejected CVE records (cvelistV5, CVE Services).

The bundled CVE 5.1.1 record schema is a ``oneOf`` of a published and a rejected record, which
makes every failure an unreadable "not valid under any of the schemas" at the root; the
record's own ``cveMetadata.state`` picks the branch instead, so errors point at the real place.
One relaxation: the schema's ``uri`` format is checked as "has a scheme", because CVE Services
itself publishes records (e.g. GitLab's ``git://git@gitlab.com:...`` repo URLs) that a strict
RFC 3986 check rejects, and real records must import.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from adapters.sources._common import get_in, is_purl, load_schema, parse_time
from adapters.sources._csaf_checks import add_cvss, json_object
from core.errors import SchemaError, UnsupportedFormatError
from core.records import Advisory, AdvisorySeverity, AffectedRange, DocumentKind, ParsedDocument
from core.schema import SchemaValidator
from core.sources import Candidate, SourceFormat

CVE5_MEDIA_TYPE = "application/vnd.cve+json;version=5"
_SCHEMA = "cve5/CVE_JSON_bundled_5.1.1.json"
_BRANCH = {"PUBLISHED": 0, "REJECTED": 1}
_METRICS = (
    ("cvssV4_0", "CVSS_V4"),
    ("cvssV3_1", "CVSS_V3"),
    ("cvssV3_0", "CVSS_V3"),
    ("cvssV2_0", "CVSS_V2"),
)
# CVE 'unaffected' is the other formats' 'not_affected'.
_STATUS = {"affected": "affected", "unaffected": "not_affected", "unknown": "unknown"}
_CWE_TEXT = re.compile(r"^(CWE-\d+)\b")
_MAJOR = re.compile(r"^(\d+)\.")


@functools.cache
def _validator(state: str) -> SchemaValidator:
    """The schema branch for one record state, with the lenient ``uri`` check described above."""
    schema = load_schema(_SCHEMA)
    definitions = dict(schema["definitions"])
    uri = {key: value for key, value in definitions["uriType"].items() if key != "format"}
    definitions["uriType"] = {**uri, "pattern": "^[A-Za-z][A-Za-z0-9+.-]*:"}
    root = {"$schema": schema["$schema"], **schema["oneOf"][_BRANCH[state]], "definitions": definitions}
    return SchemaValidator(f"CVE JSON 5 schema ({state.lower()} record)", root)


def _english(descriptions: Iterable[Mapping[str, Any]] | None) -> str | None:
    """The first English text of a CVE descriptions list, else the first text at all."""
    items = list(descriptions or ())
    for item in items:
        if str(item.get("lang", "")).lower().replace("_", "-").split("-")[0] == "en":
            return str(item["value"])
    return str(items[0]["value"]) if items else None


def _cwes(containers: list[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for container in containers:
        for problem in container.get("problemTypes") or ():
            for desc in problem.get("descriptions") or ():
                # Some CNAs (curl) write "CWE-125 Out-of-bounds Read" without a cweId.
                match = _CWE_TEXT.match(desc.get("description", ""))
                cwe = desc.get("cweId") or (match.group(1) if match else None)
                if cwe and cwe not in out:
                    out.append(cwe)
    return out


def _severities(containers: list[Mapping[str, Any]], warnings: list[str]) -> list[AdvisorySeverity]:
    out: list[AdvisorySeverity] = []
    for c, container in enumerate(containers):
        source = get_in(container, "providerMetadata", "shortName")
        for m, metric in enumerate(container.get("metrics") or ()):
            for key, kind in _METRICS:
                cvss = metric.get(key)
                if cvss is None:
                    continue
                where: list[str | int] = ["containers", "cna"] if c == 0 else ["containers", "adp", c - 1]
                add_cvss(out, warnings, kind, cvss, source, [*where, "metrics", m, key])
    return out


def _version_rows(version: Mapping[str, Any], entry: dict[str, Any]) -> list[AffectedRange]:
    """Rows for one ``versions[]`` item; its ``changes`` split it into one row per status run.

    ``changes`` are taken in document order: they can only be re-sorted with the rules of
    their ``versionType``, which for 'custom' are unknown.
    """
    points = [(version["version"], version["status"])]
    points += [(change["at"], change["status"]) for change in version.get("changes") or ()]
    less_than, at_most = version.get("lessThan"), version.get("lessThanOrEqual")
    if less_than is None and at_most is None and len(points) == 1:
        at_most = version["version"]  # a single version, not "this one and later"
    rows = []
    for k, (start, status) in enumerate(points):
        last = k == len(points) - 1
        rows.append(
            AffectedRange(
                **entry,
                range_type=version.get("versionType"),
                introduced=start,
                fixed=less_than if last else points[k + 1][0],
                last_affected=at_most if last else None,
                status=_STATUS[status],
            )
        )
    return rows


def _affected(containers: list[Mapping[str, Any]]) -> list[AffectedRange]:
    rows: list[AffectedRange] = []
    for container in containers:
        for item in container.get("affected") or ():
            vendor, product = item.get("vendor"), item.get("product")
            package_url = item.get("packageURL")  # CVE 5.2; absent from older records
            entry: dict[str, Any] = {
                "ecosystem": item.get("collectionURL"),
                "name": item.get("packageName") or f"{vendor}/{product}",
                "purl": package_url if is_purl(package_url) else None,
                "product_id": f"{vendor}:{product}" if vendor and product else None,
            }
            versions = item.get("versions") or ()
            new = [AffectedRange(**entry, status=_STATUS[item.get("defaultStatus", "unknown")])] if not versions else []
            for version in versions:
                new.extend(_version_rows(version, entry))
            # ADP containers often repeat what the CNA said.
            rows.extend(row for row in new if row not in rows)
    return rows


def _advisory(doc: Mapping[str, Any], path: str, warnings: list[str]) -> Advisory:
    meta = doc["cveMetadata"]
    cna = doc["containers"]["cna"]
    containers = [cna, *doc["containers"].get("adp", ())]
    advisory = Advisory(
        advisory_id=meta["cveId"],
        modified=parse_time(
            meta.get("dateUpdated") or get_in(cna, "providerMetadata", "dateUpdated"),
            path=path,
            pointer="/cveMetadata/dateUpdated",
        ),
        # datePublic (when the flaw went public) stands in when the record has no datePublished.
        published=parse_time(
            meta.get("datePublished") or cna.get("datePublic"),
            path=path,
            pointer="/cveMetadata/datePublished",
        ),
    )
    if meta["state"] == "REJECTED":
        rejected = meta.get("dateRejected") or meta.get("dateUpdated")
        advisory.withdrawn = parse_time(rejected, path=path, pointer="/cveMetadata/dateRejected")
        if advisory.withdrawn is None:
            warnings.append("rejected record gives neither dateRejected nor dateUpdated: withdrawal time unknown")
        advisory.summary = _english(cna["rejectedReasons"])
        advisory.related = list(cna.get("replacedBy", ()))
        return advisory
    advisory.summary = _english(cna["descriptions"])
    advisory.cwes = _cwes(containers)
    advisory.severities = _severities(containers, warnings)
    advisory.affected = _affected(containers)
    return advisory


class Cve5Format:
    """CVE JSON 5.x records in the PUBLISHED or REJECTED state."""

    name = "cve5"
    kind = DocumentKind.ADVISORY
    media_type = CVE5_MEDIA_TYPE
    streams = False

    def sniff(self, candidate: Candidate) -> bool:
        """A JSON object with ``dataType`` ``CVE_RECORD``."""
        data = candidate.json
        return isinstance(data, dict) and data.get("dataType") == "CVE_RECORD"

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Validate against the schema branch of the record's state and normalize to one advisory."""
        path = candidate.path
        doc = json_object(candidate, "CVE record")
        version = doc.get("dataVersion")
        major = _MAJOR.match(version) if isinstance(version, str) else None
        if major is not None and major.group(1) != "5":
            raise UnsupportedFormatError(
                f"CVE JSON data version {version} is not supported; this tool imports CVE JSON 5.x",
                path=path,
                pointer="/dataVersion",
            )
        state = get_in(doc, "cveMetadata", "state")
        if state not in _BRANCH:
            reason = (
                "the CVE ID is only RESERVED: a reserved ID has no published or rejected record to import"
                if state == "RESERVED"
                else f"the record state must be PUBLISHED or REJECTED, not {state!r}"
            )
            raise SchemaError(reason, path=path, pointer="/cveMetadata/state")
        _validator(state).check(doc, path=path)
        warnings: list[str] = []
        advisory = _advisory(doc, path, warnings)
        return ParsedDocument(
            format=self.name,
            kind=self.kind,
            media_type=self.media_type,
            document_id=advisory.advisory_id,
            subject=advisory.affected[0].name if advisory.affected else advisory.advisory_id,
            format_version=doc["dataVersion"],
            advisories=[advisory],
            warnings=warnings,
        )


CVE5 = Cve5Format()
FORMATS: tuple[SourceFormat, ...] = (CVE5,)
