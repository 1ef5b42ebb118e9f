"""RFC 3161 time-stamping: asking a TSA on the LAN for a token, and reading a token produced elsewhere.

What stella keeps is the TSA's whole reply, the DER ``TimeStampResp`` (RFC 3161 section 2.4.2, what ``openssl ts
-reply`` writes and ``openssl ts -verify -in`` reads), over the bytes it was asked to stamp: in a sealed evidence
bundle, the manifest's signature. :func:`read_response` accepts that reply, or a bare ``TimeStampToken`` (the
``ContentInfo`` some tools hand out, ``openssl ts -reply -token_out``), which it wraps into a granted reply.

Here a reply is checked for what the requester must check (section 2.2): the status is granted, the message
imprint is the hash of the data, and the nonce is the one sent. Whether the TSA is trusted (its certificate chains
to a configured TSA certificate and carries the critical timeStamping EKU) is decided in ``verify.evidence``, with
the operator's TSA certificates, never with certificates taken from a bundle.
"""

from __future__ import annotations

import hashlib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    decode_timestamp_response,
)

from core.errors import BadInputError, EnvironmentFailure, IntegrityError, TrustMetadataError

#: RFC 3161 section 3.4: the media types of a request and of a reply over HTTP.
QUERY_MEDIA_TYPE = "application/timestamp-query"
REPLY_MEDIA_TYPE = "application/timestamp-reply"
#: A reply is a few kilobytes (one certificate); anything this large is not a TSA's answer.
MAX_REPLY = 1 << 20
_IMPRINT_HASHES = {
    "2.16.840.1.101.3.4.2.1": hashlib.sha256,
    "2.16.840.1.101.3.4.2.2": hashlib.sha384,
    "2.16.840.1.101.3.4.2.3": hashlib.sha512,
}
_GRANTED = (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS)


class Timestamper(Protocol):
    """Something that timestamps bytes: returns a DER ``TimeStampResp`` whose imprint is the SHA-256 of ``data``."""

    def timestamp(self, data: bytes) -> bytes:
        """The TSA's reply over ``data``, already checked by :func:`read_response` (status, imprint, nonce)."""


@dataclass(frozen=True)
class TimestampInfo:
    """What a checked reply says: when, by which policy and serial, and the imprint's hash algorithm."""

    gen_time: datetime
    policy: str
    serial: int
    hash_name: str
    nonce: int | None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "genTime": self.gen_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "policy": self.policy,
            "serialNumber": str(self.serial),
            "hash": self.hash_name,
        }
        return out


def wrap_token(token: bytes) -> bytes:
    """A granted ``TimeStampResp`` around a bare ``TimeStampToken`` (``SEQUENCE { status {0}, token }``)."""
    status = b"\x30\x03\x02\x01\x00"
    return b"\x30" + _der_length(len(status) + len(token)) + status + token


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _decode(der: bytes, label: str) -> TimeStampResponse:
    try:
        return decode_timestamp_response(der)
    except ValueError:
        pass
    # Not a reply: perhaps a bare token (a ContentInfo, whose first element is the SignedData OID).
    try:
        return decode_timestamp_response(wrap_token(der))
    except ValueError as exc:
        raise BadInputError(f"not an RFC 3161 timestamp reply or token: {exc}", path=label) from None


def normalize(der: bytes, label: str = "timestamp") -> bytes:
    """The DER ``TimeStampResp`` for a reply or a bare token (a token is wrapped); raises BadInputError if neither."""
    response = _decode(der, label)
    return response.as_bytes()


def read_response(der: bytes, data: bytes, *, nonce: int | None = None, label: str = "timestamp") -> TimestampInfo:
    """Check a TSA reply over ``data`` as a requester must (RFC 3161 section 2.2, trust aside).

    Raises BadInputError when ``der`` is neither a reply nor a token, TrustMetadataError when the TSA did not grant
    the request or answered another nonce, and IntegrityError when the imprint is not the hash of ``data``.
    """
    response = _decode(der, label)
    if response.status not in _GRANTED:
        detail = "; ".join(response.status_string) or f"status {response.status}"
        raise TrustMetadataError(f"the TSA did not grant the timestamp: {detail}", path=label)
    try:  # the reply's parts are decoded when first read: a malformed TSTInfo surfaces here, not in _decode
        info = response.tst_info
        imprint = info.message_imprint
        algorithm = imprint.hash_algorithm.dotted_string
    except ValueError as exc:
        raise BadInputError(f"not an RFC 3161 timestamp reply or token: {exc}", path=label) from None
    hasher = _IMPRINT_HASHES.get(algorithm)
    if hasher is None:
        raise TrustMetadataError(f"the timestamp uses an unsupported hash {algorithm}", path=label)
    if imprint.message != hasher(data).digest():
        raise IntegrityError("the timestamp is for other bytes: its message imprint is not their hash", path=label)
    if nonce is not None and info.nonce != nonce:
        raise TrustMetadataError("the TSA answered another request: the nonce is not the one sent", path=label)
    gen_time = info.gen_time
    if gen_time.tzinfo is not None:
        gen_time = gen_time.astimezone(UTC).replace(tzinfo=None)
    return TimestampInfo(
        gen_time=gen_time,
        policy=info.policy.dotted_string,
        serial=info.serial_number,
        hash_name=hasher().name,
        nonce=info.nonce,
    )


class HttpTimestamper:
    """Asks a TSA over HTTP (RFC 3161 section 3.4): a SHA-256 request with a fresh nonce and ``certReq`` set.

    ``url`` is the TSA's address on the LAN; ``ca_file`` a PEM file of CA certificates for an ``https`` URL's TLS
    (the system's store when None); ``timeout`` seconds per request. Each reply is checked with
    :func:`read_response` (granted, the imprint of the data, the nonce sent) before it is returned.
    """

    def __init__(self, url: str, ca_file: Path | None = None, timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise BadInputError(f"the TSA URL {url!r} is not http:// or https://")
        self.url = url
        self.ca_file = ca_file
        self.timeout = timeout

    def timestamp(self, data: bytes) -> bytes:
        request = (
            TimestampRequestBuilder()
            .data(data)
            .hash_algorithm(HashAlgorithm.SHA256)
            .nonce(nonce=True)
            .cert_request(cert_request=True)
            .build()
        )
        http = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self.url,
            data=request.as_bytes(),
            headers={"Content-Type": QUERY_MEDIA_TYPE, "Accept": REPLY_MEDIA_TYPE},
            method="POST",
        )
        context = ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file is not None else None
        try:
            with urllib.request.urlopen(http, timeout=self.timeout, context=context) as reply:  # noqa: S310
                body: bytes = reply.read(MAX_REPLY + 1)
        except urllib.error.HTTPError as exc:
            raise EnvironmentFailure(f"the TSA answered HTTP {exc.code} {exc.reason}", path=self.url) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise EnvironmentFailure(f"cannot reach the TSA: {reason}", path=self.url) from None
        if len(body) > MAX_REPLY:
            raise BadInputError(f"the TSA's reply is larger than {MAX_REPLY} bytes", path=self.url)
        read_response(body, data, nonce=request.nonce, label=self.url)
        return body
