"""X.509 pieces shared by the attestation exporter and the keyless verifier: the signing certificate of a Sigstore
bundle, and the issuer path of a certificate through a pool of CA certificates.

Names are compared and signatures checked exactly; cryptography's warnings about names that break X.509's rules
(sigstore-go's test CA has a three-letter country) are silenced here, since they change no result.
"""

from __future__ import annotations

import base64
import binascii
import warnings
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

#: What cryptography raises for a malformed certificate: it parses the version on loading, and names, validity,
#: extensions and the key only when each is first read, every failure with its own exception.
CERTIFICATE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)

_DECODE_ERRORS: tuple[type[Exception], ...] = (binascii.Error, *CERTIFICATE_ERRORS)


def signing_certificate(material: dict[str, Any]) -> x509.Certificate | None:
    """The leaf certificate of a Sigstore bundle's ``verificationMaterial`` (v0.3 ``certificate``, or the first
    of an older ``x509CertificateChain``), or None when there is none or it is not DER."""
    certificate = material.get("certificate")
    raw = certificate.get("rawBytes") if isinstance(certificate, dict) else None
    if raw is None:
        chain_field = material.get("x509CertificateChain")
        chain = chain_field.get("certificates") if isinstance(chain_field, dict) else None
        raw = chain[0].get("rawBytes") if isinstance(chain, list) and chain and isinstance(chain[0], dict) else None
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(str(raw), validate=True)) if raw else None
    except _DECODE_ERRORS:
        return None
    return cert if cert is not None and well_formed(cert) else None


def well_formed(cert: x509.Certificate) -> bool:
    """True when every field a verifier reads parses. cryptography parses a certificate's validity, names,
    extensions and key only when asked, so a damaged field would otherwise surface as an exception mid-check."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            _ = (cert.issuer, cert.subject, cert.not_valid_before_utc, cert.not_valid_after_utc, cert.extensions)
            cert.public_key()
    except CERTIFICATE_ERRORS:
        return False
    return True


def issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """True when ``parent`` names and signed ``child``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if child.issuer != parent.subject:
            return False
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def issuer_path(leaf: x509.Certificate, pool: Sequence[x509.Certificate], limit: int = 8) -> list[x509.Certificate]:
    """The certificates of ``pool`` from ``leaf``'s issuer up to a self-signed one (or as far as the pool goes)."""
    path: list[x509.Certificate] = []
    current = leaf
    while not _self_issued(current) and len(path) < limit:
        parent = next((c for c in pool if issued_by(current, c)), None)
        if parent is None or parent in path:
            break
        path.append(parent)
        current = parent
    return path


def _self_issued(cert: x509.Certificate) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return bool(cert.issuer == cert.subject)
