"""Timeline event types: what a SIEM reading `stella timeline export` matches on (CloudEvents ``type``)."""

from __future__ import annotations

#: Every event type stella emits starts with this (CloudEvents: types SHOULD be prefixed with a reverse-DNS name).
TYPE_PREFIX = "dev.stella."

EXPORT_REQUESTED = "dev.stella.export.requested"
EXPORT_BUILT = "dev.stella.export.built"
EXPORT_DISTRIBUTED = "dev.stella.export.distributed"
EXPORT_FAILED = "dev.stella.export.failed"
#: A mirror or bootstrap-pack bundle is built and verified: it may be carried across the air gap.
BUNDLE_READY_FOR_TRANSFER = "dev.stella.bundle.ready-for-transfer"

#: CloudEvents ``dataschema``-free JSON payloads; this media type names the NDJSON export of ``timeline export``.
CLOUDEVENTS_JSON = "application/cloudevents+json"

#: The evidence locker's events (services/evidence.py, services/incident.py).
EVIDENCE_SEALED = "dev.stella.evidence.sealed"
EVIDENCE_CUSTODY = "dev.stella.evidence.custody"
EVIDENCE_HOLD = "dev.stella.evidence.hold"
EVIDENCE_RELEASE = "dev.stella.evidence.release"
INCIDENT_STARTED = "dev.stella.incident.started"
INCIDENT_STOPPED = "dev.stella.incident.stopped"
