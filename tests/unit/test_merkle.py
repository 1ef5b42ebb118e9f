"""RFC 9162 Merkle trees: the published test vectors, the mutations a verifier must refuse, and agreement between
``core.merkle`` and the second implementation in the sealed bundle's ``verify.py``.

The vectors are the RFC 6962 test data of Certificate Transparency (the eight leaves below), as the transparency-dev
``merkle`` Go module publishes them in ``cmd/proofgen`` (roots of every tree size 1..8, four inclusion proofs and
four consistency proofs); leaf indexes here are 0-based.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from core import merkle
from tests.conftest import ROOT

LEAVES = [
    bytes.fromhex(h)
    for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")
]
ROOTS = {
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
H = {
    "96a2": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f08": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    "bc1a": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "ca85": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37e": ROOTS[4],
    "fac5": ROOTS[2],
    "6e34": ROOTS[1],
    "0ebc": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "b086": "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
}
#: (leaf index, tree size) -> PATH
INCLUSION = {
    (0, 1): [],
    (0, 8): ["96a2", "5f08", "6b47"],
    (5, 8): ["bc1a", "ca85", "d37e"],
    (2, 3): ["fac5"],
    (1, 5): ["6e34", "5f08", "bc1a"],
}
#: (old size, new size) -> PROOF
CONSISTENCY = {
    (1, 1): [],
    (1, 8): ["96a2", "5f08", "6b47"],
    (6, 8): ["0ebc", "ca85", "d37e"],
    (2, 5): ["5f08", "bc1a"],
    (6, 7): ["0ebc", "b086", "d37e"],
}
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _load_script() -> ModuleType:
    """The bundle's offline verifier, imported from its template (it is plain standard-library Python)."""
    path = ROOT / "core" / "bundle_files" / "evidence_verify.py.txt"
    loader = importlib.machinery.SourceFileLoader("evidence_verify_script", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


SCRIPT = _load_script()


def _proof(names: list[str]) -> list[bytes]:
    return [bytes.fromhex(H[n]) for n in names]


def _root(n: int) -> bytes:
    return bytes.fromhex(ROOTS[n])


# -- the vectors --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", sorted(ROOTS))
def test_root_of_every_tree_size_is_the_published_one(size: int) -> None:
    assert merkle.root(LEAVES[:size]).hex() == ROOTS[size]
    assert SCRIPT.mth([SCRIPT.leaf_hash(d) for d in LEAVES[:size]]).hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size"), sorted(INCLUSION))
def test_inclusion_proofs_are_the_published_ones_and_verify(index: int, size: int) -> None:
    expected = _proof(INCLUSION[(index, size)])
    assert merkle.inclusion_proof(index, LEAVES[:size]) == expected
    leaf = merkle.leaf_hash(LEAVES[index])
    assert merkle.verify_inclusion(index, size, leaf, expected, _root(size))
    assert SCRIPT.inclusion_ok(index, size, leaf, expected, _root(size))


@pytest.mark.parametrize(("old", "new"), sorted(CONSISTENCY))
def test_consistency_proofs_are_the_published_ones_and_verify(old: int, new: int) -> None:
    expected = _proof(CONSISTENCY[(old, new)])
    assert merkle.consistency_proof(old, LEAVES[:new]) == expected
    assert merkle.verify_consistency(old, new, _root(old), _root(new), expected)
    assert SCRIPT.consistency_ok(old, new, _root(old), _root(new), expected)


# -- what must fail -----------------------------------------------------------------------------------------------
def _inclusion_mutations(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes) -> list[tuple[Any, ...]]:
    cases: list[tuple[Any, ...]] = [
        ("leaf index - 1", index - 1, size, leaf, proof, root),
        ("leaf index + 1", index + 1, size, leaf, proof, root),
        ("leaf index xor 2", index ^ 2, size, leaf, proof, root),
        ("tree size * 2", index, size * 2, leaf, proof, root),
        ("tree size / 2", index, size // 2, leaf, proof, root),
        ("wrong leaf", index, size, merkle.leaf_hash(b"WrongLeaf"), proof, root),
        ("leaf not a hash", index, size, b"WrongLeaf", proof, root),
        ("empty root", index, size, leaf, proof, merkle.EMPTY_ROOT),
        ("random root", index, size, leaf, proof, SOME_HASH),
        ("trailing garbage", index, size, leaf, [*proof, b""], root),
        ("trailing root", index, size, leaf, [*proof, root], root),
        ("preceding garbage", index, size, leaf, [b"", *proof], root),
        ("preceding root", index, size, leaf, [root, *proof], root),
    ]
    for i in range(len(proof)):
        flipped = [bytes([p[0] ^ 8]) + p[1:] if j == i else p for j, p in enumerate(proof)]
        cases.append((f"bit flip in proof[{i}]", index, size, leaf, flipped, root))
    if proof:
        cases.append(("removed component", index, size, leaf, proof[:-1], root))
    if len(proof) > 1:
        cases.append(("inserted component", index, size, leaf, [proof[0], SOME_HASH, *proof[1:]], root))
        cases.append(("reordered proof", index, size, leaf, [proof[1], proof[0], *proof[2:]], root))
    return cases


INCLUSION_BAD = [
    (f"PATH({i},{n}) {case[0]}", case[1:])
    for (i, n), names in sorted(INCLUSION.items())
    for case in _inclusion_mutations(i, n, _proof(names), _root(n), merkle.leaf_hash(LEAVES[i]))
]


@pytest.mark.parametrize(("name", "case"), INCLUSION_BAD, ids=[n for n, _ in INCLUSION_BAD])
def test_a_mutated_inclusion_proof_fails_in_both_implementations(name: str, case: tuple[Any, ...]) -> None:
    index, size, leaf, proof, root = case
    assert not merkle.verify_inclusion(index, size, leaf, proof, root)
    assert not SCRIPT.inclusion_ok(index, size, leaf, proof, root)


def _consistency_mutations(old: int, new: int, proof: list[bytes]) -> list[tuple[Any, ...]]:
    r1, r2 = _root(old), _root(new)
    cases: list[tuple[Any, ...]] = [
        ("old size - 1", old - 1, new, r1, r2, proof),
        ("old size + 1", old + 1, new, r1, r2, proof),
        ("new size * 2", old, new * 2, r1, r2, proof),
        ("new size / 2", old, new // 2, r1, r2, proof),
        ("roots swapped", old, new, r2, r1, proof) if r1 != r2 else ("random old root", old, new, SOME_HASH, r2, proof),
        ("random new root", old, new, r1, SOME_HASH, proof),
        ("empty old root", old, new, b"", r2, proof),
        ("trailing garbage", old, new, r1, r2, [*proof, b""]),
        ("trailing root", old, new, r1, r2, [*proof, r2]),
        ("preceding root", old, new, r1, r2, [r2, *proof]),
        ("from the empty tree", 0, new, merkle.EMPTY_ROOT, r2, proof),
    ]
    for i in range(len(proof)):
        flipped = [bytes([p[0] ^ 8]) + p[1:] if j == i else p for j, p in enumerate(proof)]
        cases.append((f"bit flip in proof[{i}]", old, new, r1, r2, flipped))
    if proof:
        cases.append(("removed component", old, new, r1, r2, proof[:-1]))
    if len(proof) > 1:
        cases.append(("reordered proof", old, new, r1, r2, [proof[1], proof[0], *proof[2:]]))
    return cases


CONSISTENCY_BAD = [
    (f"PROOF({m},{n}) {case[0]}", case[1:])
    for (m, n), names in sorted(CONSISTENCY.items())
    for case in _consistency_mutations(m, n, _proof(names))
]


@pytest.mark.parametrize(("name", "case"), CONSISTENCY_BAD, ids=[n for n, _ in CONSISTENCY_BAD])
def test_a_mutated_consistency_proof_fails_in_both_implementations(name: str, case: tuple[Any, ...]) -> None:
    old, new, r1, r2, proof = case
    assert not merkle.verify_consistency(old, new, r1, r2, proof)
    assert not SCRIPT.consistency_ok(old, new, r1, r2, proof)


def test_single_entry_edge_cases_of_the_rfc_text() -> None:
    # The literal RFC loop never runs for a one-leaf tree, so it would accept two empty strings as leaf and root.
    leaf = merkle.leaf_hash(b"data")
    for verify in (merkle.verify_inclusion, SCRIPT.inclusion_ok):
        check: Callable[..., bool] = verify
        assert check(0, 1, leaf, [], leaf)
        assert not check(0, 1, b"", [], leaf)
        assert not check(0, 1, leaf, [], b"")
        assert not check(0, 1, b"", [], b"")
        for index, size in ((0, 0), (1, 0), (2, 1)):
            assert not check(index, size, SOME_HASH, [], merkle.EMPTY_ROOT)


# -- every tree up to 70 leaves, both ways -------------------------------------------------------------------------
def test_every_proof_of_every_tree_up_to_70_leaves_verifies_and_a_changed_leaf_fails() -> None:
    for n in range(1, 71):
        leaves = [b"leaf %d" % i for i in range(n)]
        root = merkle.root(leaves)
        assert SCRIPT.mth([SCRIPT.leaf_hash(x) for x in leaves]) == root
        for i in range(n):
            proof = merkle.inclusion_proof(i, leaves)
            leaf = merkle.leaf_hash(leaves[i])
            assert merkle.verify_inclusion(i, n, leaf, proof, root)
            assert SCRIPT.inclusion_ok(i, n, leaf, proof, root)
            changed = merkle.leaf_hash(leaves[i] + b"!")
            assert not merkle.verify_inclusion(i, n, changed, proof, root)
            assert not SCRIPT.inclusion_ok(i, n, changed, proof, root)
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(m, leaves)
            old = merkle.root(leaves[:m])
            assert merkle.verify_consistency(m, n, old, root, proof)
            assert SCRIPT.consistency_ok(m, n, old, root, proof)
            if m < n:
                assert not merkle.verify_consistency(m, n, merkle.leaf_hash(b"x"), root, proof)
                assert not SCRIPT.consistency_ok(m, n, merkle.leaf_hash(b"x"), root, proof)


def test_all_proofs_at_once_are_the_proofs_one_by_one() -> None:
    for n in range(0, 40):
        leaves = [b"%d" % i for i in range(n)]
        assert merkle.inclusion_proofs(leaves) == [merkle.inclusion_proof(i, leaves) for i in range(n)]


def test_the_split_is_the_largest_power_of_two_strictly_below_n() -> None:
    assert [merkle.split(n) for n in (2, 3, 4, 5, 8, 9, 1000)] == [1, 2, 2, 4, 4, 8, 512]


def test_proof_generation_refuses_impossible_requests() -> None:
    with pytest.raises(ValueError, match="outside a tree of 3"):
        merkle.inclusion_proof(3, LEAVES[:3])
    with pytest.raises(ValueError, match="0 < old size"):
        merkle.consistency_proof(0, LEAVES[:3])
    assert Path(SCRIPT.__file__).name == "evidence_verify.py.txt"
