"""FIRST EPSS daily scores CSV.

Layout: an optional ``#model_version:<v>,score_date:<RFC 3339>`` comment line, then the header
``cve,epss,percentile``, then one row per CVE. When the comment line is present it must carry
both values; when it is absent (some mirrors strip it) the snapshot is accepted with an unknown
model and date, and a warning. Every row needs a CVE ID, and ``epss`` and ``percentile`` are
probabilities in [0, 1]; each CVE appears once. Real files have ~300,000 rows, so rows are read
with ``csv.reader`` as a stream and turned straight into records.
"""

from __future__ import annotations

import math
import re

from adapters.sources._common import csv_rows, first_line, parse_time
from core.errors import SchemaError
from core.records import DocumentKind, EpssScore, EpssSnapshot, ParsedDocument
from core.sources import Candidate, SourceFormat

HEADER = ("cve", "epss", "percentile")
COMMENT_PREFIX = "#model_version:"
_CVE = re.compile(r"CVE-[0-9]{4}-[0-9]{4,}")


def _metadata(line: str, path: str) -> tuple[str, str]:
    """``(model_version, score_date)`` from the comment line; both are required once it is there."""
    fields: dict[str, str] = {}
    for part in line[1:].split(","):
        key, sep, value = part.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    for key in ("model_version", "score_date"):
        if not fields.get(key):
            raise SchemaError(f"line 1: the #model_version comment line has no {key}", path=path)
    return fields["model_version"], fields["score_date"]


def _probability(text: str, column: str, line: int, path: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SchemaError(f"line {line}, column {column}: {text!r} is not a number", path=path) from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise SchemaError(f"line {line}, column {column}: {text} is outside [0, 1]", path=path)
    return value


class EpssFormat:
    """The ``epss`` source format."""

    name = "epss"
    kind = DocumentKind.EPSS
    media_type = "text/csv"

    def sniff(self, candidate: Candidate) -> bool:
        """The first line is the ``#model_version:`` comment or exactly ``cve,epss,percentile``."""
        first = first_line(candidate)
        return first.startswith(COMMENT_PREFIX) or first == ",".join(HEADER)

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Read the metadata, check the header, then stream and check every row."""
        path = candidate.path
        reader = csv_rows(candidate, "EPSS file")
        first = next(reader, [])
        model_version = score_date = None
        warnings: list[str] = []
        if first and first[0].startswith("#"):
            model_version, date_text = _metadata(",".join(first), path)
            try:
                score_date = parse_time(date_text, path=path, pointer="", required=True)
            except SchemaError as exc:
                raise SchemaError(f"line 1: score_date {exc.message}", path=path) from None
            header = next(reader, [])
        else:
            header = first
            warnings.append("no #model_version comment line: the model version and score date are unknown")
        if tuple(h.strip() for h in header) != HEADER:
            raise SchemaError(
                f"line {reader.line_num}: the header must be exactly {','.join(HEADER)}; found {','.join(header)!r}",
                path=path,
            )
        scores: list[EpssScore] = []
        seen: set[str] = set()
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != len(HEADER):
                raise SchemaError(f"line {line} has {len(row)} fields, expected 3", path=path)
            cve = row[0].strip()
            if not _CVE.fullmatch(cve):
                raise SchemaError(f"line {line}, column cve: {cve!r} is not a CVE ID", path=path)
            if cve in seen:
                raise SchemaError(f"line {line}: {cve} appears twice", path=path)
            seen.add(cve)
            epss = _probability(row[1], "epss", line, path)
            scores.append(EpssScore(cve, epss, _probability(row[2], "percentile", line, path)))
        if not scores:
            raise SchemaError("the EPSS file has a header but no scores", path=path)
        marker = score_date.date().isoformat() if score_date else "undated"
        return ParsedDocument(
            format=self.name,
            kind=self.kind,
            media_type=self.media_type,
            document_id=f"epss:{marker}",
            subject="first-epss",
            epss=EpssSnapshot(model_version=model_version, score_date=score_date, scores=scores),
            warnings=warnings,
        )


EPSS = EpssFormat()
FORMATS: tuple[SourceFormat, ...] = (EPSS,)
