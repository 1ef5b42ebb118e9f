"""FIRST EPSS daily scores CSV.

Layout: an optional ``#model_version:<v>,score_date:<RFC 3339>`` comment line, then the header
``cve,epss,percentile``, then one row per CVE. When the comment line is present it must carry
both values; when it is absent (some mirrors strip it) the snapshot is accepted with an unknown
model and date, and a warning. Every row needs a CVE ID, and ``epss`` and ``percentile`` are
probabilities in [0, 1]; each CVE appears once, and the file ends with a newline (a file cut
mid-row would otherwise import a shortened number such as ``0.`` silently).

Real files have ~300,000 rows; a hostile or future one may have tens of millions. So the rows
are never held: :meth:`EpssFormat.parse` checks every row in one streaming pass (keeping only a
packed 8-byte key per CVE, to find repeats), and the snapshot's :class:`EpssRows` reads the
validated bytes again, row by row, each time the store writes them in batches.
"""

from __future__ import annotations

import _csv
import array
import codecs
import csv
import io
import math
import re
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from adapters.sources._common import first_line, parse_time
from core.errors import SchemaError
from core.records import DocumentKind, EpssScore, EpssSnapshot, ParsedDocument
from core.sources import Candidate, SourceFormat

HEADER = ("cve", "epss", "percentile")
COMMENT_PREFIX = "#model_version:"
_CVE = re.compile(r"CVE-[0-9]{4}-[0-9]{4,}")
_LENGTH_WEIGHT = 10**16
#: The text encodings a byte-order mark announces (as ``core.sources.decode_text`` honours them), UTF-32 first.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _encoding(data: bytes) -> str:
    return next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")


def _reader(data: bytes) -> _csv.Reader:
    """A CSV reader streaming over ``data``'s text (quoted multi-line fields allowed); the text is never whole."""
    text = io.TextIOWrapper(io.BytesIO(data), encoding=_encoding(data), newline="")
    return csv.reader(text)


def _ends_with_newline(data: bytes) -> bool:
    enc = _encoding(data)
    if enc.startswith("utf-8"):
        return data.endswith(b"\n")
    # UTF-16/32 code units are 2 or 4 bytes: decode the last one, in the order the byte-order mark gives.
    unit = 4 if enc == "utf-32" else 2
    order = "le" if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF16_LE)) else "be"
    return data[-unit:].decode(f"{enc}-{order}", "replace") == "\n"


def _line_count(data: bytes) -> int:
    enc = _encoding(data)
    if enc.startswith("utf-8"):
        return data.count(b"\n") + 1
    return data.decode(enc, "replace").count("\n") + 1


def _cve_key(cve: str) -> int | None:
    """A matched CVE ID packed into a signed 64-bit integer (None when its number has more than 12 digits).

    Year and number digits, plus the number's length times 10**16, so ``CVE-2024-0001`` and ``CVE-2024-00001``
    stay different.
    """
    length = len(cve) - 13  # the number's digits beyond the 4 every CVE number has
    if length > 8:
        return None
    return int(cve[4:8] + cve[9:]) + length * _LENGTH_WEIGHT


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
    streams = True

    def sniff(self, candidate: Candidate) -> bool:
        """The first line is the ``#model_version:`` comment or exactly ``cve,epss,percentile``."""
        first = first_line(candidate)
        return first.startswith(COMMENT_PREFIX) or first == ",".join(HEADER)

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Read the metadata, check the header, then stream and check every row; no row is kept."""
        path = candidate.path
        try:
            return self._parse(candidate.data, path)
        except UnicodeDecodeError as exc:
            raise SchemaError(f"the EPSS file is not UTF-8 text: {exc}", path=path) from None
        except csv.Error as exc:
            raise SchemaError(f"the EPSS file is not valid CSV: {exc}", path=path) from None

    def _parse(self, data: bytes, path: str) -> ParsedDocument:
        if data and not _ends_with_newline(data):
            raise SchemaError(
                f"line {_line_count(data)} does not end with a newline: the file looks truncated",
                path=path,
                hint="fetch the EPSS file again; a complete file ends each row with a newline",
            )
        reader = _reader(data)
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
            header_rows = 2
        else:
            header = first
            header_rows = 1
            warnings.append("no #model_version comment line: the model version and score date are unknown")
        if tuple(h.strip() for h in header) != HEADER:
            raise SchemaError(
                f"line {reader.line_num}: the header must be exactly {','.join(HEADER)}; found {','.join(header)!r}",
                path=path,
            )
        keys = array.array("q")
        unusual: set[str] = set()  # CVE IDs whose number is too long to pack: kept as text
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != len(HEADER):
                raise SchemaError(f"line {line} has {len(row)} fields, expected 3", path=path)
            cve = row[0].strip()
            if _CVE.fullmatch(cve) is None:
                raise SchemaError(f"line {line}, column cve: {cve!r} is not a CVE ID", path=path)
            key = _cve_key(cve)
            if key is None:
                if cve in unusual:
                    raise SchemaError(f"line {line}: {cve} appears twice", path=path)
                unusual.add(cve)
            _probability(row[1], "epss", line, path)
            _probability(row[2], "percentile", line, path)
            keys.append(-1 if key is None else key)
        if not keys:
            raise SchemaError("the EPSS file has a header but no scores", path=path)
        _refuse_repeats(keys, data, header_rows, path)
        marker = score_date.date().isoformat() if score_date else "undated"
        return ParsedDocument(
            format=self.name,
            kind=self.kind,
            media_type=self.media_type,
            document_id=f"epss:{marker}",
            subject="first-epss",
            epss=EpssSnapshot(
                model_version=model_version, score_date=score_date, scores=EpssRows(data, header_rows, len(keys))
            ),
            warnings=warnings,
        )


def _refuse_repeats(keys: array.array[int], data: bytes, header_rows: int, path: str) -> None:
    """Raise naming the first line whose CVE appeared on an earlier line (keys sorted, never a set of strings)."""
    packed = pa.Array.from_buffers(pa.int64(), len(keys), [None, pa.py_buffer(keys)])
    order = pc.array_sort_indices(packed)
    ordered = packed.take(order)
    count = len(keys)
    if count < 2:
        return
    same = pc.and_(
        pc.equal(ordered.slice(1), ordered.slice(0, count - 1)), pc.not_equal(ordered.slice(1), pa.scalar(-1))
    )
    if not pc.any(same).as_py():
        return
    later = pc.max_element_wise(order.slice(1), order.slice(0, count - 1)).filter(same)
    repeat_row = pc.min(later).as_py()
    reader = _reader(data)
    for _ in range(header_rows):
        next(reader)
    index = 0
    for row in reader:
        if not row:
            continue
        if index == repeat_row:
            raise SchemaError(f"line {reader.line_num}: {row[0].strip()} appears twice", path=path)
        index += 1
    raise AssertionError("a repeated CVE was found but not located")  # pragma: no cover


class EpssRows:
    """The scores of a validated EPSS file: sized, and read again from the bytes each time it is iterated."""

    def __init__(self, data: bytes, header_rows: int, count: int) -> None:
        self._data = data
        self._header_rows = header_rows
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[EpssScore]:
        reader = _reader(self._data)
        for _ in range(self._header_rows):
            next(reader)
        for row in reader:
            if row:
                yield EpssScore(row[0].strip(), float(row[1]), float(row[2]))

    def __contains__(self, item: object) -> bool:
        return any(item == score for score in self)


EPSS = EpssFormat()
FORMATS: tuple[SourceFormat, ...] = (EPSS,)
