"""Planning an export: from a pinned profile revision and selectors to a pending run with ordered inputs.

Everything that decides the bytes of the bundle is fixed here, in the run's ``parameters``: the profile
id, revision and config, the canonical selectors, the signing key's name, ``createdAt`` (now, whole
seconds, UTC) and the ordered list of input documents (``export_inputs``, with a digest over it in the
parameters). Executing or retrying the run later never looks at the selectors again, so it reproduces
the same output whatever was imported in between.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import duckdb

from core.clock import rfc3339, utcnow
from core.errors import BadInputError, UsageError
from core.keys import KeyStore
from core.profiles import Profile
from core.runs import (
    PARAMETERS_VERSION,
    ExportRun,
    RunState,
    insert_run,
    new_run_id,
    write_event,
)
from core.selectors import INPUT_ORDER, InputRef, Selectors, count_inputs, resolve_inputs, selection_sql
from core.store import Store, transaction
from core.tenants import validate_tenant

FETCH_ROWS = 5000

#: A profile's narrowing of the inputs a run pins (a mirror delta pins only what its base lacks): given the planning
#: cursor, inside the plan's transaction, and the selection's SQL and parameters, it returns the SQL and parameters
#: of the inputs to pin (the same columns), how many documents the selection matched, and run options to pin.
Narrowing = Callable[[duckdb.DuckDBPyConnection, str, dict[str, Any]], tuple[str, dict[str, Any], int, dict[str, Any]]]


def plan_run(
    store: Store,
    tenant: str,
    profile: Profile,
    selectors: Selectors,
    *,
    key_name: str | None,
    out_path: Path,
    created_at: datetime | None = None,
    options: Mapping[str, Any] | None = None,
    allow_empty: bool = True,
    narrow: Narrowing | None = None,
) -> ExportRun:
    """Write a ``pending`` run and its resolved inputs in one transaction; return the run.

    ``profile`` is the pinned revision (from :meth:`core.profiles.ProfileStore.get`). ``key_name`` defaults
    to the profile's ``signing_key``; the key must exist in the home's key store. ``created_at`` (default:
    now) is truncated to whole seconds and becomes the bundle's ``createdAt``. ``options`` are the
    profile-specific run options (JSON values: a delta's resolved base, encryption recipients, a Trivy
    schema version); they are pinned with the rest, so a retry sees the same ones. Without ``allow_empty`` a
    selection that matches nothing is refused (:class:`EmptySelection`, exit 3) and nothing is written.
    ``narrow`` pins a part of the selection only (:data:`Narrowing`), with the options it adds.

    Raises :class:`core.errors.PolicyRefusal` (exit 7) for a cross-tenant selector, :class:`UsageError`
    when there is no signing key or the output exists, :class:`core.errors.NotFoundError` for an unknown key.
    """
    started = time.monotonic()
    key, out = check_plan(store, tenant, profile, selectors, key_name=key_name, out_path=out_path)
    when = _whole_seconds(created_at or utcnow())
    run_id = new_run_id()
    sql, params = selection_sql(tenant, selectors, profile.config.record_types)
    cur = store.cursor()
    try:
        with transaction(cur):
            selected: int | None = None
            extra: dict[str, Any] = {}
            if narrow is not None:
                sql, params, selected, extra = narrow(cur, sql, params)
            # Resolved and numbered inside the database: nothing is held in memory, however many inputs.
            cur.execute(
                "INSERT INTO export_inputs (tenant, run_id, ordinal, document_sha256, kind, subject, document_id)"
                f" SELECT $tenant, $run_id, CAST(row_number() OVER (ORDER BY {INPUT_ORDER}) - 1 AS INTEGER),"
                f" sha256, kind, subject, document_id FROM ({sql}) s",
                {**params, "run_id": run_id},
            )
            count, digest = _inputs_digest(cur, tenant, run_id)
            if (count if selected is None else selected) == 0 and not allow_empty:
                raise EmptySelection(tenant, profile.ref, selectors)  # rolls the transaction back: nothing planned
            parameters: dict[str, Any] = {
                "parametersVersion": PARAMETERS_VERSION,
                "runId": run_id,
                "tenant": tenant,
                "profile": {
                    "id": profile.profile_id,
                    "revision": profile.revision,
                    "config": profile.config.to_dict(),
                },
                "selectors": selectors.to_dict(),
                "keyName": key,
                "outPath": str(out),
                "createdAt": rfc3339(when),
                "inputs": {"count": count, "sha256": digest},
                "options": {**(options or {}), **extra},
            }
            run = ExportRun.pending(
                tenant=tenant,
                run_id=run_id,
                profile_id=profile.profile_id,
                profile_revision=profile.revision,
                parameters=parameters,
            )
            insert_run(cur, run)
            write_event(
                cur,
                run,
                "planned",
                to_state=RunState.PENDING,
                detail={
                    "profile": profile.ref,
                    "inputs": count,
                    "selectors": selectors.to_dict(),
                    "plan_seconds": round(time.monotonic() - started, 6),  # exporter_plan_seconds
                },
            )
    finally:
        cur.close()
    return run


class EmptySelection(BadInputError):
    """A selection that matches no document: refused unless the user says an empty bundle is what they want."""

    def __init__(self, tenant: str, profile: str, selectors: Selectors) -> None:
        given = " ".join(selectors.to_args()) or "(no selectors: everything the profile takes)"
        super().__init__(
            f"the selection matches no document of tenant {tenant!r} for profile {profile}: {given}",
            hint="check the selectors with `stella export run --dry-run`, or pass --allow-empty to build an empty"
            " bundle anyway",
        )


def check_plan(
    store: Store, tenant: str, profile: Profile, selectors: Selectors, *, key_name: str | None, out_path: Path
) -> tuple[str, Path]:
    """What planning refuses before anything is written: returns the signing key's name and the resolved output.

    Checked in this order: the tenant, the profile's tenant, a cross-tenant selector, the signing key (given, or
    the profile's ``signing_key``; it must exist), the output (it must not exist yet).
    """
    validate_tenant(tenant)
    if profile.tenant != tenant:
        raise UsageError(f"profile {profile.ref} belongs to tenant {profile.tenant!r}, not {tenant!r}")
    selectors.check_tenant(tenant)
    key = key_name or profile.config.signing_key
    if not key:
        raise UsageError(
            "no signing key for this export", hint="give one with --key NAME, or set signing_key in the profile"
        )
    KeyStore(store.home).info(key)  # an unknown key fails now, not after the payload was written
    out = out_path.expanduser().resolve()
    if out.exists() or out.is_symlink():
        raise UsageError(f"output {out} already exists", path=str(out), hint="choose another --out or move it away")
    return key, out


@dataclass(frozen=True)
class SelectionPreview:
    """What a run would take now, without planning it: per record type counts and the first inputs in order."""

    counts: dict[str, int]
    first: list[InputRef]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def preview_selection(
    store: Store, tenant: str, profile: Profile, selectors: Selectors, *, limit: int = 10
) -> SelectionPreview:
    """The inputs a run of ``profile`` over ``selectors`` would pin now: counts per record type, the first ``limit``.

    The same selection :func:`plan_run` pins, read only.
    """
    counts = count_inputs(store, tenant, selectors, profile.config.record_types)
    first = list(islice(resolve_inputs(store, tenant, selectors, profile.config.record_types), max(limit, 0)))
    return SelectionPreview(counts, first)


def _inputs_digest(cur: duckdb.DuckDBPyConnection, tenant: str, run_id: str) -> tuple[int, str]:
    """Count and SHA-256 of the input digests in order, one per line (``ExportRun.inputs_sha256``)."""
    digest = hashlib.sha256()
    count = 0
    cur.execute(
        "SELECT document_sha256 FROM export_inputs WHERE tenant = ? AND run_id = ? ORDER BY ordinal", [tenant, run_id]
    )
    while rows := cur.fetchmany(FETCH_ROWS):
        for (sha,) in rows:
            digest.update(f"{sha}\n".encode("ascii"))
            count += 1
    return count, digest.hexdigest()


def _whole_seconds(value: datetime) -> datetime:
    """Naive UTC, truncated to the second (an aware time is converted first)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(microsecond=0)
