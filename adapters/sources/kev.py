"""CISA Known Exploited Vulnerabilities catalog, JSON and CSV forms.

JSON: validated with CISA's published schema, then checked for what the schema cannot say:
``count`` equals the number of entries (a shorter list means a truncated catalog, refused rather
than imported as if complete) and every CVE is listed once. CSV: the header must be exactly
CISA's column list; rows are read with the ``csv`` module (quoted fields may span lines) and get
the same checks, so the CSV and JSON of one release yield identical entries. Empty ``notes`` and
``knownRansomwareCampaignUse`` become ``None`` in both forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from adapters.sources._common import csv_rows, first_line, parse_date, parse_time, validator
from core.errors import SchemaError
from core.records import DocumentKind, KevCatalog, KevEntry, ParsedDocument
from core.sources import Candidate, SourceFormat

SUBJECT = "cisa-kev"
CSV_COLUMNS = (
    "cveID",
    "vendorProject",
    "product",
    "vulnerabilityName",
    "dateAdded",
    "shortDescription",
    "requiredAction",
    "dueDate",
    "knownRansomwareCampaignUse",
    "notes",
    "cwes",
)
# The fields CISA's schema marks required; in CSV "required" can only mean "not empty".
_REQUIRED = CSV_COLUMNS[:8]
_CVE = re.compile(r"CVE-[0-9]{4}-[0-9]{4,19}")
_CWE = re.compile(r"CWE-[0-9]+")


class KevJsonFormat:
    """The ``kev`` source format: ``known_exploited_vulnerabilities.json``."""

    name = "kev"
    kind = DocumentKind.KEV
    media_type = "application/json"
    streams = False

    def sniff(self, candidate: Candidate) -> bool:
        """A JSON object with ``catalogVersion`` and ``vulnerabilities`` (a single entry is not a catalog)."""
        doc = candidate.json
        return isinstance(doc, dict) and "catalogVersion" in doc and "vulnerabilities" in doc

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Validate the catalog and return its entries."""
        path, doc = candidate.path, candidate.json
        if doc is None:
            raise SchemaError(f"not a KEV catalog: {candidate.json_error}", path=path)
        validator("KEV schema", "kev/known_exploited_vulnerabilities_schema.json").check(doc, path=path)
        vulns: list[dict[str, Any]] = doc["vulnerabilities"]
        if doc["count"] != len(vulns):
            raise SchemaError(
                f"the catalog says count {doc['count']} but lists {len(vulns)} vulnerabilities; "
                "it looks truncated or edited",
                path=path,
                pointer="/count",
            )
        seen: dict[str, str] = {}
        entries: list[KevEntry] = []
        for i, vuln in enumerate(vulns):
            place = _Place(path, pointer=f"/vulnerabilities/{i}")
            entries.append(_entry(vuln, vuln.get("cwes") or [], place, seen))
        version = doc["catalogVersion"]
        released = parse_time(doc["dateReleased"], path=path, pointer="/dateReleased", required=True)
        return ParsedDocument(
            format=self.name,
            kind=self.kind,
            media_type=self.media_type,
            document_id=f"kev:{version}",
            subject=SUBJECT,
            kev=KevCatalog(catalog_version=version, date_released=released, entries=entries),
        )


class KevCsvFormat:
    """The ``kev-csv`` source format: ``known_exploited_vulnerabilities.csv``."""

    name = "kev-csv"
    kind = DocumentKind.KEV
    media_type = "text/csv"
    streams = False

    def sniff(self, candidate: Candidate) -> bool:
        """The first line is the KEV CSV header (starts ``cveID,vendorProject``)."""
        return first_line(candidate).startswith("cveID,vendorProject")

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Check the header and every row; the catalog has no version or release time in CSV."""
        path = candidate.path
        reader = csv_rows(candidate, "KEV CSV")
        header = next(reader, [])
        if tuple(header) != CSV_COLUMNS:
            raise SchemaError(
                f"the header must be exactly {','.join(CSV_COLUMNS)}; found {','.join(header)!r}", path=path
            )
        seen: dict[str, str] = {}
        entries: list[KevEntry] = []
        line = reader.line_num + 1
        for row in reader:
            place = _Place(path, line=line)
            if len(row) != len(CSV_COLUMNS):
                raise place.error(f"the row has {len(row)} fields, expected {len(CSV_COLUMNS)}")
            record = dict(zip(CSV_COLUMNS, row, strict=True))
            for column in _REQUIRED:
                if not record[column].strip():
                    raise place.error("the value is empty", column)
            if not _CVE.fullmatch(record["cveID"]):
                raise place.error(f"{record['cveID']!r} is not a CVE ID", "cveID")
            cwes = [c.strip() for c in record["cwes"].split(",") if c.strip()]
            for cwe in cwes:
                if not _CWE.fullmatch(cwe):
                    raise place.error(f"{cwe!r} is not a CWE ID (CWE-<number>)", "cwes")
            entries.append(_entry(record, cwes, place, seen))
            # line_num counts physical lines, so quoted multi-line fields keep positions right.
            line = reader.line_num + 1
        if not entries:
            raise SchemaError("the KEV CSV has a header but no entries", path=path)
        newest = max(e.date_added for e in entries)
        return ParsedDocument(
            format=self.name,
            kind=self.kind,
            media_type=self.media_type,
            # CSV carries no catalog version; the newest dateAdded names the release stably.
            document_id=f"kev-csv:{newest.isoformat()}",
            subject=SUBJECT,
            kev=KevCatalog(catalog_version=None, date_released=None, entries=entries),
        )


@dataclass(frozen=True, slots=True)
class _Place:
    """Where an entry is: a JSON pointer in the JSON form, a line number in the CSV form."""

    path: str
    pointer: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        return self.pointer if self.pointer is not None else f"line {self.line}"

    def error(self, message: str, column: str | None = None) -> SchemaError:
        if self.pointer is not None:
            return SchemaError(message, path=self.path, pointer=self.pointer + (f"/{column}" if column else ""))
        where = f"line {self.line}" + (f", column {column}" if column else "")
        return SchemaError(f"{where}: {message}", path=self.path)


def _date(raw: dict[str, Any], column: str, place: _Place) -> date:
    try:
        parsed = parse_date(raw[column], path=place.path, pointer="")
    except SchemaError as exc:
        raise place.error(exc.message, column) from None
    if parsed is None:
        raise place.error("a date is required", column)
    return parsed


def _entry(raw: dict[str, Any], cwes: list[str], place: _Place, seen: dict[str, str]) -> KevEntry:
    cve = raw["cveID"]
    if cve in seen:
        raise place.error(f"{cve} is listed twice (first at {seen[cve]})", "cveID")
    seen[cve] = str(place)
    return KevEntry(
        cve_id=cve,
        vendor_project=raw["vendorProject"],
        product=raw["product"],
        vulnerability_name=raw["vulnerabilityName"],
        date_added=_date(raw, "dateAdded", place),
        short_description=raw["shortDescription"],
        required_action=raw["requiredAction"],
        due_date=_date(raw, "dueDate", place),
        known_ransomware_campaign_use=raw.get("knownRansomwareCampaignUse") or None,
        notes=raw.get("notes") or None,
        cwes=list(cwes),
    )


KEV_JSON = KevJsonFormat()
KEV_CSV = KevCsvFormat()
FORMATS: tuple[SourceFormat, ...] = (KEV_JSON, KEV_CSV)
