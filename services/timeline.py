"""The timeline: record CloudEvents-shaped events, list, show and export them.

Producers (the export engine's hooks, the evidence locker, incident mode) call :func:`record_event` with the store
they hold; `stella timeline ...` and the TUI's timeline screen read through the other functions here. Recording is
idempotent: the same event sent twice (a producer's retry) is stored once. When an event is one that needs a human
(a bundle ready for transfer, a failed run) the notifications configured in the home hear it once
(:mod:`services.notify`).
"""

from __future__ import annotations

import time as _time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from core.atomic import atomic_file
from core.canonical import canonical_json
from core.clock import utcnow
from core.errors import EnvironmentFailure, StoreLockedError, UsageError
from core.home import Home
from core.ingest import validate_tenant
from core.store import Store
from core.timeline import (
    AttestationSubject,
    EventDraft,
    EventFilter,
    SequenceRace,
    TimelineEvent,
    get_event,
    insert_event,
    list_events,
)

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
            _time.sleep(delay)
            delay = min(delay * 2, 0.25)
            continue
        with store:
            return _record(store, drafts)


def _record(store: Store, drafts: Sequence[EventDraft]) -> list[TimelineEvent]:
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
    return [event for event, _ in recorded]


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


def list_timeline(home: Home, tenant: str, where: EventFilter, *, after: int = 0, limit: int = 50) -> TimelinePage:
    """`stella timeline list`: the tenant's events matching ``where``, ``limit`` at a time after cursor ``after``."""
    tenant = validate_tenant(tenant)
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, not {limit}")
    if after < 0:
        raise UsageError(f"--after must be a cursor from an earlier page, not {after}")
    with Store.open(home, read_only=True) as store:
        rows = list_events(store.conn, tenant, where, after=after, limit=limit + 1)
    more = len(rows) > limit
    page = rows[:limit]
    return TimelinePage(tenant, page, page[-1].seq if more and page else None)


def show_event(home: Home, tenant: str, event_id: str) -> TimelineEvent:
    """`stella timeline show ID`: one of the tenant's events (another tenant's id is not found)."""
    tenant = validate_tenant(tenant)
    with Store.open(home, read_only=True) as store:
        return get_event(store.conn, tenant, event_id)


def iter_timeline(store: Store, tenant: str, where: EventFilter, *, page: int = 500) -> Iterator[TimelineEvent]:
    """Every matching event of the tenant in sequence order, read a page at a time."""
    after = 0
    while True:
        rows = list_events(store.conn, tenant, where, after=after, limit=page)
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
