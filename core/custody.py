"""The chain of custody: append-only events, each hash-chained to the one before it.

An event records who did what to which evidence (with the digest of what they touched), when, where and why.
Its ``hash`` is the SHA-256 of the RFC 8785 canonical JSON of the event without ``hash`` (:meth:`CustodyEvent.body`),
and its ``prev`` is the previous event's ``hash`` (64 zeros for the first event of a chain). ``seq`` counts up by
one from 1. Removing, inserting or reordering an event therefore breaks a ``prev`` link or the count, and a
changed event no longer matches its own hash: :func:`verify_chain` names the first event that does not fit.

A sealed evidence bundle carries a contiguous run of a chain (``custody.jsonl``) and its signed manifest records
the run's first ``seq``, the ``prev`` it starts from, its length and its head, so a missing event at either end is
detected too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from core.canonical import canonical_json
from core.clock import rfc3339
from core.errors import BadInputError, IntegrityError

#: What a custody event records (ordinary words, so not wire facts of ``core.contract``).
CUSTODY_ACTIONS = (
    "access",
    "export",
    "hold",
    "release",
    "transfer",
    "verify",
    "seal",
    "snapshot",
    "delete-refused",
    "prune-kept",
    "dispose",
    "retain",
)
#: The ``prev`` of a chain's first event.
GENESIS = "0" * 64
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
#: JSON keys of an event, in the order of the dataclass fields.
_KEYS = {
    "seq": "seq",
    "at": "at",
    "actor": "actor",
    "action": "action",
    "subject": "subject",
    "subject_digest": "subjectDigest",
    "where": "where",
    "why": "why",
    "prev": "prev",
    "hash": "hash",
}


@dataclass(frozen=True)
class CustodyEvent:
    """One custody event. ``at`` is RFC 3339 UTC (``...Z``), ``subject_digest`` ``sha256:<hex>``, ``prev`` and
    ``hash`` lowercase hex."""

    seq: int
    at: str
    actor: str
    action: str
    subject: str
    subject_digest: str
    where: str
    why: str
    prev: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The JSON form without ``hash``: what ``hash`` is computed over."""
        out = self.to_dict()
        del out["hash"]
        return out

    def computed_hash(self) -> str:
        """The hash this event's content gives (equal to ``hash`` for an intact event)."""
        return hashlib.sha256(canonical_json(self.body())).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (camelCase keys), one line of ``custody.jsonl``."""
        return {_KEYS[k]: v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CustodyEvent:
        """Parse the JSON form; raises BadInputError naming the field that is missing or of the wrong type."""
        if not isinstance(data, Mapping):
            raise BadInputError("a custody event is not a JSON object")
        extra = set(data) - set(_KEYS.values())
        if extra:
            raise BadInputError(f"custody event has unknown fields: {', '.join(sorted(extra))}")
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = _KEYS[f.name]
            value = data.get(key)
            wanted = int if f.name == "seq" else str
            if type(value) is not wanted:
                raise BadInputError(f"custody event field {key!r} is missing or not a {wanted.__name__}")
            values[f.name] = value
        return cls(**values)


def _check_fields(event: CustodyEvent) -> str | None:
    """Why the event's fields are not well formed, or None."""
    if event.action not in CUSTODY_ACTIONS:
        return f"unknown action {event.action!r}"
    if not _RFC3339_UTC.match(event.at):
        return f"time {event.at!r} is not RFC 3339 UTC"
    if not _DIGEST.match(event.subject_digest):
        return f"subject digest {event.subject_digest!r} is not sha256:<hex>"
    if not _HEX64.match(event.prev) or not _HEX64.match(event.hash):
        return "prev or hash is not 64 lowercase hex digits"
    if not event.actor or not event.subject:
        return "actor and subject must not be empty"
    return None


def append_event(
    chain: Sequence[CustodyEvent],
    *,
    at: datetime | str,
    actor: str,
    action: str,
    subject: str,
    subject_digest: str,
    where: str,
    why: str,
) -> CustodyEvent:
    """The event that follows ``chain`` (its last event, if any): ``seq`` one more, ``prev`` its hash.

    ``at`` is a naive-UTC datetime or an RFC 3339 UTC string. Raises BadInputError for an unknown action or a
    malformed time or digest, so a malformed event is never written.
    """
    last = chain[-1] if chain else None
    draft = CustodyEvent(
        seq=last.seq + 1 if last else 1,
        at=at if isinstance(at, str) else rfc3339(at),
        actor=actor,
        action=action,
        subject=subject,
        subject_digest=subject_digest,
        where=where,
        why=why,
        prev=last.hash if last else GENESIS,
        hash=GENESIS,
    )
    problem = _check_fields(draft)
    if problem:
        raise BadInputError(f"custody event: {problem}")
    return CustodyEvent(**{**asdict(draft), "hash": draft.computed_hash()})


def verify_chain(events: Sequence[CustodyEvent], *, anchor: str = GENESIS, path: str | None = None) -> str:
    """Check that ``events`` form an unbroken chain starting from ``anchor``; returns the head hash.

    ``anchor`` is the ``prev`` of the first event (64 zeros for a whole chain; a sealed bundle records the anchor
    of the run it carries). Raises IntegrityError naming the first event (by position and ``seq``) whose content no
    longer matches its hash, whose ``prev`` is not the hash before it, or whose ``seq`` does not follow. An empty
    list verifies to ``anchor``.
    """
    head = anchor
    expected_seq: int | None = None
    for position, event in enumerate(events, start=1):
        where = f"custody event {position} (seq {event.seq})"
        problem = _check_fields(event)
        if problem:
            raise IntegrityError(f"{where}: {problem}", path=path)
        if event.computed_hash() != event.hash:
            raise IntegrityError(f"{where} was altered: its content does not match its hash", path=path)
        if event.prev != head:
            raise IntegrityError(
                f"{where} does not follow the event before it: an event was removed, inserted or reordered",
                path=path,
            )
        if expected_seq is None and anchor == GENESIS and event.seq != 1:
            raise IntegrityError(f"{where}: the first event of a chain has seq 1", path=path)
        if expected_seq is not None and event.seq != expected_seq:
            raise IntegrityError(f"{where}: expected seq {expected_seq}", path=path)
        expected_seq = event.seq + 1
        head = event.hash
    return head
