"""The timeline's rows: CloudEvents-shaped events, one per (tenant, event id), in a per-tenant sequence.

An event is written once. A producer that retries (a crash, a lock it waited for, a command run again) sends the
same id, and the store answers with the event it already holds; the same id with different content is refused,
since it would silently lose one of the two. The sequence is assigned inside the writing transaction as the
tenant's highest sequence plus one, and ``UNIQUE (tenant, seq)`` makes a second writer that raced for the same
number fail and try again, so the order is total and has no gaps.

The SQL lives here; :mod:`services.timeline` opens the store and the transaction.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import duckdb
import orjson

from core.canonical import canonical_json
from core.clock import rfc3339
from core.contract.timeline import TYPE_PREFIX
from core.errors import BadInputError, NotFoundError, UsageError
from core.tenants import validate_tenant

#: The CloudEvents version of every envelope.
SPECVERSION = "1.0"
#: The media type of every event's ``data``.
DATA_CONTENT_TYPE = "application/json"
#: What links an event to a sealed evidence bundle and to an attestation's subject (timeline_event_digests.kind).
LINK_EVIDENCE = "evidence"
LINK_ATTESTATION = "attestation"
#: Width of the CloudEvents ``sequence`` extension: zero-padded, so it orders as a string too.
SEQUENCE_WIDTH = 20

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_MAX_ID = 200
_MAX_FIELD = 1000


class AttestationSubject(NamedTuple):
    """An in-toto subject an event concerns: its name and ``sha256:<hex>`` digest."""

    name: str
    digest: str


@dataclass(frozen=True)
class EventDraft:
    """An event as a producer hands it over, before the store gives it a sequence number."""

    tenant: str
    type: str
    source: str
    subject: str
    data: Mapping[str, Any]
    time: datetime
    event_id: str | None = None
    run_id: str | None = None
    trace_id: str | None = None
    case_id: str | None = None
    evidence_digests: tuple[str, ...] = ()
    attestation_subjects: tuple[AttestationSubject, ...] = ()

    def checked(self) -> EventDraft:
        """This draft with its fields validated (exit 2 for a producer's mistake) and its links sorted."""
        validate_tenant(self.tenant)
        for name, value in (("type", self.type), ("source", self.source), ("subject", self.subject)):
            if not value or len(value) > _MAX_FIELD or not value.isprintable():
                raise UsageError(f"timeline event {name} {value!r} must be printable text of 1-{_MAX_FIELD} characters")
        for name, opt in (
            ("id", self.event_id),
            ("run", self.run_id),
            ("trace", self.trace_id),
            ("case", self.case_id),
        ):
            if opt is not None and (not opt or len(opt) > _MAX_ID or not opt.isprintable()):
                raise UsageError(f"timeline event {name} {opt!r} must be printable text of 1-{_MAX_ID} characters")
        for digest in [*self.evidence_digests, *(s.digest for s in self.attestation_subjects)]:
            if not _DIGEST.match(digest):
                raise UsageError(f"timeline link {digest!r} is not a sha256:<64 lowercase hex> digest")
        if self.time.tzinfo is not None:
            raise UsageError("timeline event times are naive UTC")
        try:
            canonical_json(dict(self.data))
        except Exception as exc:  # NaN, non-string keys, objects JSON cannot carry
            raise UsageError(f"timeline event data is not JSON: {exc}") from None
        return EventDraft(
            tenant=self.tenant,
            type=self.type,
            source=self.source,
            subject=self.subject,
            data=dict(self.data),
            time=self.time,
            event_id=self.event_id,
            run_id=self.run_id,
            trace_id=self.trace_id,
            case_id=self.case_id,
            evidence_digests=tuple(sorted(set(self.evidence_digests))),
            attestation_subjects=tuple(sorted({AttestationSubject(*s) for s in self.attestation_subjects})),
        )

    def content_sha256(self) -> str:
        """What the event says, hashed: everything but its id and times, so a retry hashes the same."""
        body = {
            "tenant": self.tenant,
            "type": self.type,
            "source": self.source,
            "subject": self.subject,
            "data": dict(self.data),
            "runId": self.run_id,
            "traceId": self.trace_id,
            "caseId": self.case_id,
            "evidence": list(self.evidence_digests),
            "attestations": [[s.name, s.digest] for s in self.attestation_subjects],
        }
        return hashlib.sha256(canonical_json(body)).hexdigest()

    def resolved_id(self) -> str:
        """The producer's id, or one derived from the content: a retry of the same event gets the same id."""
        return self.event_id if self.event_id is not None else self.content_sha256()[:32]


@dataclass(frozen=True)
class TimelineEvent:
    """One recorded event (``timeline_events`` with its details and links)."""

    tenant: str
    seq: int
    id: str
    source: str
    type: str
    subject: str
    time: datetime
    recorded_at: datetime
    data: dict[str, Any]
    run_id: str | None = None
    trace_id: str | None = None
    case_id: str | None = None
    evidence_digests: tuple[str, ...] = ()
    attestation_subjects: tuple[AttestationSubject, ...] = ()
    datacontenttype: str = DATA_CONTENT_TYPE
    specversion: str = SPECVERSION
    held: bool = field(default=False, compare=False)  # a linked evidence bundle is under a legal hold now

    @property
    def short_type(self) -> str:
        """The type without stella's reverse-DNS prefix (``export.built``)."""
        return self.type.removeprefix(TYPE_PREFIX)

    def to_cloudevent(self) -> dict[str, Any]:
        """The CloudEvents 1.0 JSON form (structured mode). Extensions: ``sequence`` (the tenant's order,
        zero-padded), ``recordedtime``, ``tenant``, and when set ``runid``, ``traceid``, ``caseid``,
        ``evidencedigests`` and ``attestationsubjects`` (space-separated; a subject is ``name@sha256:hex``)."""
        out: dict[str, Any] = {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": rfc3339(self.time),
            "datacontenttype": self.datacontenttype,
            "sequence": f"{self.seq:0{SEQUENCE_WIDTH}d}",
            "recordedtime": rfc3339(self.recorded_at),
            "tenant": self.tenant,
        }
        for key, value in (("runid", self.run_id), ("traceid", self.trace_id), ("caseid", self.case_id)):
            if value is not None:
                out[key] = value
        if self.evidence_digests:
            out["evidencedigests"] = " ".join(self.evidence_digests)
        if self.attestation_subjects:
            out["attestationsubjects"] = " ".join(f"{s.name}@{s.digest}" for s in self.attestation_subjects)
        out["data"] = self.data
        return out

    def to_dict(self) -> dict[str, Any]:
        """The stable ``--json`` form: the CloudEvent plus ``seq`` (a number) and ``held``."""
        return self.to_cloudevent() | {"seq": self.seq, "held": self.held}


@dataclass(frozen=True)
class EventFilter:
    """What `stella timeline list` narrows to. Every field is optional; all given ones must hold."""

    types: tuple[str, ...] = ()  # exact types, short types (export.built) or prefixes ending in '*' (export.*)
    subject: str | None = None  # exact, or a prefix ending in '*'
    since: datetime | None = None  # event time >= since
    until: datetime | None = None  # event time < until
    run_id: str | None = None
    case_id: str | None = None  # the event's case, or a link to evidence held under that case
    trace_id: str | None = None


class ConflictingEvent(BadInputError):
    """An event id the tenant already holds, sent again with different content."""

    code = "timeline-conflict"


class SequenceRace(Exception):
    """Another writer took the sequence number first; the caller retries the whole transaction."""


_EVENT_COLUMNS = (
    "e.tenant, e.seq, e.event_id, e.source, e.type, e.subject, e.event_time, e.recorded_at, e.run_id, e.trace_id,"
    " e.case_id, d.datacontenttype, d.data"
)


def insert_event(cur: duckdb.DuckDBPyConnection, draft: EventDraft, *, now: datetime) -> tuple[TimelineEvent, bool]:
    """Record ``draft`` on ``cur`` inside the caller's transaction; returns the event and whether it is new.

    The same id with the same content returns the stored event unchanged (a retry); with other content it raises
    :class:`ConflictingEvent` (exit 3). A lost race for the next sequence number raises :class:`SequenceRace`.
    """
    draft = draft.checked()
    event_id = draft.resolved_id()
    content = draft.content_sha256()
    row = cur.execute(
        "SELECT content_sha256 FROM timeline_events WHERE tenant = ? AND event_id = ?", [draft.tenant, event_id]
    ).fetchone()
    if row is not None:
        if row[0] != content:
            raise ConflictingEvent(
                f"timeline event {event_id} of tenant {draft.tenant} was already recorded with other content",
                hint="a producer must give each distinct event its own id",
            )
        return get_event(cur, draft.tenant, event_id), False
    top = cur.execute("SELECT coalesce(max(seq), 0) FROM timeline_events WHERE tenant = ?", [draft.tenant]).fetchone()
    seq = int(top[0] if top else 0) + 1
    try:
        cur.execute(
            "INSERT INTO timeline_events (tenant, seq, event_id, source, type, subject, event_time, recorded_at,"
            " run_id, trace_id, case_id, content_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                draft.tenant,
                seq,
                event_id,
                draft.source,
                draft.type,
                draft.subject,
                draft.time,
                now,
                draft.run_id,
                draft.trace_id,
                draft.case_id,
                content,
            ],
        )
    except duckdb.ConstraintException as exc:
        raise SequenceRace(str(exc)) from exc
    cur.execute(
        "INSERT INTO timeline_event_details (tenant, event_id, datacontenttype, data) VALUES (?, ?, ?, ?)",
        [draft.tenant, event_id, DATA_CONTENT_TYPE, canonical_json(dict(draft.data)).decode("utf-8")],
    )
    links = [(LINK_EVIDENCE, d, "") for d in draft.evidence_digests] + [
        (LINK_ATTESTATION, s.digest, s.name) for s in draft.attestation_subjects
    ]
    if links:
        cur.executemany(
            "INSERT INTO timeline_event_digests (tenant, event_id, kind, digest, name) VALUES (?, ?, ?, ?, ?)",
            [[draft.tenant, event_id, kind, digest, name] for kind, digest, name in links],
        )
    return (
        TimelineEvent(
            tenant=draft.tenant,
            seq=seq,
            id=event_id,
            source=draft.source,
            type=draft.type,
            subject=draft.subject,
            time=draft.time,
            recorded_at=now,
            data=dict(draft.data),
            run_id=draft.run_id,
            trace_id=draft.trace_id,
            case_id=draft.case_id,
            evidence_digests=draft.evidence_digests,
            attestation_subjects=draft.attestation_subjects,
        ),
        True,
    )


def get_event(cur: duckdb.DuckDBPyConnection, tenant: str, event_id: str) -> TimelineEvent:
    """The tenant's event ``event_id`` (exit 3 when it has none: another tenant's id is not found either)."""
    rows = cur.execute(
        f"SELECT {_EVENT_COLUMNS} FROM timeline_events e JOIN timeline_event_details d"
        " ON d.tenant = e.tenant AND d.event_id = e.event_id WHERE e.tenant = ? AND e.event_id = ?",
        [tenant, event_id],
    ).fetchall()
    if not rows:
        raise NotFoundError(
            f"no timeline event {event_id!r} for tenant {tenant}", hint="list them with `stella timeline list`"
        )
    return _with_links(cur, tenant, rows)[0]


def list_events(
    cur: duckdb.DuckDBPyConnection,
    tenant: str,
    where: EventFilter,
    *,
    after: int = 0,
    limit: int | None = None,
    held_digests: Iterable[str] = (),
) -> list[TimelineEvent]:
    """The tenant's events matching ``where`` with a sequence above ``after``, in sequence order.

    ``after`` is the cursor: the last sequence number a previous page ended with. Sequence numbers never change, so
    paging is stable while new events arrive (they come after). ``held_digests`` are evidence digests under a legal
    hold (the locker's), marking the events linked to them and matching ``case_id``.
    """
    sql = [
        f"SELECT {_EVENT_COLUMNS} FROM timeline_events e JOIN timeline_event_details d"
        " ON d.tenant = e.tenant AND d.event_id = e.event_id WHERE e.tenant = ? AND e.seq > ?"
    ]
    params: list[Any] = [tenant, after]
    if where.types:
        alts = []
        for t in where.types:
            if t.endswith("*"):
                alts.append("(starts_with(e.type, ?) OR starts_with(e.type, ?))")
                params += [t[:-1], TYPE_PREFIX + t[:-1]]
            else:
                alts.append("e.type IN (?, ?)")
                params += [t, TYPE_PREFIX + t]
        sql.append(f"AND ({' OR '.join(alts)})")
    if where.subject is not None:
        if where.subject.endswith("*"):
            sql.append("AND starts_with(e.subject, ?)")
            params.append(where.subject[:-1])
        else:
            sql.append("AND e.subject = ?")
            params.append(where.subject)
    for column, op, value in (
        ("e.event_time", ">=", where.since),
        ("e.event_time", "<", where.until),
        ("e.run_id", "=", where.run_id),
        ("e.trace_id", "=", where.trace_id),
    ):
        if value is not None:
            sql.append(f"AND {column} {op} ?")
            params.append(value)
    if where.case_id is not None:
        held = sorted(set(held_digests))
        sql.append(
            "AND (e.case_id = ? OR EXISTS (SELECT 1 FROM timeline_event_digests g WHERE g.tenant = e.tenant"
            " AND g.event_id = e.event_id AND g.kind = ? AND list_contains(?, g.digest)))"
        )
        params += [where.case_id, LINK_EVIDENCE, held]
    sql.append("ORDER BY e.seq")
    if limit is not None:
        sql.append("LIMIT ?")
        params.append(limit)
    return _with_links(cur, tenant, cur.execute(" ".join(sql), params).fetchall())


def tenant_head(cur: duckdb.DuckDBPyConnection, tenant: str) -> int:
    """The tenant's highest sequence number (0 before its first event)."""
    row = cur.execute("SELECT coalesce(max(seq), 0) FROM timeline_events WHERE tenant = ?", [tenant]).fetchone()
    return int(row[0]) if row else 0


def _with_links(cur: duckdb.DuckDBPyConnection, tenant: str, rows: Sequence[Sequence[Any]]) -> list[TimelineEvent]:
    ids = [r[2] for r in rows]
    evidence: dict[str, list[str]] = {}
    subjects: dict[str, list[AttestationSubject]] = {}
    if ids:
        for event_id, kind, digest, name in cur.execute(
            "SELECT event_id, kind, digest, name FROM timeline_event_digests WHERE tenant = ? AND list_contains(?,"
            " event_id) ORDER BY event_id, kind, digest, name",
            [tenant, ids],
        ).fetchall():
            if kind == LINK_EVIDENCE:
                evidence.setdefault(event_id, []).append(digest)
            else:
                subjects.setdefault(event_id, []).append(AttestationSubject(name, digest))
    return [
        TimelineEvent(
            tenant=r[0],
            seq=int(r[1]),
            id=r[2],
            source=r[3],
            type=r[4],
            subject=r[5],
            time=r[6],
            recorded_at=r[7],
            run_id=r[8],
            trace_id=r[9],
            case_id=r[10],
            datacontenttype=r[11],
            data=orjson.loads(r[12]),
            evidence_digests=tuple(evidence.get(r[2], ())),
            attestation_subjects=tuple(subjects.get(r[2], ())),
        )
        for r in rows
    ]


def _has_table(cur: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = cur.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?", [name]
    ).fetchone()
    return bool(row and row[0])


def held_digests(cur: duckdb.DuckDBPyConnection, tenant: str, *, case_id: str | None = None) -> set[str]:
    """Digests of the tenant's sealed evidence bundles under a legal hold: every hold now in place, or with
    ``case_id`` every bundle that case has held, released since or not (so a case's history stays findable)."""
    if not (_has_table(cur, "evidence_holds") and _has_table(cur, "evidence_bundles")):
        return set()
    sql = (
        "SELECT DISTINCT b.digest FROM evidence_holds h JOIN evidence_bundles b"
        " ON b.tenant = h.tenant AND b.evidence_id = h.evidence_id WHERE h.tenant = ?"
    )
    params: list[Any] = [tenant]
    if case_id is None:
        sql += " AND h.released_at IS NULL"
    else:
        sql += " AND h.case_id = ?"
        params.append(case_id)
    return {r[0] for r in cur.execute(sql, params).fetchall()}


@dataclass(frozen=True)
class EvidenceRef:
    """A sealed evidence bundle an event links to, as the locker records it (None fields: not in this store)."""

    digest: str
    evidence_id: str | None = None
    kind: str | None = None
    root_hash: str | None = None
    tree_size: int | None = None
    key_id: str | None = None
    timestamped: bool | None = None
    holds: tuple[str, ...] = ()  # case ids holding it now

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "evidenceId": self.evidence_id,
            "kind": self.kind,
            "rootHash": self.root_hash,
            "treeSize": self.tree_size,
            "keyId": self.key_id,
            "timestamped": self.timestamped,
            "heldBy": list(self.holds),
        }


def evidence_refs(cur: duckdb.DuckDBPyConnection, tenant: str, digests: Sequence[str]) -> list[EvidenceRef]:
    """What the tenant's locker says about each evidence digest (only the tenant's own bundles are looked up)."""
    if not digests:
        return []
    if not (_has_table(cur, "evidence_bundles") and _has_table(cur, "evidence_holds")):
        return [EvidenceRef(d) for d in digests]
    rows = {
        r[0]: r
        for r in cur.execute(
            "SELECT digest, evidence_id, kind, root_hash, tree_size, key_id, timestamped FROM evidence_bundles"
            " WHERE tenant = ? AND list_contains(?, digest)",
            [tenant, list(digests)],
        ).fetchall()
    }
    out = []
    for digest in digests:
        r = rows.get(digest)
        if r is None:
            out.append(EvidenceRef(digest))
            continue
        cases = cur.execute(
            "SELECT DISTINCT case_id FROM evidence_holds WHERE tenant = ? AND evidence_id = ? AND released_at IS NULL"
            " ORDER BY case_id",
            [tenant, r[1]],
        ).fetchall()
        out.append(EvidenceRef(digest, r[1], r[2], r[3], int(r[4]), r[5], bool(r[6]), tuple(c[0] for c in cases)))
    return out
