"""The contract between the import pipeline and the per-format source adapters.

An adapter (``adapters/sources/<format>.py``) is an object with a ``name``, a ``sniff`` that
recognises its format cheaply from a :class:`Candidate`, and a ``parse`` that validates the
document (JSON Schema plus semantic checks) and returns a :class:`ParsedDocument`, or raises
:class:`core.errors.SchemaError` / :class:`core.errors.UnsupportedFormatError` with a JSON
pointer to the offending place. ``parse`` must not touch the store.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from core.records import DocumentKind, ParsedDocument
from core.strict_json import check_no_repeated_keys

_NOT_PARSED = object()


@dataclass
class Candidate:
    """One input document as the pipeline sees it before any adapter has claimed it."""

    path: str
    data: bytes
    _json: Any = _NOT_PARSED
    _json_error: str | None = None
    _text: str | None = None

    @property
    def text(self) -> str:
        """The document decoded as text (UTF-8, or UTF-16/32 when a BOM says so)."""
        if self._text is None:
            self._text = decode_text(self.data)
        return self._text

    @property
    def json(self) -> Any:
        """The parsed JSON value, a list of values for JSON Lines, or ``None`` if not JSON.

        Raises :class:`core.errors.SchemaError` (exit 3, with the JSON pointer) when an object repeats a key:
        see :mod:`core.strict_json`.
        """
        if self._json is _NOT_PARSED:
            self._json, self._json_error = _parse_json(self.data, self)
        return self._json

    @property
    def json_error(self) -> str | None:
        """Why the document is not JSON, when it is not."""
        _ = self.json
        return self._json_error

    @property
    def is_jsonl(self) -> bool:
        """True when the document is JSON Lines (several JSON values, one per line)."""
        return isinstance(self.json, JsonLines)


class JsonLines(list[Any]):
    """The values of a JSON Lines document, one per non-empty line."""


def decode_text(data: bytes) -> str:
    """Decode bytes as text, honouring a UTF-8/16/32 byte-order mark."""
    for bom, enc in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(enc)
    return data.decode("utf-8")


def _parse_json(data: bytes, cand: Candidate) -> tuple[Any, str | None]:
    head = data[:4]
    raw: bytes | str = data
    if head.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            raw = cand.text
        except UnicodeDecodeError as exc:
            return None, f"not valid text: {exc}"
    stripped = raw.lstrip()
    if not stripped or stripped[:1] not in (b"{", b"[", "{", "["):
        return None, "not a JSON document"
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        first_error = str(exc)
    else:
        check_no_repeated_keys(raw, path=cand.path, parsed=value)
        return value, None
    # JSON Lines: one value per line (e.g. ``*.intoto.jsonl``).
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1:
        try:
            values = JsonLines(orjson.loads(ln) for ln in lines)
        except orjson.JSONDecodeError:
            pass
        else:
            for number, line in enumerate(lines, 1):
                check_no_repeated_keys(line, path=cand.path, where=f"JSON Lines value {number}: ")
            return values, None
    return None, f"malformed JSON: {first_error}"


class SourceFormat(Protocol):
    """A per-format importer."""

    name: str
    """Stable format name used by ``--format`` and stored with each document (e.g. ``osv``)."""

    kind: DocumentKind
    """The kind of document this format carries."""

    media_type: str
    """The IANA or vendor media type stored with each document of this format."""

    streams: bool
    """True when ``parse`` reads the document row by row and keeps no rows (EPSS): such a document may be up to
    ``InputLimits.max_document_bytes``; any other is parsed whole and limited to ``max_parsed_document_bytes``."""

    def sniff(self, candidate: Candidate) -> bool:
        """Cheaply decide whether ``candidate`` is in this format (no full validation)."""

    def parse(self, candidate: Candidate) -> ParsedDocument:
        """Validate and normalize; raise ``SchemaError``/``UnsupportedFormatError`` on bad input."""
