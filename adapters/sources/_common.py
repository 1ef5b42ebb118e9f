"""Helpers shared by the source adapters: vendored schemas, times, purls, pointers."""

from __future__ import annotations

import _csv
import contextlib
import csv
import functools
import io
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from importlib import resources
from typing import Any

import orjson
from packageurl import PackageURL

from adapters.sources._yaml import load_yaml
from core.errors import SchemaError
from core.schema import SchemaValidator
from core.sources import Candidate

SCHEMA_PACKAGE = "adapters.sources.schemas"


def load_schema(relpath: str) -> dict[str, Any]:
    """Load a vendored schema (JSON or YAML) from ``adapters/sources/schemas/<relpath>``."""
    ref = resources.files(SCHEMA_PACKAGE).joinpath(relpath)
    data = ref.read_bytes()
    if relpath.endswith((".yaml", ".yml")):
        loaded: dict[str, Any] = load_yaml(data, path=relpath)
        return loaded
    parsed: dict[str, Any] = orjson.loads(data)
    return parsed


@functools.cache
def validator(label: str, relpath: str, resources_: tuple[tuple[str, str], ...] = ()) -> SchemaValidator:
    """A compiled, cached validator for a vendored schema.

    ``resources_`` maps the URLs the schema ``$ref``s to other vendored files.
    """
    side = {url: load_schema(path) for url, path in resources_}
    return SchemaValidator(label, load_schema(relpath), resources=side)


_FRACTION = re.compile(r"\.(\d+)")
_PLAIN_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[Zz]\Z")


def parse_time(value: Any, *, path: str, pointer: str, required: bool = False) -> datetime | None:
    """Parse an RFC 3339 / ISO 8601 timestamp into naive UTC; ``None`` passes through unless required."""
    if value is None or value == "":
        if required:
            raise SchemaError("a timestamp is required here", path=path, pointer=pointer)
        return None
    if not isinstance(value, str):
        raise SchemaError(f"expected a timestamp string, got {type(value).__name__}", path=path, pointer=pointer)
    if _PLAIN_UTC.match(value):  # the common shape, 2024-05-01T12:00:00Z: the same value, without the rewriting below
        with contextlib.suppress(ValueError):  # not a real date or time: the full path below says so
            return datetime.fromisoformat(value[:19])
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.11 accepts at most 6 fractional digits; some feeds send 9.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    # EPSS writes offsets as +0000.
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise SchemaError(f"{value!r} is not an RFC 3339 timestamp", path=path, pointer=pointer) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def parse_date(value: Any, *, path: str, pointer: str) -> date | None:
    """Parse a ``YYYY-MM-DD`` date; ``None``/empty passes through."""
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise SchemaError(f"{value!r} is not a YYYY-MM-DD date", path=path, pointer=pointer) from None


#: Distinct package URLs whose verdict is remembered: feeds name the same packages over and over.
_PURL_CACHE = 1 << 16


#: A package URL of the plainest shape: a type, a name (with a namespace or not) and perhaps a version, of letters,
#: digits and ``._~-`` only. packageurl parses every such string (nothing in it can be missing, percent-encoded,
#: a qualifier or a subpath), so it is accepted without building the object; any other goes through packageurl.
_PLAIN_PURL = re.compile(r"pkg:[A-Za-z][A-Za-z0-9._-]*/[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*(?:@[A-Za-z0-9._~+-]+)?\Z")


def purl_problem(value: Any) -> str | None:
    """Why ``value`` is not a package URL (packageurl's message), or None when it is one."""
    if isinstance(value, str):
        return None if _PLAIN_PURL.match(value) else _purl_problem(value)
    return _parse_purl(value)


@functools.lru_cache(maxsize=_PURL_CACHE)
def _purl_problem(value: str) -> str | None:
    return _parse_purl(value)


def _parse_purl(value: Any) -> str | None:
    try:
        PackageURL.from_string(value)
    except ValueError as exc:
        return str(exc)
    return None


def check_purl(value: str, *, path: str, pointer: str) -> str:
    """Return ``value`` if it is a valid package URL, else raise naming the problem."""
    problem = purl_problem(value)
    if problem is not None:
        raise SchemaError(f"invalid package URL {value!r}: {problem}", path=path, pointer=pointer)
    return value


def is_purl(value: Any) -> bool:
    """True when ``value`` parses as a package URL."""
    if not isinstance(value, str) or not value.startswith("pkg:"):
        return False
    return purl_problem(value) is None


def first_line(candidate: Candidate) -> str:
    """The first line of a text document, from its first bytes only (sniffing must stay cheap)."""
    head = candidate.data[:512].decode("utf-8", "replace").lstrip("\ufeff")
    return head.split("\n", 1)[0].rstrip("\r")


def csv_rows(candidate: Candidate, what: str) -> _csv.Reader:
    """A CSV reader over the document's text (quoted multi-line fields allowed); ``what`` names it in errors."""
    try:
        text = candidate.text
    except UnicodeDecodeError as exc:
        raise SchemaError(f"the {what} is not UTF-8 text: {exc}", path=candidate.path) from None
    return csv.reader(io.StringIO(text, newline=""))


def get_in(obj: Any, *keys: str | int) -> Any:
    """Nested lookup that returns ``None`` instead of raising on a missing step."""
    cur = obj
    for key in keys:
        if isinstance(key, int):
            if not isinstance(cur, list) or key >= len(cur):
                return None
            cur = cur[key]
        else:
            if type(cur) is not dict and not isinstance(cur, Mapping):  # a dict, as parsed JSON is, checked first
                return None
            cur = cur.get(key)
        if cur is None:
            return None
    return cur
