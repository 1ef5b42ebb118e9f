"""The committed OpenAPI contract (docs/openapi.json) is what the server serves, and two validators accept it.

Regenerate after changing the API: ``.venv/bin/python scripts/openapi.py spec`` (then ``... sdk``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from tests.conftest import ROOT, require_tool
from tests.contract.conftest import Served

SPEC = ROOT / "docs" / "openapi.json"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _committed() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SPEC.read_text(encoding="utf-8"))
    return doc


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op) for path, item in doc["paths"].items() for method, op in item.items() if method in METHODS
    ]


def _resolved(doc: dict[str, Any], node: Any, seen: frozenset[str] = frozenset()) -> Any:
    """``node`` with every ``$ref`` into ``doc`` replaced by what it names (a cycle is cut)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/") and ref not in seen:
            target: Any = doc
            for part in ref[2:].split("/"):
                target = target[part]
            return _resolved(doc, target, seen | {ref})
        return {k: _resolved(doc, v, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolved(doc, v, seen) for v in node]
    return node


def test_the_served_spec_is_the_committed_one(served: Served) -> None:
    response = httpx.get(f"{served.base_url}/.well-known/openapi")
    assert response.status_code == 200
    assert response.json() == _committed(), "docs/openapi.json is stale: run `python scripts/openapi.py spec`"
    etag = response.headers["etag"]
    again = httpx.get(f"{served.base_url}/.well-known/openapi", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""


def test_the_spec_is_valid_openapi_3_1() -> None:
    doc = _committed()
    assert doc["openapi"].startswith("3.1.")
    validate(doc)  # openapi-spec-validator: raises on any violation of the OpenAPI 3.1 schema


@pytest.mark.interop
def test_openapi_generator_validates_the_spec(tmp_path: Path) -> None:
    require_tool("java")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "openapi-generator-cli"), "validate", "-i", str(SPEC)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No validation issues detected" in result.stdout


def test_every_operation_has_examples_and_problem_errors() -> None:
    doc = _committed()
    missing_examples, not_problem = [], []
    for path, method, op in _operations(doc):
        if '"example' not in json.dumps(_resolved(doc, op)):
            missing_examples.append(f"{method.upper()} {path}")
        for status, response in op.get("responses", {}).items():
            if status[:1] in "45":
                media = set(response.get("content", {}))
                if media != {"application/problem+json"}:
                    not_problem.append(f"{method.upper()} {path} {status}: {sorted(media)}")
    assert not missing_examples, f"operations without an example: {missing_examples}"
    assert not not_problem, f"errors not documented as problem+json: {not_problem}"


def test_every_operation_says_how_it_is_authorised() -> None:
    doc = _committed()
    schemes = doc.get("components", {}).get("securitySchemes", {})
    assert schemes, "no security scheme declared"
    public = {"/health/ready", "/health/live"}
    unsecured = [
        f"{method.upper()} {path}"
        for path, method, op in _operations(doc)
        if path not in public and not (op.get("security") or doc.get("security"))
    ]
    assert not unsecured, f"operations without a security requirement: {unsecured}"


def test_every_error_response_is_documented_as_a_problem() -> None:
    doc = _committed()
    not_problem = [
        f"{method.upper()} {path} {status}: {sorted(response.get('content', {}))}"
        for path, method, op in _operations(doc)
        for status, response in op.get("responses", {}).items()
        if status[:1] in "45" and set(response.get("content", {})) != {"application/problem+json"}
    ]
    assert not not_problem, f"errors not documented as problem+json: {not_problem}"
