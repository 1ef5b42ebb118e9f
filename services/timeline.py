"""The timeline: record CloudEvents-shaped events, list, show and export them.

Producers (the export engine's hooks, the evidence locker, incident mode) call :func:`record_event` with the store
they hold; `stella timeline ...` and the TUI's timeline screen read through the other functions here. Recording is
idempotent: the same event sent twice (a producer's retry) is stored once. When an event is one that needs a human
(a bundle ready for transfer, a failed run) the notifications configured in the home hear it once
(:mod:`services.notify`).
"""

from __future__ import annotations

import hashlib
import random
import time as _time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.atomic import atomic_file
from core.canonical import canonical_json
from core.clock import utcnow
from core.contract.bundle import MANIFEST
from core.contract.profiles import MIRROR_DELTA, MIRROR_FULL
from core.contract.timeline import (
    BUNDLE_READY_FOR_TRANSFER,
    EXPORT_BUILT,
    EXPORT_DISTRIBUTED,
    EXPORT_FAILED,
    EXPORT_REQUESTED,
)
from core.durations import parse_duration
from core.errors import EnvironmentFailure, StellaError, StoreLockedError, UsageError
from core.home import Home
from core.runs import Distribution, ExportRun, RunEngine, RunState
from core.store import Store
from core.tenants import validate_tenant
from core.timeline import (
    AttestationSubject,
    EventDraft,
    EventFilter,
    EvidenceRef,
    SequenceRace,
    TimelineEvent,
    evidence_refs,
    get_event,
    held_digests,
    insert_event,
    list_events,
)
from services.notify import Delivery, deliver_outbox, notify

__all__ = [
    "AttestationSubject",
    "EventDraft",
    "EventFilter",
    "TimelineEvent",
    "record_event",
    "record_events",
    "source_for",
]

#: How often a transaction that lost a race for the next sequence number (another thread's cursor) is tried again.
_RACE_ATTEMPTS = 20


def source_for(tenant: str, producer: str) -> str:
    """The CloudEvents ``source`` of a stella producer: ``urn:stella:<tenant>:<producer>`` (e.g. ``export``)."""
    return f"urn:stella:{validate_tenant(tenant)}:{producer}"


def record_event(
    store: Store,
    *,
    tenant: str,
    type: str,
    source: str,
    subject: str,
    data: Mapping[str, Any],
    event_id: str | None = None,
    run_id: str | None = None,
    trace_id: str | None = None,
    evidence_digests: Sequence[str] = (),
    attestation_subjects: Sequence[AttestationSubject | tuple[str, str]] = (),
    case_id: str | None = None,
    time: datetime | None = None,
) -> TimelineEvent:
    """Record one event on ``store`` (opened writable) in its own transaction; returns it with its sequence number.

    ``event_id`` is the producer's idempotency key; without one the id is derived from the content (type, source,
    subject, data, run, trace, case and links, not the time), so a retry of the same event is the same event. Sent
    again, an event is not stored twice: the stored one is returned. ``time`` is when it happened (naive UTC; now
    when not given). Call it outside any transaction of your own.
    """
    draft = EventDraft(
        tenant=tenant,
        type=type,
        source=source,
        subject=subject,
        data=data,
        time=time or utcnow(),
        event_id=event_id,
        run_id=run_id,
        trace_id=trace_id,
        case_id=case_id,
        evidence_digests=tuple(evidence_digests),
        attestation_subjects=tuple(AttestationSubject(*s) for s in attestation_subjects),
    )
    return _record(store, [draft])[0]


def record_events(home: Home, drafts: Sequence[EventDraft], *, wait: float = 30.0) -> list[TimelineEvent]:
    """Record a producer's batch in one transaction, opening the store for it.

    When another process holds the store (its one writer), waits for it with backoff up to ``wait`` seconds, then
    raises the lock error (exit 8). Replaying the same batch stores nothing new.
    """
    deadline = _time.monotonic() + wait
    delay = 0.01
    while True:
        try:
            store = Store.open(home)
        except StoreLockedError:
            if _time.monotonic() + delay > deadline:
                raise
            _time.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter: two waiting producers do not retry in step
            delay = min(delay * 2, 0.05)
            continue
        with store:
            events, queued = _record_queued(store, drafts)
        deliver_outbox(home, queued, background=False)  # the store is let go first: see _record
        return events


def _record(store: Store, drafts: Sequence[EventDraft]) -> list[TimelineEvent]:
    """Record ``drafts`` in one transaction (tried again when another cursor took the next sequence number), then
    notify the new ones that need a person. The caller holds the store, so webhook deliveries (retried with
    backoff against a receiver that may be down) run in a thread rather than under the store's writer lock."""
    events, queued = _record_queued(store, drafts)
    deliver_outbox(store.home, queued, background=True)
    return events


def _record_queued(store: Store, drafts: Sequence[EventDraft]) -> tuple[list[TimelineEvent], list[Delivery]]:
    """Record ``drafts``; spool the new ones that need a person and queue their webhook copies (returned)."""
    if store.read_only:
        raise UsageError("the timeline is recorded through a store opened for writing")
    for attempt in range(_RACE_ATTEMPTS):
        try:
            recorded = []
            with store.transaction() as cur:
                now = utcnow()
                for draft in drafts:
                    recorded.append(insert_event(cur, draft, now=now))
            break
        except (SequenceRace, duckdb.TransactionException, duckdb.ConstraintException):
            if attempt == _RACE_ATTEMPTS - 1:
                raise EnvironmentFailure(
                    "could not record timeline events: other writers kept taking the next sequence number",
                    path=str(store.home.store_path),
                ) from None
            _time.sleep(0.005 * (attempt + 1))
    queued = []
    for event, created in recorded:
        if created:  # a retry was notified the first time
            delivery = notify(store.home, event, deliver=False)
            if delivery is not None and delivery.webhook == "queued":
                queued.append(delivery)
    return [event for event, _ in recorded], queued


# -- export runs -----------------------------------------------------------------------------------------------
# The export service calls these around a build (services/export.py): each event's id is the run's (or the
# distribution's) own, so an export command that is run again, or a producer that retries, adds nothing.

#: The producer name in the ``source`` of export lifecycle events.
EXPORT_PRODUCER = "export"


def _run_event(run: ExportRun, type: str, event_id: str, data: dict[str, Any], time: datetime) -> EventDraft:
    return EventDraft(
        tenant=run.tenant,
        type=type,
        source=source_for(run.tenant, EXPORT_PRODUCER),
        subject=f"run:{run.run_id}",
        data={"runId": run.run_id, "profile": run.profile_id, "profileRevision": run.profile_revision} | data,
        time=time,
        event_id=event_id,
        run_id=run.run_id,
        trace_id=run.correlation_id,
    )


def record_export_requested(store: Store, run: ExportRun) -> TimelineEvent:
    """``export.requested``: a planned run is about to be built (its inputs pinned: their count and digest)."""
    data = {
        "inputs": {"count": run.input_count, "sha256": run.inputs_sha256},
        "selectors": run.selectors_dict,
        "out": str(run.out_path),
        "retryOf": run.retry_of,
    }
    return _record(store, [_run_event(run, EXPORT_REQUESTED, f"{run.run_id}.requested", data, run.created_at)])[0]


def bundle_manifest_sha256(bundle: Path) -> str | None:
    """``sha256:<hex>`` of a bundle's manifest (its first entry, the file its signature covers); None if unreadable."""
    try:
        with SafeArchiveReader(bundle, ReaderLimits()) as reader:
            for member in reader:
                if member.name != MANIFEST:
                    return None
                with member.stream() as src:
                    return "sha256:" + hashlib.sha256(src.read()).hexdigest()
    except (StellaError, OSError, ValueError):
        return None
    return None


def record_export_built(store: Store, run: ExportRun, *, evidence_digests: Sequence[str] = ()) -> list[TimelineEvent]:
    """``export.built`` for a succeeded run (manifest and bundle digests, the evidence sealing it when given), one
    ``export.distributed`` per place its bundle was handed, and ``bundle.ready-for-transfer`` for a mirror bundle."""
    if run.state is not RunState.SUCCEEDED or run.artifact_path is None:
        return []
    manifest = bundle_manifest_sha256(run.artifact_path)
    bundle = {"path": str(run.artifact_path), "sha256": f"sha256:{run.artifact_sha256}", "size": run.artifact_size}
    at = run.finished_at or utcnow()
    built = _run_event(run, EXPORT_BUILT, f"{run.run_id}.built", {"manifestSha256": manifest, "bundle": bundle}, at)
    drafts = [
        EventDraft(**{**built.__dict__, "evidence_digests": tuple(evidence_digests)}),
        *(_distributed(run, d, manifest) for d in RunEngine(store).distributions(run.run_id)),
    ]
    config = run.profile_config
    if f"{config.kind}:{config.variant}" in (MIRROR_FULL, MIRROR_DELTA):
        ready = {"manifestSha256": manifest, "bundle": bundle, "kind": f"{config.kind}:{config.variant}"}
        drafts.append(_run_event(run, BUNDLE_READY_FOR_TRANSFER, f"{run.run_id}.ready", ready, at))
    return _record(store, drafts)


def record_bundle_ready(
    home: Home,
    *,
    tenant: str,
    producer: str,
    kind: str,
    subject: str,
    bundle: Path,
    bundle_sha256: str,
    manifest_sha256: str | None = None,
    event_id: str | None = None,
) -> TimelineEvent:
    """``bundle.ready-for-transfer`` for a bundle built outside an export run (a bootstrap pack, an Offline Kit
    volume): it is written and may be carried across the air gap; notifications hear it. Opens the store itself."""
    data = {"kind": kind, "manifestSha256": manifest_sha256, "bundle": {"path": str(bundle), "sha256": bundle_sha256}}
    draft = EventDraft(
        tenant=tenant,
        type=BUNDLE_READY_FOR_TRANSFER,
        source=source_for(tenant, producer),
        subject=subject,
        data=data,
        time=utcnow(),
        event_id=event_id,
    )
    return record_events(home, [draft])[0]


def _distributed(run: ExportRun, dist: Distribution, manifest: str | None) -> EventDraft:
    data = {
        "manifestSha256": manifest,
        "distribution": {
            "id": dist.distribution_id,
            "type": dist.type,
            "target": dist.target,
            "sha256": None if dist.sha256 is None else f"sha256:{dist.sha256}",
            "size": dist.size,
            "state": dist.state,
        },
    }
    return _run_event(run, EXPORT_DISTRIBUTED, f"{run.run_id}.{dist.distribution_id}", data, dist.created_at)


def record_export_distributed(store: Store, run_id: str, dist: Distribution) -> TimelineEvent:
    """``export.distributed``: a run's bundle was copied somewhere (`stella export download`)."""
    run = RunEngine(store).get_run(run_id)
    manifest = bundle_manifest_sha256(run.artifact_path) if run.artifact_path is not None else None
    return _record(store, [_distributed(run, dist, manifest)])[0]


def record_export_failed(store: Store, run_id: str) -> TimelineEvent | None:
    """``export.failed`` for a run the engine marked failed (its error code and message); None for any other state
    (a cancelled run is not a failure, and a run that never started has nothing to report)."""
    try:  # called while the build's own error propagates: recording must not replace it
        run = RunEngine(store).get_run(run_id)
        if run.state is not RunState.FAILED:
            return None
        data = {"error": {"code": run.error_code, "message": run.error_message}, "out": str(run.out_path)}
        draft = _run_event(run, EXPORT_FAILED, f"{run.run_id}.failed", data, run.finished_at or utcnow())
        return _record(store, [draft])[0]
    except (StellaError, duckdb.Error):
        return None


# -- reading ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelinePage:
    """One page of `stella timeline list`: the events, and the cursor of the next page (None: this was the last)."""

    tenant: str
    events: list[TimelineEvent]
    next_cursor: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "events": [e.to_dict() for e in self.events],
            "nextCursor": None if self.next_cursor is None else str(self.next_cursor),
        }


def parse_when(text: str | None, option: str) -> datetime | None:
    """A ``--since``/``--until`` value: an RFC 3339 time (UTC when it names no zone) or a duration before now
    (``90m``, ``12h``, ``7d``); None when not given. Anything else is a usage error naming ``option``."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            return utcnow() - parse_duration(text)
        except UsageError:
            raise UsageError(
                f"{option} {text!r} is neither an RFC 3339 time nor a duration", hint="e.g. 2026-12-01T00:00:00Z or 7d"
            ) from None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def _mark_held(events: list[TimelineEvent], held: set[str]) -> list[TimelineEvent]:
    return [replace(e, held=True) if held.intersection(e.evidence_digests) else e for e in events]


def list_timeline(home: Home, tenant: str, where: EventFilter, *, after: int = 0, limit: int = 50) -> TimelinePage:
    """`stella timeline list`: the tenant's events matching ``where``, ``limit`` at a time after cursor ``after``;
    events linked to evidence under a legal hold now are marked ``held``."""
    tenant = validate_tenant(tenant)
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, not {limit}")
    if after < 0:
        raise UsageError(f"--after must be a cursor from an earlier page, not {after}")
    with Store.open(home, read_only=True) as store:
        case = held_digests(store.conn, tenant, case_id=where.case_id) if where.case_id is not None else set()
        rows = list_events(store.conn, tenant, where, after=after, limit=limit + 1, held_digests=case)
        held = held_digests(store.conn, tenant)
    more = len(rows) > limit
    page = _mark_held(rows[:limit], held)
    return TimelinePage(tenant, page, page[-1].seq if more and page else None)


def show_event(home: Home, tenant: str, event_id: str) -> TimelineEvent:
    """`stella timeline show ID`: one of the tenant's events (another tenant's id is not found)."""
    tenant = validate_tenant(tenant)
    with Store.open(home, read_only=True) as store:
        event = get_event(store.conn, tenant, event_id)
        return _mark_held([event], held_digests(store.conn, tenant))[0]


@dataclass(frozen=True)
class EventEvidence:
    """`stella timeline evidence ID`: the signed references an event carries: the bundle's manifest digest (signed
    by the bundle's key), the sealed evidence bundles (their Merkle roots, signing keys and timestamps, as the
    locker holds them) and the attestation subjects."""

    event: TimelineEvent
    manifest_sha256: str | None
    bundle_sha256: str | None
    evidence: list[EvidenceRef]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.event.id,
            "type": self.event.type,
            "subject": self.event.subject,
            "runId": self.event.run_id,
            "manifestSha256": self.manifest_sha256,
            "bundleSha256": self.bundle_sha256,
            "evidence": [e.to_dict() for e in self.evidence],
            "attestationSubjects": [{"name": s.name, "digest": s.digest} for s in self.event.attestation_subjects],
            "held": self.event.held,
        }


def event_evidence(home: Home, tenant: str, event_id: str) -> EventEvidence:
    """The references of one of the tenant's events (see :class:`EventEvidence`)."""
    tenant = validate_tenant(tenant)
    with Store.open(home, read_only=True) as store:
        event = get_event(store.conn, tenant, event_id)
        event = _mark_held([event], held_digests(store.conn, tenant))[0]
        refs = evidence_refs(store.conn, tenant, event.evidence_digests)
    manifest = event.data.get("manifestSha256")
    bundle = event.data.get("bundle")
    bundle_sha = bundle.get("sha256") if isinstance(bundle, dict) else None
    return EventEvidence(
        event,
        manifest if isinstance(manifest, str) else None,
        bundle_sha if isinstance(bundle_sha, str) else None,
        refs,
    )


def iter_timeline(store: Store, tenant: str, where: EventFilter, *, page: int = 500) -> Iterator[TimelineEvent]:
    """Every matching event of the tenant in sequence order, read a page at a time."""
    after = 0
    while True:
        case = held_digests(store.conn, tenant, case_id=where.case_id) if where.case_id is not None else set()
        rows = list_events(store.conn, tenant, where, after=after, limit=page, held_digests=case)
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1].seq


def export_timeline(home: Home, tenant: str, where: EventFilter, out: Path) -> int:
    """`stella timeline export --out FILE.ndjson`: the matching events as NDJSON CloudEvents, one a line, in sequence
    order; the file appears whole or not at all. Returns how many were written."""
    tenant = validate_tenant(tenant)
    count = 0
    with Store.open(home, read_only=True) as store, atomic_file(out, what="cannot write the timeline export") as fh:
        for event in iter_timeline(store, tenant, where):
            fh.write(canonical_json(event.to_cloudevent()) + b"\n")
            count += 1
    return count
