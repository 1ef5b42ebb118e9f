"""`stella retention`: how long a profile's bundles and distribution records are kept, and the prune that removes
them once they expire.

A retention policy is set per profile (`retention set PROFILE --keep 30d`). A succeeded run's bundle expires that
long after the run finished; a distribution record that long after it was recorded. ``expires_at`` is stamped on the
run and on the distribution the first time a policy covers them (when a run finishes, when a policy is set, when
retention prunes), and never moved afterwards: a later policy applies to later bundles.

The prune removes an expired bundle only from the home's exports directory (where scheduled runs and `export run`
without ``--out`` put them) and only while it is the file the run built (size and sha256 as recorded); a bundle
written elsewhere with ``--out``, or changed since, is left where it is and the prune says why. Nothing whose run's
evidence is under a legal hold is touched. Each run it removed something of gets a ``retention-pruned`` event
naming what went. A removed bundle's in-toto attestation file beside it (``BUNDLE.intoto.jsonl``) goes with it.

A distribution record of a copy held elsewhere (an OCI registry, an S3 bucket) goes only with its copy: the prune is
given a ``copies`` deleter (services.distribute_prune) that deletes the copy where the target allows it and says why
when it does not (a registry refusing deletes, an S3 version under Object Lock retention or legal hold, no access
given); a copy that stays keeps its record, and the run's event says what was kept and why (``retention-kept`` when
nothing of the run went).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from core.atomic import failing_as_environment
from core.clock import rfc3339, utcnow
from core.contract.export_attestation import SUFFIX as ATTESTATION_SUFFIX
from core.durations import human_duration
from core.errors import NotFoundError
from core.home import Home
from core.profiles import ProfileStore, current_profile_id
from core.runs import Distribution, RunEngine, bundle_condition, current_user, write_event
from core.store import Store
from core.tenants import validate_tenant
from services.evidence import KIND_RUN

#: The event a run gets when the prune removed its bundle or distribution records.
PRUNED_EVENT = "retention-pruned"
#: The event a run gets when expired copies of its bundle elsewhere had to stay and nothing of it was removed.
KEPT_EVENT = "retention-kept"
#: Distribution types whose copy lives elsewhere: the record goes only when the copy was deleted.
REMOTE_TYPES = ("oci", "s3")
#: Deletes an expired copy elsewhere: None when it is gone, else why it stays.
CopyDeleter = Callable[[Distribution], str | None]


@dataclass(frozen=True)
class Policy:
    """A profile's retention."""

    profile_id: str
    keep: timedelta
    updated_by: str
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile_id,
            "keepSeconds": int(self.keep.total_seconds()),
            "keep": human_duration(self.keep),
            "updatedBy": self.updated_by,
            "updatedAt": rfc3339(self.updated_at),
        }


def set_policy(home: Home, tenant: str, profile: str, keep: timedelta) -> Policy:
    """`stella retention set PROFILE --keep DURATION`: keep the profile's bundles and distribution records that
    long; stamps the runs and distributions the policy now covers."""
    tenant = validate_tenant(tenant)
    profile_id = current_profile_id(profile)
    policy = Policy(profile_id, keep, current_user(), utcnow())
    with Store.open(home) as store:
        ProfileStore(store).get(tenant, profile_id)  # the profile exists in this tenant (exit 3 when not)
        with store.transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO retention_policies VALUES (?, ?, ?, ?, ?)",
                [tenant, profile_id, int(keep.total_seconds()), policy.updated_by, policy.updated_at],
            )
            _stamp(cur, tenant)
    return policy


def clear_policy(home: Home, tenant: str, profile: str) -> None:
    """`stella retention clear PROFILE`: later bundles of the profile are kept for ever (stamped ones keep their
    expiry)."""
    tenant = validate_tenant(tenant)
    profile_id = current_profile_id(profile)
    with Store.open(home) as store, store.transaction() as cur:
        row = cur.execute(
            "DELETE FROM retention_policies WHERE tenant = ? AND profile_id = ? RETURNING profile_id",
            [tenant, profile_id],
        ).fetchone()
        if row is None:
            raise NotFoundError(f"profile {profile_id!r} has no retention policy in tenant {tenant!r}")


def list_policies(home: Home, tenant: str) -> list[Policy]:
    """`stella retention show`: the tenant's policies, by profile."""
    tenant = validate_tenant(tenant)
    with Store.open(home, read_only=True) as store:
        rows = store.conn.execute(
            "SELECT profile_id, retention_seconds, updated_by, updated_at FROM retention_policies"
            " WHERE tenant = ? ORDER BY profile_id",
            [tenant],
        ).fetchall()
    return [Policy(p, timedelta(seconds=s), by, at) for p, s, by, at in rows]


def _stamp(cur: duckdb.DuckDBPyConnection, tenant: str) -> None:
    cur.execute(
        "UPDATE export_runs r SET expires_at = r.finished_at + to_seconds(p.retention_seconds)"
        " FROM retention_policies p WHERE p.tenant = r.tenant AND p.profile_id = r.profile_id"
        " AND r.tenant = ? AND r.state = 'succeeded' AND r.finished_at IS NOT NULL AND r.expires_at IS NULL",
        [tenant],
    )
    cur.execute(
        "UPDATE export_distributions d SET expires_at = d.created_at + to_seconds(p.retention_seconds)"
        " FROM export_runs r, retention_policies p WHERE r.tenant = d.tenant AND r.run_id = d.run_id"
        " AND p.tenant = r.tenant AND p.profile_id = r.profile_id AND d.tenant = ? AND d.expires_at IS NULL",
        [tenant],
    )


def stamp_expiry(store: Store, tenant: str) -> None:
    """Stamp ``expires_at`` on the tenant's finished runs and distributions a policy covers and that have none."""
    with store.transaction() as cur:
        _stamp(cur, tenant)


@dataclass(frozen=True)
class Removal:
    """What the prune removed (or, dry, would remove) of one run, or kept and why."""

    run_id: str
    profile_id: str
    expires_at: datetime
    bundle: Path | None  # the bundle file removed; None when only records went
    distributions: tuple[str, ...]
    kept: str | None = None  # why the bundle was left in place, when it was
    copies_deleted: tuple[str, ...] = ()  # targets of the copies deleted elsewhere (registry, bucket)
    copies_kept: tuple[tuple[str, str, str], ...] = ()  # (distribution id, target, why) of expired copies that stay

    def to_dict(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "profile": self.profile_id,
            "expiresAt": rfc3339(self.expires_at),
            "bundle": None if self.bundle is None else str(self.bundle),
            "distributions": list(self.distributions),
            "kept": self.kept,
            "copiesDeleted": list(self.copies_deleted),
            "copiesKept": [{"distributionId": d, "target": t, "reason": why} for d, t, why in self.copies_kept],
        }


@dataclass
class PruneReport:
    """What `retention prune` removed, and what it kept although it had expired (held, written elsewhere, or
    changed since the run built it)."""

    tenant: str
    at: datetime
    dry_run: bool
    removed: list[Removal] = field(default_factory=list)
    kept: list[Removal] = field(default_factory=list)

    @property
    def bundles_removed(self) -> int:
        return sum(1 for r in self.removed if r.bundle is not None)

    @property
    def distributions_removed(self) -> int:
        return sum(len(r.distributions) for r in self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "at": rfc3339(self.at),
            "dryRun": self.dry_run,
            "bundlesRemoved": self.bundles_removed,
            "distributionsRemoved": self.distributions_removed,
            "removed": [r.to_dict() for r in self.removed],
            "kept": [r.to_dict() for r in self.kept],
        }


_EXPIRY = (
    "coalesce({t}.expires_at, {base} + to_seconds((SELECT p.retention_seconds FROM retention_policies p"
    " WHERE p.tenant = r.tenant AND p.profile_id = r.profile_id)))"
)


def _holds(cur: duckdb.DuckDBPyConnection, tenant: str, run_id: str) -> list[str]:
    """The cases holding evidence sealed from run ``run_id`` (released holds do not count)."""
    rows = cur.execute(
        "SELECT DISTINCT h.case_id FROM evidence_bundles b JOIN evidence_holds h"
        " ON h.tenant = b.tenant AND h.evidence_id = b.evidence_id AND h.released_at IS NULL"
        " WHERE b.tenant = ? AND b.kind = ? AND b.subject = ? ORDER BY h.case_id",
        [tenant, KIND_RUN, run_id],
    ).fetchall()
    return [str(r[0]) for r in rows]


def _expired(cur: duckdb.DuckDBPyConnection, tenant: str, at: datetime) -> list[tuple[str, datetime, bool, list[str]]]:
    """Runs with an expired bundle or expired distribution records: (run id, expiry, whether the bundle itself
    expired, the expired distribution ids)."""
    runs = cur.execute(
        f"SELECT r.run_id, {_EXPIRY.format(t='r', base='r.finished_at')} AS exp FROM export_runs r"
        " WHERE r.tenant = ? AND r.state = 'succeeded' AND exp <= ? ORDER BY exp, r.run_id",
        [tenant, at],
    ).fetchall()
    dists = cur.execute(
        f"SELECT d.run_id, d.distribution_id, {_EXPIRY.format(t='d', base='d.created_at')} AS exp"
        " FROM export_distributions d JOIN export_runs r ON r.tenant = d.tenant AND r.run_id = d.run_id"
        " WHERE d.tenant = ? AND exp <= ? ORDER BY d.run_id, d.distribution_id",
        [tenant, at],
    ).fetchall()
    by_run: dict[str, list[str]] = {}
    first: dict[str, datetime] = {}
    for run_id, dist_id, exp in dists:
        by_run.setdefault(run_id, []).append(dist_id)
        first[run_id] = min(exp, first.get(run_id, exp))
    found = [(run_id, exp, True, by_run.pop(run_id, [])) for run_id, exp in runs]
    # Expired records of a run whose bundle has not expired (or that never succeeded).
    found += [(run_id, first[run_id], False, ids) for run_id, ids in by_run.items()]
    return found


def _removable(home: Home, path: Path | None, condition: str) -> str | None:
    """Why the bundle at ``path`` must stay (None: it may go)."""
    if path is None or condition == "missing":
        return None
    exports = (home.root / "exports").resolve()
    if path.parent.resolve() != exports:
        return f"written outside the home's exports directory ({path}): left in place"
    if condition != "is intact":
        return f"the file {condition}: left in place"
    return None


NO_ACCESS = "not deleted: give the target's access to `retention prune` (see docs/distribution.md) to delete it"


def _copies(
    dists: list[Distribution], dist_ids: list[str], copies: CopyDeleter | None, dry_run: bool
) -> tuple[list[str], list[str], list[tuple[str, str, str]]]:
    """Which expired records go (ids), the copies deleted elsewhere (targets), the copies that stay (id, target,
    why). A dry run deletes nothing and reports the copies it would try to delete."""
    by_id = {d.distribution_id: d for d in dists}
    gone: list[str] = []
    deleted: list[str] = []
    stay: list[tuple[str, str, str]] = []
    for dist_id in dist_ids:
        dist = by_id.get(dist_id)
        if dist is None or dist.type not in REMOTE_TYPES:
            gone.append(dist_id)
            continue
        why = NO_ACCESS if copies is None else None if dry_run else copies(dist)
        if why is None:
            gone.append(dist_id)
            deleted.append(dist.target)
        else:
            stay.append((dist_id, dist.target, why))
    return gone, deleted, stay


def prune_in(
    store: Store,
    tenant: str,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    copies: CopyDeleter | None = None,
) -> PruneReport:
    """Prune the tenant's expired bundles and distribution records in the open ``store`` (see the module);
    ``copies`` deletes expired copies held elsewhere (without it they and their records stay)."""
    at = now or utcnow()
    report = PruneReport(tenant, at, dry_run)
    engine = RunEngine(store)
    cur = store.cursor()
    try:
        for run_id, exp, bundle_expired, dist_ids in _expired(cur, tenant, at):
            run = engine.get_run(run_id, tenant)
            holds = _holds(cur, tenant, run_id)
            if holds:
                held = f"under legal hold (case {', '.join(holds)}): evidence of this run is held"
                report.kept.append(Removal(run_id, run.profile_id, exp, None, (), kept=held))
                continue
            condition = bundle_condition(run) if bundle_expired else "missing"
            why = _removable(store.home, run.artifact_path, condition)
            bundle = run.artifact_path if condition != "missing" and why is None else None
            gone, deleted, stay = _copies(engine.distributions(run_id), dist_ids, copies, dry_run)
            if bundle is None and not gone:
                if why is not None or stay:
                    kept = Removal(run_id, run.profile_id, exp, None, (), kept=why, copies_kept=tuple(stay))
                    if stay and not dry_run:
                        _record_kept(store, run_id, tenant, kept)
                    report.kept.append(kept)
                continue  # otherwise pruned before: nothing is left to remove
            removal = Removal(
                run_id,
                run.profile_id,
                exp,
                bundle,
                tuple(gone),
                kept=why,
                copies_deleted=tuple(deleted),
                copies_kept=tuple(stay),
            )
            if not dry_run:
                _remove(store, run_id, tenant, removal)
            report.removed.append(removal)
        if not dry_run:
            with store.transaction() as tx:
                _stamp(tx, tenant)
    finally:
        cur.close()
    return report


def _attestation(bundle: Path) -> Path | None:
    """The in-toto attestation file beside ``bundle`` (``BUNDLE.intoto.jsonl``), when there is one: it goes with
    the bundle."""
    path = bundle.with_name(bundle.name + ATTESTATION_SUFFIX)
    return path if path.is_file() and not path.is_symlink() else None


def _name(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _remove(store: Store, run_id: str, tenant: str, removal: Removal) -> None:
    """Delete the records and the bundle of one run, and record it, all or nothing: the file goes last, inside the
    transaction, so a failure to remove it leaves the records and no event."""
    run = RunEngine(store).get_run(run_id, tenant)
    with store.transaction() as cur:
        if removal.distributions:
            cur.execute(
                "DELETE FROM export_distributions WHERE tenant = ? AND run_id = ?"
                " AND list_contains(?, distribution_id)",
                [tenant, run_id, list(removal.distributions)],
            )
        write_event(
            cur,
            run,
            PRUNED_EVENT,
            detail={
                "expiresAt": rfc3339(removal.expires_at),
                "bundle": None if removal.bundle is None else str(removal.bundle),
                "sha256": run.artifact_sha256 if removal.bundle is not None else None,
                "size": run.artifact_size if removal.bundle is not None else None,
                "distributions": list(removal.distributions),
                "attestation": None if removal.bundle is None else _name(_attestation(removal.bundle)),
                "copiesDeleted": list(removal.copies_deleted),
                "copiesKept": removal.to_dict()["copiesKept"],
            },
        )
        if removal.bundle is not None:
            sidecar = _attestation(removal.bundle)
            with failing_as_environment(removal.bundle, "cannot remove the expired bundle"):
                removal.bundle.unlink(missing_ok=True)
                if sidecar is not None:
                    sidecar.unlink(missing_ok=True)


def _record_kept(store: Store, run_id: str, tenant: str, kept: Removal) -> None:
    """A ``retention-kept`` event: expired copies of the run's bundle elsewhere stay, and why."""
    run = RunEngine(store).get_run(run_id, tenant)
    with store.transaction() as cur:
        write_event(
            cur,
            run,
            KEPT_EVENT,
            detail={"expiresAt": rfc3339(kept.expires_at), "copiesKept": kept.to_dict()["copiesKept"]},
        )


def prune(
    home: Home,
    tenant: str,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    copies: CopyDeleter | None = None,
) -> PruneReport:
    """`stella retention prune [--dry-run]`."""
    tenant = validate_tenant(tenant)
    with Store.open(home, read_only=dry_run) as store:
        return prune_in(store, tenant, now=now, dry_run=dry_run, copies=copies)


@dataclass(frozen=True)
class Expiry:
    """A succeeded run's bundle with its expiry (`retention list`)."""

    run_id: str
    profile_id: str
    finished_at: datetime
    expires_at: datetime | None
    bundle: str | None
    held_by: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "profile": self.profile_id,
            "finishedAt": rfc3339(self.finished_at),
            "expiresAt": None if self.expires_at is None else rfc3339(self.expires_at),
            "bundle": self.bundle,
            "heldBy": list(self.held_by),
        }


def list_expiry(home: Home, tenant: str) -> list[Expiry]:
    """`stella retention list`: every succeeded run with when its bundle expires and what holds it."""
    tenant = validate_tenant(tenant)
    with Store.open(home, read_only=True) as store:  # unstamped runs show the expiry a stamp would give them
        cur = store.cursor()
        try:
            rows: Sequence[Any] = cur.execute(
                f"SELECT r.run_id, r.profile_id, r.finished_at, {_EXPIRY.format(t='r', base='r.finished_at')},"
                " r.artifact_path FROM export_runs r WHERE r.tenant = ? AND r.state = 'succeeded'"
                " ORDER BY r.finished_at, r.run_id",
                [tenant],
            ).fetchall()
            return [Expiry(r, p, f, e, a, tuple(_holds(cur, tenant, r))) for r, p, f, e, a in rows]
        finally:
            cur.close()
