"""The evidence locker's tables (migration 0005): sealed bundles, their artifacts, legal holds, the custody chain,
per-tenant settings and incidents.

Only SQL lives here; :mod:`services.evidence` decides what may happen (holds, retention, quotas) and seals. Every
query takes the tenant and filters by it, so one tenant's evidence is never visible to another: an id of another
tenant reads exactly like an id that does not exist.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from core.clock import rfc3339
from core.custody import CustodyEvent
from core.errors import NotFoundError, UsageError

#: Retention of new evidence when a tenant set none: 90 days, in seconds.
DEFAULT_RETENTION_SECONDS = 90 * 86400


@dataclass(frozen=True)
class EvidenceBundle:
    """One sealed evidence bundle as the locker records it."""

    tenant: str
    evidence_id: str
    kind: str
    subject: str
    created_at: datetime
    created_by: str
    root_hash: str
    tree_size: int
    digest: str
    size: int
    key_id: str
    timestamped: bool
    redaction_profile: str
    custody_head: str
    retention_until: datetime
    previous_id: str | None
    archive_path: str

    def to_dict(self) -> dict[str, Any]:
        """The stable ``--json`` form."""
        return {
            "id": self.evidence_id,
            "tenant": self.tenant,
            "kind": self.kind,
            "subject": self.subject,
            "createdAt": rfc3339(self.created_at),
            "createdBy": self.created_by,
            "rootHash": self.root_hash,
            "treeSize": self.tree_size,
            "digest": self.digest,
            "size": self.size,
            "keyId": self.key_id,
            "timestamped": self.timestamped,
            "redactionProfile": self.redaction_profile,
            "custodyHead": self.custody_head,
            "retentionUntil": rfc3339(self.retention_until),
            "previousId": self.previous_id,
        }


@dataclass(frozen=True)
class EvidenceArtifactRow:
    """One artifact of a sealed bundle: a leaf of its Merkle tree."""

    leaf_index: int
    path: str
    sha256: str
    size: int
    media_type: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "leafIndex": self.leaf_index,
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "mediaType": self.media_type,
        }


@dataclass(frozen=True)
class Hold:
    """A legal hold on one bundle under a case; active until released."""

    case_id: str
    evidence_id: str
    reason: str
    placed_by: str
    placed_at: datetime
    released_by: str | None
    released_at: datetime | None
    release_reason: str | None

    @property
    def active(self) -> bool:
        return self.released_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case_id,
            "evidenceId": self.evidence_id,
            "reason": self.reason,
            "placedBy": self.placed_by,
            "placedAt": rfc3339(self.placed_at),
            "active": self.active,
            "releasedBy": self.released_by,
            "releasedAt": None if self.released_at is None else rfc3339(self.released_at),
            "releaseReason": self.release_reason,
        }


@dataclass(frozen=True)
class Settings:
    """A tenant's locker settings: the size quota (None: no quota) and the retention of new evidence."""

    quota_bytes: int | None
    retention_seconds: int

    def to_dict(self) -> dict[str, Any]:
        return {"quotaBytes": self.quota_bytes, "retentionSeconds": self.retention_seconds}


@dataclass(frozen=True)
class Incident:
    """An incident: open while ``stopped_at`` is None."""

    incident_id: str
    reason: str
    retention_seconds: int
    started_by: str
    started_at: datetime
    start_evidence_id: str | None
    stopped_by: str | None
    stopped_at: datetime | None
    stop_reason: str | None
    stop_evidence_id: str | None

    @property
    def open(self) -> bool:
        return self.stopped_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.incident_id,
            "reason": self.reason,
            "retentionSeconds": self.retention_seconds,
            "startedBy": self.started_by,
            "startedAt": rfc3339(self.started_at),
            "startEvidenceId": self.start_evidence_id,
            "open": self.open,
            "stoppedBy": self.stopped_by,
            "stoppedAt": None if self.stopped_at is None else rfc3339(self.stopped_at),
            "stopReason": self.stop_reason,
            "stopEvidenceId": self.stop_evidence_id,
        }


_BUNDLE_COLUMNS = (
    "tenant, evidence_id, kind, subject, created_at, created_by, root_hash, tree_size, digest, size, key_id,"
    " timestamped, redaction_profile, custody_head, retention_until, previous_id, archive_path"
)
_HOLD_COLUMNS = "case_id, evidence_id, reason, placed_by, placed_at, released_by, released_at, release_reason"
_CUSTODY_COLUMNS = "seq, event_at, actor, action, subject, subject_digest, host, why, prev, hash"
_INCIDENT_COLUMNS = (
    "incident_id, reason, retention_seconds, started_by, started_at, start_evidence_id, stopped_by, stopped_at,"
    " stop_reason, stop_evidence_id"
)


def _bundle(row: Sequence[Any]) -> EvidenceBundle:
    return EvidenceBundle(
        tenant=row[0],
        evidence_id=row[1],
        kind=row[2],
        subject=row[3],
        created_at=row[4],
        created_by=row[5],
        root_hash=row[6],
        tree_size=int(row[7]),
        digest=row[8],
        size=int(row[9]),
        key_id=row[10],
        timestamped=bool(row[11]),
        redaction_profile=row[12],
        custody_head=row[13],
        retention_until=row[14],
        previous_id=row[15],
        archive_path=row[16],
    )


class EvidenceStore:
    """The locker's SQL over one connection or cursor (writes belong inside the caller's transaction)."""

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self.cur = cur

    # -- bundles ----------------------------------------------------------------------------------
    def insert_bundle(self, bundle: EvidenceBundle, artifacts: Sequence[EvidenceArtifactRow]) -> None:
        self.cur.execute(
            f"INSERT INTO evidence_bundles ({_BUNDLE_COLUMNS}) VALUES ({', '.join('?' * 17)})",
            [
                bundle.tenant,
                bundle.evidence_id,
                bundle.kind,
                bundle.subject,
                bundle.created_at,
                bundle.created_by,
                bundle.root_hash,
                bundle.tree_size,
                bundle.digest,
                bundle.size,
                bundle.key_id,
                bundle.timestamped,
                bundle.redaction_profile,
                bundle.custody_head,
                bundle.retention_until,
                bundle.previous_id,
                bundle.archive_path,
            ],
        )
        if artifacts:
            self.cur.executemany(
                "INSERT INTO evidence_artifacts (tenant, evidence_id, leaf_index, path, sha256, size, media_type)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    [bundle.tenant, bundle.evidence_id, a.leaf_index, a.path, a.sha256, a.size, a.media_type]
                    for a in artifacts
                ],
            )

    def resolve(self, tenant: str, ident: str) -> str:
        """The tenant's evidence id ``ident`` names: a whole id or a unique prefix (ambiguous: exit 2; none: exit 3)."""
        rows = self.cur.execute(
            "SELECT evidence_id FROM evidence_bundles"
            " WHERE tenant = ? AND (evidence_id = ? OR starts_with(evidence_id, ?))"
            " ORDER BY evidence_id LIMIT 11",
            [tenant, ident, ident],
        ).fetchall()
        ids = [str(r[0]) for r in rows]
        if ident in ids:
            return ident
        if not ids or not ident:
            raise NotFoundError(f"no evidence {ident!r} in tenant {tenant!r}", hint="see `stella evidence list`")
        if len(ids) > 1:
            shown = ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")
            raise UsageError(f"{ident!r} matches {len(ids)} evidence bundles: {shown}", hint="give more of the id")
        return ids[0]

    def get(self, tenant: str, ident: str) -> EvidenceBundle:
        """One of the tenant's bundles, by id or unique prefix."""
        evidence_id = self.resolve(tenant, ident)
        row = self.cur.execute(
            f"SELECT {_BUNDLE_COLUMNS} FROM evidence_bundles WHERE tenant = ? AND evidence_id = ?",
            [tenant, evidence_id],
        ).fetchone()
        assert row is not None  # resolved just now, under the same lock
        return _bundle(row)

    def by_digest(self, tenant: str, digest: str) -> EvidenceBundle | None:
        """The tenant's bundle whose sealed archive has ``digest`` (``sha256:<hex>``), if any."""
        row = self.cur.execute(
            f"SELECT {_BUNDLE_COLUMNS} FROM evidence_bundles WHERE tenant = ? AND digest = ?", [tenant, digest]
        ).fetchone()
        return None if row is None else _bundle(row)

    def list(self, tenant: str) -> builtins.list[EvidenceBundle]:
        """The tenant's bundles, newest first."""
        rows = self.cur.execute(
            f"SELECT {_BUNDLE_COLUMNS} FROM evidence_bundles WHERE tenant = ?"
            " ORDER BY created_at DESC, evidence_id DESC",
            [tenant],
        ).fetchall()
        return [_bundle(r) for r in rows]

    def artifacts(self, tenant: str, evidence_id: str) -> builtins.list[EvidenceArtifactRow]:
        rows = self.cur.execute(
            "SELECT leaf_index, path, sha256, size, media_type FROM evidence_artifacts"
            " WHERE tenant = ? AND evidence_id = ? ORDER BY leaf_index",
            [tenant, evidence_id],
        ).fetchall()
        return [EvidenceArtifactRow(int(r[0]), r[1], r[2], int(r[3]), r[4]) for r in rows]

    def delete(self, tenant: str, evidence_id: str) -> None:
        """Remove a bundle's rows (its holds, released ones included, stay as history)."""
        self.cur.execute("DELETE FROM evidence_artifacts WHERE tenant = ? AND evidence_id = ?", [tenant, evidence_id])
        self.cur.execute("DELETE FROM evidence_bundles WHERE tenant = ? AND evidence_id = ?", [tenant, evidence_id])

    def set_retention(self, tenant: str, evidence_id: str, until: datetime) -> None:
        self.cur.execute(
            "UPDATE evidence_bundles SET retention_until = ? WHERE tenant = ? AND evidence_id = ?",
            [until, tenant, evidence_id],
        )

    def lengthen_all_retention(self, tenant: str, until: datetime) -> builtins.list[EvidenceBundle]:
        """Raise every bundle of the tenant whose retention ends before ``until`` to ``until``; returns those bundles
        as they were (their old ``retention_until``), oldest first."""
        rows = self.cur.execute(
            f"SELECT {_BUNDLE_COLUMNS} FROM evidence_bundles WHERE tenant = ? AND retention_until < ?"
            " ORDER BY created_at, evidence_id",
            [tenant, until],
        ).fetchall()
        self.cur.execute(
            "UPDATE evidence_bundles SET retention_until = ? WHERE tenant = ? AND retention_until < ?",
            [until, tenant, until],
        )
        return [_bundle(r) for r in rows]

    def used_bytes(self, tenant: str) -> int:
        """The size of the tenant's sealed archives together."""
        row = self.cur.execute(
            "SELECT coalesce(sum(size), 0) FROM evidence_bundles WHERE tenant = ?", [tenant]
        ).fetchone()
        return int(row[0]) if row else 0

    # -- holds ------------------------------------------------------------------------------------
    def holds(self, tenant: str, evidence_id: str | None = None, *, active_only: bool = False) -> builtins.list[Hold]:
        sql = f"SELECT {_HOLD_COLUMNS} FROM evidence_holds WHERE tenant = ?"
        params: builtins.list[Any] = [tenant]
        if evidence_id is not None:
            sql += " AND evidence_id = ?"
            params.append(evidence_id)
        if active_only:
            sql += " AND released_at IS NULL"
        rows = self.cur.execute(sql + " ORDER BY placed_at, case_id", params).fetchall()
        return [Hold(*r) for r in rows]

    def place_hold(self, tenant: str, hold: Hold) -> None:
        self.cur.execute(
            f"INSERT INTO evidence_holds (tenant, {_HOLD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
            [tenant, hold.case_id, hold.evidence_id, hold.reason, hold.placed_by, hold.placed_at],
        )

    def release_hold(
        self, tenant: str, case_id: str, evidence_id: str, *, by: str, at: datetime, reason: str | None
    ) -> None:
        self.cur.execute(
            "UPDATE evidence_holds SET released_by = ?, released_at = ?, release_reason = ?"
            " WHERE tenant = ? AND case_id = ? AND evidence_id = ? AND released_at IS NULL",
            [by, at, reason, tenant, case_id, evidence_id],
        )

    # -- custody ----------------------------------------------------------------------------------
    def custody(self, tenant: str, *, after: int = 0, last: int | None = None) -> builtins.list[CustodyEvent]:
        """The tenant's custody chain in order: the events after seq ``after``, or only the ``last`` ones."""
        sql = f"SELECT {_CUSTODY_COLUMNS} FROM evidence_custody_events WHERE tenant = ? AND seq > ?"
        params: builtins.list[Any] = [tenant, after]
        if last is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY seq DESC LIMIT ?)"
            params.append(last)
        rows = self.cur.execute(sql + " ORDER BY seq", params).fetchall()
        return [CustodyEvent(int(r[0]), *r[1:]) for r in rows]

    def append_custody(self, tenant: str, event: CustodyEvent) -> None:
        self.cur.execute(
            f"INSERT INTO evidence_custody_events (tenant, {_CUSTODY_COLUMNS}) VALUES ({', '.join('?' * 11)})",
            [
                tenant,
                event.seq,
                event.at,
                event.actor,
                event.action,
                event.subject,
                event.subject_digest,
                event.where,
                event.why,
                event.prev,
                event.hash,
            ],
        )

    # -- settings ---------------------------------------------------------------------------------
    def settings(self, tenant: str) -> Settings:
        row = self.cur.execute(
            "SELECT quota_bytes, retention_seconds FROM evidence_settings WHERE tenant = ?", [tenant]
        ).fetchone()
        if row is None:
            return Settings(None, DEFAULT_RETENTION_SECONDS)
        return Settings(None if row[0] is None else int(row[0]), int(row[1]))

    def set_settings(self, tenant: str, settings: Settings, *, by: str, at: datetime) -> None:
        self.cur.execute("DELETE FROM evidence_settings WHERE tenant = ?", [tenant])
        self.cur.execute(
            "INSERT INTO evidence_settings (tenant, quota_bytes, retention_seconds, updated_by, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [tenant, settings.quota_bytes, settings.retention_seconds, by, at],
        )

    # -- incidents --------------------------------------------------------------------------------
    def open_incident(self, tenant: str) -> Incident | None:
        row = self.cur.execute(
            f"SELECT {_INCIDENT_COLUMNS} FROM evidence_incidents WHERE tenant = ? AND stopped_at IS NULL"
            " ORDER BY started_at DESC LIMIT 1",
            [tenant],
        ).fetchone()
        return None if row is None else Incident(*row)

    def incidents(self, tenant: str) -> builtins.list[Incident]:
        rows = self.cur.execute(
            f"SELECT {_INCIDENT_COLUMNS} FROM evidence_incidents WHERE tenant = ? ORDER BY started_at DESC", [tenant]
        ).fetchall()
        return [Incident(*r) for r in rows]

    def insert_incident(self, tenant: str, incident: Incident) -> None:
        self.cur.execute(
            f"INSERT INTO evidence_incidents (tenant, {_INCIDENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                tenant,
                incident.incident_id,
                incident.reason,
                incident.retention_seconds,
                incident.started_by,
                incident.started_at,
                incident.start_evidence_id,
                incident.stopped_by,
                incident.stopped_at,
                incident.stop_reason,
                incident.stop_evidence_id,
            ],
        )

    def set_incident_evidence(self, tenant: str, incident_id: str, *, start: str | None, stop: str | None) -> None:
        if start is not None:
            self.cur.execute(
                "UPDATE evidence_incidents SET start_evidence_id = ? WHERE tenant = ? AND incident_id = ?",
                [start, tenant, incident_id],
            )
        if stop is not None:
            self.cur.execute(
                "UPDATE evidence_incidents SET stop_evidence_id = ? WHERE tenant = ? AND incident_id = ?",
                [stop, tenant, incident_id],
            )

    def stop_incident(self, tenant: str, incident_id: str, *, by: str, at: datetime, reason: str) -> None:
        self.cur.execute(
            "UPDATE evidence_incidents SET stopped_by = ?, stopped_at = ?, stop_reason = ?"
            " WHERE tenant = ? AND incident_id = ? AND stopped_at IS NULL",
            [by, at, reason, tenant, incident_id],
        )
