"""Incident mode: `stella incident start|stop --reason ...`.

While an incident is open the evidence locker keeps more: every bundle of the tenant is retained at least the
incident's retention from the moment it starts (lengthened, never shortened), and evidence sealed while it is open
gets that retention too. Starting and stopping each seal a capture of the extra debug artefacts into the locker (the
environment and its digests, the store's per-table counts and content digest, the recent export runs with every
event they logged), and put an activation or deactivation event on the timeline, which notifications hear. While it
is open the tenant's export runs also log at debug level and always write their spans (:func:`incident_open`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from core.canonical import canonical_json
from core.clock import rfc3339, utcnow
from core.contract.timeline import INCIDENT_STARTED, INCIDENT_STOPPED
from core.errors import NotFoundError, UsageError
from core.evidence_store import EvidenceBundle, EvidenceStore, Incident
from core.home import Home
from core.runs import RunEngine, current_user
from core.store import Store
from core.store.tables import TABLES
from core.tenants import validate_tenant
from services.evidence import (
    DEFAULT_INCIDENT_RETENTION,
    DEFAULT_REDACTION,
    EVENT_ALLOW,
    KIND_JOB,
    RETAIN,
    RUN_ALLOW,
    Content,
    Redactor,
    environment_digests,
    json_artifact,
    publish_custody,
    record_custody,
    seal_in,
)
from services.keys import signer_for
from services.timeline import record_event, source_for

#: How many of the tenant's latest export runs an incident capture logs in full.
RUNS_CAPTURED = 20


@dataclass(frozen=True)
class IncidentOutcome:
    """An incident after `incident start` or `stop`, with the evidence sealed then and, at start, how many bundles'
    retention was lengthened."""

    incident: Incident
    evidence: EvidenceBundle
    lengthened: int = 0

    def to_dict(self) -> dict[str, Any]:
        return self.incident.to_dict() | {
            "evidence": {"id": self.evidence.evidence_id, "digest": self.evidence.digest},
            "retentionLengthened": self.lengthened,
        }


def new_incident_id(now: datetime) -> str:
    return f"inc-{now:%Y%m%dT%H%M%S}Z-{secrets.token_hex(3)}"


def store_digests(store: Store, tenant: str) -> dict[str, Any]:
    """The tenant's rows per table and a digest over its raw documents' digests (what the store held)."""
    counts: dict[str, int] = {}
    for table in sorted(TABLES):
        row = store.conn.execute(f"SELECT count(*) FROM {table} WHERE tenant = ?", [tenant]).fetchone()
        counts[table] = int(row[0]) if row else 0
    digest = hashlib.sha256()
    cur = store.cursor()
    try:
        cur.execute("SELECT sha256 FROM raw_documents WHERE tenant = ? ORDER BY sha256", [tenant])
        while rows := cur.fetchmany(10000):
            for (sha,) in rows:
                digest.update(f"{sha}\n".encode("ascii"))
    finally:
        cur.close()
    return {
        "schemaVersion": store.schema_version(),
        "rows": counts,
        "rawDocumentsSha256": digest.hexdigest(),
        "storeFileSize": store.home.store_path.stat().st_size if store.home.store_path.exists() else None,
    }


def _capture(home: Home, store: Store, tenant: str, incident: Incident, phase: str, lengthened: int) -> Content:
    redactor = Redactor(DEFAULT_REDACTION)
    engine = RunEngine(store)
    runs = []
    for run in engine.list_runs(tenant, limit=RUNS_CAPTURED):
        runs.append(
            {
                "run": redactor.keep(run.to_dict(), RUN_ALLOW, "incident/runs.json#/*/run"),
                "events": redactor.keep(
                    [e.to_dict() for e in engine.events(run.run_id)], EVENT_ALLOW, "incident/runs.json#/*/events"
                ),
            }
        )
    record = incident.to_dict() | {"phase": phase, "retentionLengthened": lengthened}
    environment = environment_digests(home, store)
    store_state = store_digests(store, tenant)
    artifacts = [
        json_artifact("incident/incident.json", record),
        json_artifact("incident/environment.json", environment),
        json_artifact("incident/store.json", store_state),
        json_artifact("incident/runs.json", runs),
    ]
    subject = {
        "incident": incident.incident_id,
        "phase": phase,
        "reason": incident.reason if phase == "start" else (incident.stop_reason or ""),
        "environmentSha256": "sha256:" + hashlib.sha256(canonical_json(environment)).hexdigest(),
        "storeSha256": "sha256:" + hashlib.sha256(canonical_json(store_state)).hexdigest(),
    }
    return Content(KIND_JOB, incident.incident_id, subject, artifacts, redactor.redactions())


def start_incident(
    home: Home,
    tenant: str,
    reason: str,
    key: str,
    *,
    passphrase_file: Path | None = None,
    retention: timedelta = DEFAULT_INCIDENT_RETENTION,
) -> IncidentOutcome:
    """`stella incident start --reason ... --key NAME`: open an incident (one at a time per tenant)."""
    tenant = validate_tenant(tenant)
    if not reason.strip():
        raise UsageError("an incident needs a reason (--reason)")
    signer = signer_for(home, key, passphrase_file)
    with Store.open(home) as store:
        es = EvidenceStore(store.conn)
        open_now = es.open_incident(tenant)
        if open_now is not None:
            raise UsageError(
                f"incident {open_now.incident_id} of tenant {tenant!r} is open since {rfc3339(open_now.started_at)}",
                hint="stop it first: stella incident stop --reason ...",
            )
        now = utcnow().replace(microsecond=0)
        start_seq = _last_seq(es, tenant)
        with store.transaction() as cur:
            tx = EvidenceStore(cur)
            incident = Incident(
                new_incident_id(now),
                reason,
                int(retention.total_seconds()),
                current_user(),
                now,
                None,
                None,
                None,
                None,
                None,
            )
            tx.insert_incident(tenant, incident)
            raised = tx.lengthen_all_retention(tenant, now + retention)
            for earlier in raised:
                record_custody(
                    cur,
                    tenant,
                    RETAIN,
                    f"evidence:{earlier.evidence_id}",
                    earlier.digest,
                    f"retention lengthened from {rfc3339(earlier.retention_until)} to {rfc3339(now + retention)}"
                    f" by incident {incident.incident_id}",
                )
            lengthened = len(raised)
            content = _capture(home, store, tenant, incident, "start", lengthened)
            bundle = seal_in(store, cur, tenant, content, signer, f"incident {incident.incident_id} started: {reason}")
            tx.set_incident_evidence(tenant, incident.incident_id, start=bundle.evidence_id, stop=None)
        publish_custody(store, tenant, start_seq)
        incident = _incident(store, tenant, incident.incident_id)
        record_event(
            store,
            tenant=tenant,
            type=INCIDENT_STARTED,
            source=source_for(tenant, "incident"),
            subject=f"incident:{incident.incident_id}",
            data=incident.to_dict(),
            event_id=f"{incident.incident_id}:started",
            evidence_digests=[bundle.digest],
            time=now,
        )
    return IncidentOutcome(incident, bundle, lengthened)


def stop_incident(
    home: Home, tenant: str, reason: str, key: str, *, passphrase_file: Path | None = None
) -> IncidentOutcome:
    """`stella incident stop --reason ... --key NAME`: close the open incident; retention lengthened stays."""
    tenant = validate_tenant(tenant)
    if not reason.strip():
        raise UsageError("stopping an incident needs a reason (--reason)")
    signer = signer_for(home, key, passphrase_file)
    with Store.open(home) as store:
        es = EvidenceStore(store.conn)
        incident = es.open_incident(tenant)
        if incident is None:
            raise NotFoundError(f"tenant {tenant!r} has no open incident", hint="see `stella incident status`")
        now = utcnow().replace(microsecond=0)
        start_seq = _last_seq(es, tenant)
        with store.transaction() as cur:
            tx = EvidenceStore(cur)
            who = current_user()
            tx.stop_incident(tenant, incident.incident_id, by=who, at=now, reason=reason)
            stopped = _incident(store, tenant, incident.incident_id, cur=tx)
            content = _capture(home, store, tenant, stopped, "stop", 0)
            bundle = seal_in(store, cur, tenant, content, signer, f"incident {incident.incident_id} stopped: {reason}")
            tx.set_incident_evidence(tenant, incident.incident_id, start=None, stop=bundle.evidence_id)
        publish_custody(store, tenant, start_seq)
        stopped = _incident(store, tenant, incident.incident_id)
        record_event(
            store,
            tenant=tenant,
            type=INCIDENT_STOPPED,
            source=source_for(tenant, "incident"),
            subject=f"incident:{incident.incident_id}",
            data=stopped.to_dict(),
            event_id=f"{incident.incident_id}:stopped",
            evidence_digests=[bundle.digest],
            time=now,
        )
    return IncidentOutcome(stopped, bundle)


def incidents(home: Home, tenant: str) -> list[Incident]:
    """`stella incident status`: the tenant's incidents, newest first (an open one first of all)."""
    tenant = validate_tenant(tenant)
    with Store.open(home, read_only=True) as store:
        return EvidenceStore(store.conn).incidents(tenant)


def _last_seq(es: EvidenceStore, tenant: str) -> int:
    chain = es.custody(tenant, last=1)
    return chain[-1].seq if chain else 0


def _incident(store: Store, tenant: str, incident_id: str, *, cur: EvidenceStore | None = None) -> Incident:
    for incident in (cur or EvidenceStore(store.conn)).incidents(tenant):
        if incident.incident_id == incident_id:
            return incident
    raise NotFoundError(f"no incident {incident_id!r} in tenant {tenant!r}")


def incident_open(store: Store, tenant: str) -> bool:
    """Whether ``tenant`` has an incident open now: its runs then log at debug level and always write their spans."""
    return EvidenceStore(store.conn).open_incident(tenant) is not None
