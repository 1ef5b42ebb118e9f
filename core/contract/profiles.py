"""Profile ids: ``kind:variant``, as the manifest's ``profile.kind``/``variant`` and every surface spell them."""

from __future__ import annotations

JSON_RAW = "json:raw"
JSON_POLICY = "json:policy"
MIRROR_FULL = "mirror:full"
MIRROR_DELTA = "mirror:delta"
TRIVY_DB = "trivy:db"
TRIVY_JAVA_DB = "trivy:java-db"
ATTESTATION_BUNDLE = "attestation:bundle"
RISK_BUNDLE = "risk:bundle"
RISK_SIMULATION = "risk:simulation"
DEVPORTAL_OFFLINE = "devportal:offline"
BOOTSTRAP_PACK = "bootstrap:pack"
#: Former spellings of built-in profile ids and the id to use instead; typing one is a usage error naming the id
#: (the risk bundle's built-in was ``risk-bundle`` before every id was ``kind:variant``; store migration 0004
#: renamed it in existing stores, and runs pinned to it keep their recorded id, so retries rebuild the same bytes).
FORMER_IDS: dict[str, str] = {"risk-bundle": RISK_BUNDLE}
