"""The in-toto attestation beside an export run's bundle: ``BUNDLE.intoto.jsonl``, one DSSE envelope a line.

Each envelope (payload type :data:`core.contract.payload_types.IN_TOTO`) carries an in-toto Statement v1 with the
in-toto Release predicate: one line for the bundle as the run built it, one more for each copy distributed.
"""

from __future__ import annotations

#: What follows the bundle's file name in the name of its attestation file (the SLSA generators' convention).
SUFFIX = ".intoto.jsonl"
#: The in-toto Release predicate: "the artifact names and hashes that make up a release".
RELEASE_PREDICATE = "https://in-toto.io/attestation/release/v0.1"
#: The purl type of a bundle: a package of no registry's ecosystem.
PURL_PREFIX = "pkg:generic/"
#: Where a sealed export run keeps the attestation file, in the evidence bundle.
EVIDENCE_PATH = "bundle/attestation.intoto.jsonl"
