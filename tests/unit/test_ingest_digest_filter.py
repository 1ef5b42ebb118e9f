"""The import's filter of committed digests: never a false "no", and rarely a false "maybe"."""

from __future__ import annotations

import hashlib

from core.ingest import _DigestFilter


def _digest(n: int) -> str:
    return hashlib.sha256(n.to_bytes(8, "big")).hexdigest()


def test_every_added_digest_is_a_maybe_and_few_others_are() -> None:
    capacity = 50_000
    seen = _DigestFilter(capacity)
    for n in range(capacity):
        seen.add(_digest(n))
    assert all(_digest(n) in seen for n in range(capacity))
    false = sum(_digest(n) in seen for n in range(capacity, capacity + 100_000))
    assert false <= 20  # about 2.5 expected at 32 bits and six probes per digest
