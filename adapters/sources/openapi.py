"""OpenAPI descriptions (3.0, 3.1; and Swagger 2.0) as a developer portal ships them, validated offline.

A spec is JSON or YAML. It is validated against the official schema of its version, vendored under
``schemas/openapi/`` (OAI/OpenAPI-Specification: the 3.0 schema, draft-04; the 3.1 schema, draft 2020-12, which
checks the document but not its Schema Objects; the Swagger 2.0 schema). A spec that fails is refused with the
first violation and its JSON pointer. YAML is read with the one safe loader (``_yaml``: aliases and their
expansion bounded) and turned into the JSON data model first: mapping keys become strings (``200:`` response
codes are integers in YAML) and dates become their ISO text, as a JSON parser would have seen them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson

from adapters.sources._common import validator
from adapters.sources._yaml import load_yaml
from core.errors import SchemaError, UnsupportedFormatError
from core.schema import SchemaValidator
from core.sources import decode_text
from core.strict_json import check_no_repeated_keys

#: IANA media types of OpenAPI documents (JSON and YAML forms).
MEDIA_TYPE_JSON = "application/vnd.oai.openapi+json"
MEDIA_TYPE_YAML = "application/vnd.oai.openapi"

_SUFFIXES = (".json", ".yaml", ".yml")
#: How much of a file the cheap check looks at for a top-level ``openapi`` / ``swagger`` key.
_SNIFF_BYTES = 4096


@dataclass(frozen=True)
class OpenApiSpec:
    """A validated API description: which specification version it follows, and what it calls itself."""

    spec_version: str  # the document's ``openapi`` (or ``swagger``) value, e.g. "3.1.0"
    title: str
    api_version: str
    media_type: str


def looks_like_openapi(name: str, data: bytes) -> bool:
    """Cheap check: a JSON/YAML file whose top level names ``openapi`` or ``swagger`` (no full parse)."""
    if not name.lower().endswith(_SUFFIXES):
        return False
    head = data[:_SNIFF_BYTES].decode("utf-8", "replace")
    if name.lower().endswith(".json"):
        return '"openapi"' in head or '"swagger"' in head
    return any(line.startswith(("openapi:", "swagger:", '"openapi":', '"swagger":')) for line in head.splitlines())


def _validator_for(version: str, *, path: str) -> SchemaValidator:
    if version.startswith("3.1."):
        return validator("OpenAPI 3.1 schema", "openapi/oas-3.1-schema.yaml")
    if version.startswith("3.0."):
        return validator("OpenAPI 3.0 schema", "openapi/oas-3.0-schema.yaml")
    if version == "2.0":
        return validator("Swagger 2.0 schema", "openapi/swagger-2.0-schema.json")
    raise UnsupportedFormatError(
        f"OpenAPI version {version!r} is not supported",
        path=path,
        pointer="/openapi",
        hint="stella validates OpenAPI 3.0.x and 3.1.x (and Swagger 2.0) descriptions",
    )


def _json_model(value: Any) -> Any:
    """YAML's data model narrowed to JSON's: string keys, ISO dates, no other scalar types."""
    if isinstance(value, dict):
        return {str(k).lower() if isinstance(k, bool) else str(k): _json_model(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_model(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def load_document(path: str, data: bytes) -> Any:
    """Parse a JSON or YAML document into JSON data; a syntax error is a :class:`SchemaError` (exit 3)."""
    try:
        text = decode_text(data)
    except UnicodeDecodeError as exc:
        raise SchemaError(f"not UTF-8 text: {exc}", path=path) from None
    if path.lower().endswith(".json"):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise SchemaError(f"malformed JSON: {exc}", path=path) from None
        check_no_repeated_keys(text, path=path)
        return value
    return _json_model(load_yaml(text, path=path))


def validate_openapi(path: str, data: bytes) -> OpenApiSpec:
    """Validate an OpenAPI document against the official schema of its version.

    Raises :class:`SchemaError` (the first violation, with its JSON pointer) or :class:`UnsupportedFormatError`
    for a version other than 3.0.x, 3.1.x or Swagger 2.0; both exit 3.
    """
    doc = load_document(path, data)
    if not isinstance(doc, dict):
        raise SchemaError("an OpenAPI description must be an object at the top level", path=path, pointer="")
    raw_version = doc.get("openapi", doc.get("swagger"))
    if raw_version is None:
        raise SchemaError("not an OpenAPI description: no 'openapi' (or 'swagger') field", path=path, pointer="")
    key = "openapi" if "openapi" in doc else "swagger"
    if not isinstance(raw_version, str):
        raise SchemaError(
            f"'{key}' must be a version string such as \"3.1.0\", not {raw_version!r}",
            path=path,
            pointer=f"/{key}",
            hint='quote the version in YAML: openapi: "3.0.3"',
        )
    _validator_for(raw_version, path=path).check(doc, path=path)
    info_value = doc.get("info")
    info: dict[str, Any] = info_value if isinstance(info_value, dict) else {}
    media = MEDIA_TYPE_JSON if path.lower().endswith(".json") else MEDIA_TYPE_YAML
    return OpenApiSpec(raw_version, str(info.get("title", "")), str(info.get("version", "")), media)
