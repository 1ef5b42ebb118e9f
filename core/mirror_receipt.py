"""Import receipts: what a receiver's mirror holds after an import, signed by the receiver.

A receipt is a DSSE envelope (payloadType ``application/vnd.stellaops.mirror-receipt+json``) over canonical
JSON naming the mirror's state digest, sequence, tenant, the bundle and manifest digests it came from and
the TUF versions trusted. The sending side passes it back as ``--base`` for the next delta: the receipt says,
under the receiver's signature, which state the delta must apply to.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import orjson

from core.canonical import canonical_json
from core.contract.mirror import RECEIPT_SCHEMA
from core.contract.payload_types import MIRROR_RECEIPT
from core.errors import BadInputError, SignatureError
from core.signing import Signer, dsse_envelope, dsse_signer
from core.trust import TrustedKey


def make_receipt(body: dict[str, Any], signer: Signer) -> bytes:
    """The signed receipt (canonical JSON of the envelope); the signature names the signer's key id."""
    envelope = dsse_envelope(signer, MIRROR_RECEIPT, canonical_json({"schema": RECEIPT_SCHEMA, **body}))
    envelope["signatures"][0]["keyid"] = signer.keyid
    return canonical_json(envelope)


def is_receipt(data: bytes) -> bool:
    """Whether ``data`` looks like a receipt envelope (before any check)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and doc.get("payloadType") == MIRROR_RECEIPT


def read_receipt(data: bytes, keys: Sequence[TrustedKey], *, source: str) -> dict[str, Any]:
    """The body of a receipt whose signature verifies under one of ``keys``; otherwise an error.

    Raises :class:`BadInputError` (exit 3) for a malformed receipt and :class:`SignatureError` (exit 5)
    when no trusted key made the signature.
    """
    try:
        envelope = orjson.loads(data)
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = [base64.b64decode(s["sig"], validate=True) for s in envelope["signatures"]]
        body = orjson.loads(payload)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise BadInputError(f"not a readable import receipt: {exc!r}", path=source) from None
    if envelope.get("payloadType") != MIRROR_RECEIPT or not isinstance(body, dict):
        raise BadInputError("not a stella import receipt (payloadType)", path=source)
    if body.get("schema") != RECEIPT_SCHEMA:
        raise BadInputError("unknown import receipt schema", path=source)
    key = dsse_signer(MIRROR_RECEIPT, payload, signatures, keys)
    if key is not None:
        return {**body, "signedBy": key.label}
    raise SignatureError(
        "the import receipt is not signed by a trusted key",
        path=source,
        hint="trust the receiver's public key first: stella trust add LABEL RECEIVER.pub --receipts-only",
    )
