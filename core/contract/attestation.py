"""Paths of the ``attestation:bundle`` payload; directories end with ``/`` (a file's path is the prefix + name)."""

from __future__ import annotations

DOCUMENTS = "attestations/documents/"
INDEX = "attestations/index.jsonl"
SUBJECTS = "attestations/subjects.jsonl"
MANIFEST = "attestations/manifest.json"
MANIFEST_DSSE = "attestations/manifest.dsse.json"
MANIFEST_SIGSTORE = "attestations/manifest.sigstore.json"
#: The in-toto predicate type of ``attestations/manifest.json``.
MANIFEST_PREDICATE = "https://stellaops.dev/attestation-bundle/v1"
SIGSTORE_ROOTS = "trust/sigstore/"
KEYS = "trust/keys/"
CERTIFICATES = "trust/certificates/"
TLOG_ENTRIES = "tlog/entries.jsonl"
TLOG_CHECKPOINTS = "tlog/checkpoints.jsonl"
#: Every payload path of the profile starts with one of these.
PREFIXES = ("attestations/", "trust/", "tlog/")
SIGNED_MANIFEST = (MANIFEST, MANIFEST_DSSE, MANIFEST_SIGSTORE)
