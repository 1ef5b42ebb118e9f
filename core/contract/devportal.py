"""The ``devportal:offline`` bundle: its signed manifest, where the portal's files are, and its scripts."""

from __future__ import annotations

MANIFEST = "manifest.json"
MANIFEST_DSSE = "manifest.dsse.json"
MANIFEST_SCHEMA = "https://stellaops.dev/schemas/devportal-manifest/v1"
#: The portal's files, as the tree listing names them, under this directory.
PORTAL_DIR = "portal/"
#: The stella-less verifier of the portal (``stella verify-script --devportal`` prints the trusted copy).
VERIFY_PORTAL = "verify-portal.sh"
#: The scripts at the bundle's root.
SCRIPTS = ("serve.sh", VERIFY_PORTAL)
