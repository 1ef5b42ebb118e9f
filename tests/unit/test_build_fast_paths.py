"""The build's fast paths give the bytes of the checked paths they stand in for (issue 20)."""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from typing import Any

import pytest

from adapters.profiles._records import _AFFECTED_FIELDS, _affected, _affected_order, _nulls_last, advisory_json
from core.bundle import ResolvedInput, _dependencies_json, _dependency
from core.canonical import canonical_json, plain_float
from core.evidence_seal import _hash_artifacts
from core.merkle import inclusion_proofs, root


def _record(*scores: Any) -> dict[str, Any]:
    return {
        "tenant": "default",
        "advisoryId": "GHSA-xxxx-é",
        "documentSha256": "ab" * 32,
        "sourceFormat": "osv",
        "modified": "2026-01-02T03:04:05Z",
        "aliases": ["CVE-2026-1", "\u2028\x00\x1f"],
        "severities": [
            {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N", **({} if s is None else {"baseScore": s})} for s in scores
        ],
        "affected": [{"ecosystem": "PyPI", "name": "x", "versions": ["1.0", None, "𝔘"]}],
    }


@pytest.mark.parametrize(
    "scores",
    [(), (None,), (7.5,), (9.8, 0.1), (10.0,), (7.5, 10.0), (0.0,), (1e-5,), (1e15 + 0.5,), (-3.3,), (2.5e-4,)],
)
def test_advisory_json_is_canonical_json(scores: tuple[Any, ...]) -> None:
    record = _record(*scores)
    assert advisory_json(record) == canonical_json(record)
    del record["severities"]
    assert advisory_json(record) == canonical_json(record)


def test_advisory_json_refuses_what_canonical_json_refuses() -> None:
    for bad in (math.nan, math.inf):
        with pytest.raises(Exception) as checked:
            canonical_json(_record(bad))
        with pytest.raises(type(checked.value)):
            advisory_json(_record(bad))


def test_plain_float() -> None:
    assert plain_float(7.5) and plain_float(1e-4 + 1e-9) and not plain_float(10.0) and not plain_float(math.nan)


def test_dependencies_json_is_each_canonical_json_joined() -> None:
    inputs: list[Any] = [
        ResolvedInput(hashlib.sha256(str(i).encode()).hexdigest(), "advisory", "osv", f'GHSA-{i}-ü\u2028"\\')
        for i in range(50)
    ]
    expected = b",".join(canonical_json(_dependency(i)) for i in inputs)
    assert _dependencies_json(inputs) == expected
    mixed = [*inputs[:3], {"uri": "stella:state/x", "digest": {"sha256": "00" * 32}, "annotations": {"n": 10.0}}]
    assert _dependencies_json(mixed) == b",".join(canonical_json(_dependency(i)) for i in mixed)


def test_seal_hashes_match_merkle() -> None:
    leaves = [b"", b"a", b"x" * 100_000, bytes(range(256)) * 9]
    digests, hashes = _hash_artifacts(leaves)
    assert digests == [hashlib.sha256(leaf).hexdigest() for leaf in leaves]
    from core.merkle import _all_paths

    tree_root, paths = _all_paths(hashes)
    assert tree_root == root(leaves)
    assert paths == inclusion_proofs(leaves)


def _nested_order(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The affected packages' order as it was written before: a tuple of (is None, value) pairs."""
    _, _, ecosystem, name, purl, range_type, introduced, fixed, last, limit, versions, status, product = row
    listed = None if versions is None else tuple(_nulls_last(v) for v in versions)
    return tuple(
        _nulls_last(v)
        for v in (ecosystem, name, introduced, fixed, last, status, range_type, purl, limit, listed, product)
    )


def test_affected_order_is_the_nested_order() -> None:
    rng = random.Random(20)
    values = [None, "", "a", "b", "é", "𝔘", "A"]

    def pick() -> Any:
        return rng.choice(values)

    def versions() -> Any:
        return None if rng.random() < 0.3 else [pick() for _ in range(rng.randint(0, 3))]

    rows = [
        (1, "X", pick(), pick(), pick(), pick(), pick(), pick(), pick(), pick(), versions(), pick(), pick())
        for _ in range(5000)
    ]
    assert sorted(rows, key=_affected_order) == sorted(rows, key=_nested_order)
    for a, b in itertools.pairwise(rows):
        assert (_affected_order(a) < _affected_order(b)) == (_nested_order(a) < _nested_order(b))


@pytest.mark.parametrize(("offset", "size"), [(0, 0), (123, 4567), (2**53 - 10, 9), (2**53 - 10, 10), (2**60, 1)])
def test_index_json_is_canonical_json(offset: int, size: int) -> None:
    from adapters.profiles.json_raw import _index_json

    line = {
        "sha256": "ab" * 32,
        "offset": offset,
        "size": size,
        "mediaType": "application/json",
        "format": "osv",
        "documentId": 'GHSA-é\u2028"x',
    }
    try:
        expected = canonical_json(line)
    except Exception as exc:  # a number past 2**53 - 1: the same refusal
        with pytest.raises(type(exc)):
            _index_json(line)
    else:
        assert _index_json(line) == expected


def test_affected_is_the_named_non_null_fields_in_order() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        row = (1, "X", *(rng.choice([None, "v", ["1", None]]) for _ in _AFFECTED_FIELDS))
        expected = {k: v for k, v in zip(_AFFECTED_FIELDS, row[2:], strict=True) if v is not None}
        got = _affected(row)
        assert got == expected and list(got) == list(expected)
