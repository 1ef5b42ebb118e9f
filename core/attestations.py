"""The store's record of which attestations a receiver verified.

Attestations are imported ``unverified`` (``attestations.verification``); only a receiving workflow that checked
them (``stella attest bundle import``) marks them ``verified``, through :func:`mark_verified`.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.store import Store

VERIFIED = "verified"


def mark_verified(store: Store, tenant: str, document_sha256s: Sequence[str]) -> None:
    """Mark every attestation of the documents ``document_sha256s`` of ``tenant`` verified, in one transaction."""
    if not document_sha256s:
        return
    placeholders = ", ".join("?" for _ in document_sha256s)
    with store.transaction() as conn:
        conn.execute(
            f"UPDATE attestations SET verification = ? WHERE tenant = ? AND document_sha256 IN ({placeholders})",
            [VERIFIED, tenant, *document_sha256s],
        )
