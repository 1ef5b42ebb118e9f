"""RFC 9162 (Certificate Transparency 2.0) Merkle trees over SHA-256: roots, inclusion and consistency proofs.

The tree of section 2.1.1: a leaf hashes as ``SHA-256(0x00 || data)``, an inner node as ``SHA-256(0x01 || left ||
right)``, the empty tree as ``SHA-256("")``; a tree of ``n > 1`` leaves splits at ``k``, the largest power of two
strictly smaller than ``n``. Proofs are the RFC's wire form: lists of 32-byte hashes, leaf to root.

Generation follows sections 2.1.3.1 and 2.1.4.1 literally; verification follows 2.1.3.2 and 2.1.4.2 and adds what
the RFC leaves to the implementer: every hash is 32 bytes, a consistency proof from the empty tree or to a smaller
tree is refused, and between equal sizes the proof is empty and the roots equal. Verifiers return a bool; callers
decide the error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """The hash of a leaf: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an inner node: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``): where a tree of ``n`` leaves splits."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_hashes(hashes: Sequence[bytes]) -> bytes:
    """``MTH`` of a list of leaf hashes (already ``leaf_hash``-ed)."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = split(len(hashes))
    return node_hash(root_from_hashes(hashes[:k]), root_from_hashes(hashes[k:]))


def root(leaves: Sequence[bytes]) -> bytes:
    """``MTH(D[n])``: the root of the tree over the leaves' data, in order."""
    return root_from_hashes([leaf_hash(leaf) for leaf in leaves])


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """``PATH(index, D[n])``: the sibling hashes from leaf ``index`` up to the root."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf index {index} is outside a tree of {len(leaves)} leaves")
    return _path(index, [leaf_hash(leaf) for leaf in leaves])


def inclusion_proofs(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """``PATH(i, D[n])`` for every leaf ``i``, in one pass (``n log n`` hashes instead of ``n`` per proof)."""
    if not leaves:
        return []
    return _all_paths([leaf_hash(leaf) for leaf in leaves])[1]


def _all_paths(hashes: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    if len(hashes) == 1:
        return hashes[0], [[]]
    k = split(len(hashes))
    left, left_paths = _all_paths(hashes[:k])
    right, right_paths = _all_paths(hashes[k:])
    return node_hash(left, right), [[*p, right] for p in left_paths] + [[*p, left] for p in right_paths]


def _path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    n = len(hashes)
    if n == 1:
        return []
    k = split(n)
    if m < k:
        return [*_path(m, hashes[:k]), root_from_hashes(hashes[k:])]
    return [*_path(m - k, hashes[k:]), root_from_hashes(hashes[:k])]


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """``PROOF(old_size, D[n])``: the hashes that link the root of the first ``old_size`` leaves to the whole tree.

    ``0 < old_size <= n``; between equal sizes the proof is empty.
    """
    if not 0 < old_size <= len(leaves):
        raise ValueError(f"a consistency proof needs 0 < old size ({old_size}) <= new size ({len(leaves)})")
    return _subproof(old_size, [leaf_hash(leaf) for leaf in leaves], True)


def _subproof(m: int, hashes: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if complete else [root_from_hashes(hashes)]
    k = split(n)
    if m <= k:
        return [*_subproof(m, hashes[:k], complete), root_from_hashes(hashes[k:])]
    return [*_subproof(m - k, hashes[k:], False), root_from_hashes(hashes[:k])]


def _sized(*values: bytes) -> bool:
    return all(len(v) == HASH_SIZE for v in values)


def root_from_inclusion(index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes | None:
    """The root that ``proof`` leads to from leaf hash ``leaf`` at ``index`` (RFC 9162 2.1.3.2), or None when
    the proof cannot belong to a tree of ``tree_size`` (wrong length, index out of range, a hash not 32 bytes)."""
    if not 0 <= index < tree_size or not _sized(leaf, *proof):
        return None
    fn, sn, r = index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """True when ``proof`` shows the leaf whose hash is ``leaf`` at ``index`` in the tree of ``tree_size`` leaves
    whose root is ``root_hash``."""
    got = root_from_inclusion(index, tree_size, leaf, proof)
    return got is not None and _sized(root_hash) and got == root_hash


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """True when ``proof`` shows the tree of ``old_size`` leaves with root ``old_root`` is a prefix of the tree of
    ``new_size`` leaves with root ``new_root`` (RFC 9162 2.1.4.2)."""
    if not _sized(old_root, new_root, *proof) or not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
