"""DSSE payload types: what a signature over an envelope says its payload is (it is part of the signed PAE)."""

from __future__ import annotations

#: An in-toto Statement: ``provenance.dsse.json``, the attestation bundle's manifest, received attestations.
IN_TOTO = "application/vnd.in-toto+json"
#: The risk bundle's ``risk/manifest.json``.
RISK_MANIFEST = "application/vnd.stellaops.risk.manifest+json"
#: The devportal bundle's ``manifest.json``.
DEVPORTAL_MANIFEST = "application/vnd.stellaops.devportal.manifest+json"
#: A receiver's signed import receipt for a mirror (``stella mirror import --receipt-out``).
MIRROR_RECEIPT = "application/vnd.stellaops.mirror-receipt+json"
