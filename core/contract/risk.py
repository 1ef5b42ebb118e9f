"""Paths of the ``risk:bundle`` payload."""

from __future__ import annotations

MANIFEST = "risk/manifest.json"
MANIFEST_DSSE = "risk/manifest.dsse.json"
MANIFEST_SCHEMA = "https://stellaops.dev/schemas/risk-manifest/v1"
#: Each provider's datasets live under ``providers/<name>/``.
PROVIDERS_DIR = "providers/"
#: Every payload path of the profile starts with one of these.
PREFIXES = ("risk/", PROVIDERS_DIR)
