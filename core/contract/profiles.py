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
#: The built-in profile that writes ``risk:bundle`` bundles is named ``risk-bundle`` (its id predates the rule).
RISK_BUNDLE_BUILTIN = "risk-bundle"
