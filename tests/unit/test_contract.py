"""Wire facts are spelled once: no string constant of ``core/contract`` appears as a literal anywhere else in the
product (``app``, ``services``, ``core``, ``adapters``, ``verify``); writers and verifiers import it instead."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import ROOT

CONTRACT = ROOT / "core" / "contract"
PRODUCT = ("app", "services", "core", "adapters", "verify")
#: The typed manifest is a parser, not a table of wire facts: its strings are the manifest's JSON keys.
NOT_FACTS = {"manifest.py"}
#: Constants of the contract that are also ordinary words elsewhere, with the reason each may be spelled again.
ALLOWED = {
    "db": "Trivy's cache directory of trivy.db, and the variant of the trivy:db profile",
    "java-db": "Trivy's cache directory of trivy-java.db, and the variant of the trivy:java-db profile",
}


def _literals(path: Path) -> Iterator[tuple[str, int]]:
    """Every string literal of a module (f-string parts included), docstrings and ``__all__``'s names excepted."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            docstrings.update(id(c) for c in ast.walk(node.value) if isinstance(c, ast.Constant))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.value, node.lineno


def _contract() -> dict[str, str]:
    facts: dict[str, str] = {}
    for module in sorted(CONTRACT.glob("*.py")):
        if module.name not in NOT_FACTS:
            for text, line in _literals(module):
                facts.setdefault(text, f"{module.relative_to(ROOT)}:{line}")
    return facts


def test_the_contract_has_facts_to_check() -> None:
    facts = _contract()
    assert {"export.json", "application/vnd.in-toto+json", "attestations/documents/", "risk/manifest.json"} <= set(
        facts
    )
    assert set(ALLOWED) <= set(facts), "an allowed spelling that is no longer in the contract: drop it"


def test_no_string_constant_of_the_contract_is_spelled_twice() -> None:
    facts = _contract()
    again = []
    for package in PRODUCT:
        for module in sorted((ROOT / package).rglob("*.py")):
            if module.parent == CONTRACT:
                continue
            for text, line in _literals(module):
                if text in facts and text not in ALLOWED:
                    again.append(f"{module.relative_to(ROOT)}:{line} spells {text!r} (defined in {facts[text]})")
    assert not again, "import it from core.contract instead:\n" + "\n".join(again)


def test_each_fact_is_defined_once_in_the_contract() -> None:
    seen: dict[str, str] = {}
    twice = []
    for module in sorted(CONTRACT.glob("*.py")):
        if module.name in NOT_FACTS:
            continue
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                where = f"{module.name}:{node.lineno}"
                if node.value.value in seen:
                    twice.append(f"{node.value.value!r} at {seen[node.value.value]} and {where}")
                seen.setdefault(node.value.value, where)
    assert not twice
