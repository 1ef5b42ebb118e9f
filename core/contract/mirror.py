"""Paths of the ``mirror:full`` / ``mirror:delta`` bundles that more than one side reads."""

from __future__ import annotations

#: The TUF metadata the bundle carries (``N.root.json``, ``V.targets.json``, ``V.snapshot.json``,
#: ``timestamp.json``); under the bundle's trust prefix, so it is archived first.
TUF_METADATA = "tuf/metadata/"

#: The signed state of a mirror: every state file with its digest and size, the index segments in order, the base.
STATE = "manifests/state.json"
STATE_SCHEMA = "https://stellaops.dev/schemas/mirror-state/v1"
#: Content-addressed packs of raw documents (``<sha256>.pack``).
RAW_DIR = "data/raw"
#: Policy snapshots and findings (``*.jsonl.zst``).
POLICY_DIR = "data/policy"
#: Index segments (``<sha256>.jsonl.zst``): put/remove lines pointing into the packs.
INDEX_DIR = "indexes"
#: The payload directories: what a state may name, and what an encrypted mirror bundle encrypts (manifests and
#: TUF metadata stay readable).
ENCRYPTED_PREFIXES = ("data/", "indexes/")
#: The import receipt's body schema (its DSSE payload type is ``payload_types.MIRROR_RECEIPT``).
RECEIPT_SCHEMA = "https://stellaops.dev/schemas/mirror-receipt/v1"
