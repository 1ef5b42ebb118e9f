"""The sealed evidence bundle (``.tgz``): its file names, archive order, manifest schema and payload type.

The layout and every check a verifier makes are described in ``docs/evidence-format.md``. The offline verify
script in the bundle (``core/bundle_files/evidence_verify.py.txt``) is standard-library Python that cannot import
this module; ``tests/unit/test_evidence_seal.py`` holds its copy of these names to the ones here.
"""

from __future__ import annotations

# Names other bundles use too are defined once, where they first appeared, and re-exported here:
# ``manifest.json`` (RFC 8785 canonical JSON, the payload of the DSSE envelope ``manifest.dsse.json``),
# ``metadata.json`` (here: the redacted metadata, the subject after the redaction profile was applied) and
# ``verify.sh`` (the offline verifier's shell wrapper).
from core.contract.bundle import VERIFY_SCRIPT as VERIFY_SH
from core.contract.devportal import MANIFEST, MANIFEST_DSSE
from core.contract.trivy import METADATA

#: The raw DSSE signature bytes (the envelope's one ``sig``, decoded), for openssl and the timestamp.
SIGNATURE = "manifest.sig"
#: The RFC 3161 ``TimeStampResp`` (DER) over the bytes of :data:`SIGNATURE`; present when timestamped.
TIMESTAMP = "manifest.sig.tsr"
#: ``sha256sum -c`` list of every other file of the bundle.
CHECKSUMS = "SHA256SUMS"
#: The signer's public key (SubjectPublicKeyInfo PEM). It travelled with the bundle, so it is never trusted as such.
SIGNER_KEY = "signer.pub"
#: The chain-of-custody log: one canonical JSON event per line, hash-chained.
CUSTODY_LOG = "custody.jsonl"
#: Each artifact's inclusion proof and, for a re-seal, the consistency proof from the earlier root.
PROOFS = "proofs.json"
#: The offline verifier (``python3 -I verify.py``, standard library only); ``verify.sh`` wraps it.
VERIFY_PY = "verify.py"
#: The sealed artifacts (the Merkle tree's leaves) live under this directory.
ARTIFACTS_DIR = "artifacts/"

MANIFEST_SCHEMA = "https://stellaops.dev/schemas/evidence-manifest/v1"
PROOFS_SCHEMA = "https://stellaops.dev/schemas/evidence-proofs/v1"
METADATA_SCHEMA = "https://stellaops.dev/schemas/evidence-metadata/v1"
#: The DSSE payload type of :data:`MANIFEST`.
PAYLOAD_TYPE = "application/vnd.stellaops.evidence.manifest+json"
#: The Merkle tree of the manifest (RFC 9162 section 2.1, SHA-256; the COSE Receipts name of that tree).
MERKLE_ALGORITHM = "RFC9162_SHA256"

#: The files before the artifacts, in archive order (the timestamp only when there is one).
HEAD_ORDER = (
    MANIFEST,
    MANIFEST_DSSE,
    SIGNATURE,
    TIMESTAMP,
    CHECKSUMS,
    SIGNER_KEY,
    VERIFY_SH,
    VERIFY_PY,
    METADATA,
    CUSTODY_LOG,
    PROOFS,
)
#: The head files the signed manifest lists by digest. Not listed: the signature's own files, the checksums, the
#: proofs (checked against the signed root) and the custody log (bound by the signed head of its hash chain).
MANIFEST_LISTED = (METADATA, SIGNER_KEY, VERIFY_PY, VERIFY_SH)

__all__ = [
    "ARTIFACTS_DIR",
    "CHECKSUMS",
    "CUSTODY_LOG",
    "HEAD_ORDER",
    "MANIFEST",
    "MANIFEST_DSSE",
    "MANIFEST_LISTED",
    "MANIFEST_SCHEMA",
    "MERKLE_ALGORITHM",
    "METADATA",
    "METADATA_SCHEMA",
    "PAYLOAD_TYPE",
    "PROOFS",
    "PROOFS_SCHEMA",
    "SIGNATURE",
    "SIGNER_KEY",
    "TIMESTAMP",
    "VERIFY_PY",
    "VERIFY_SH",
]
