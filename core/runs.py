"""The run engine: export runs, their states and events, cancellation, retry, distribution, download.

A run moves ``pending -> running -> succeeded | failed | aborted`` (a pending run may also be aborted).
Every transition is an ``export_events`` row carrying the run's correlation id and the acting user.
The engine does not know any bundle format: a :class:`BundleBuilder` writes the artifact from the run's
pinned inputs, and the engine records what it produced.

Cancelling a run that another process executes cannot go through the store, because that process holds the
store's writer lock for as long as the run lasts. A cancel request is therefore a small file under the home
(``runs/<run_id>.cancel``) that the running engine polls between units of work.
"""

from __future__ import annotations

import builtins
import contextlib
import getpass
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import duckdb

from core import log_fields
from core.atomic import (
    atomic_file,
    environment_failure,
    failing_as_environment,
    fsync_dir,
    sweep_temp_files,
    writes_in_place,
)
from core.canonical import canonical_json
from core.clock import rfc3339, utcnow
from core.errors import (
    Cancelled,
    EnvironmentFailure,
    IntegrityError,
    NotFoundError,
    PolicyRefusal,
    StellaError,
    UsageError,
)
from core.failure import INTERRUPTED_CODE, FailureClass, classify
from core.home import Home
from core.profiles import ProfileConfig
from core.progress import CancelToken, NullObserver, Observer
from core.selectors import InputRef, Selectors
from core.store import Store, transaction

_log = logging.getLogger("stella.run")

#: Version of the ``parameters`` JSON of a run.
PARAMETERS_VERSION = 1
DEFAULT_MAX_ACTIVE_PER_TENANT = 4
CHUNK = 1 << 20
FETCH_ROWS = 1000
#: How often a running export looks for a cancel request file (seconds).
CANCEL_POLL_INTERVAL = 0.2

_RUN_ID = re.compile(r"^run-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")


class RunState(StrEnum):
    """Where a run is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"

    @property
    def terminal(self) -> bool:
        return self in (RunState.SUCCEEDED, RunState.FAILED, RunState.ABORTED)


_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.PENDING: frozenset({RunState.RUNNING, RunState.ABORTED}),
    RunState.RUNNING: frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.ABORTED}),
}


def current_user() -> str:
    """The operating-system user name, the actor of events (uid when the system has no name for it)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError, ImportError):
        return f"uid:{os.getuid()}"


def new_run_id(now: datetime | None = None) -> str:
    """``run-YYYYMMDDTHHMMSSZ-xxxxxxxx``: sorts by planning time; the random tail keeps it unique."""
    at = now or utcnow()
    return f"run-{at:%Y%m%dT%H%M%S}Z-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class ExportRun:
    """One export run as the store records it.

    ``parameters`` holds everything needed to rebuild byte-identical output; the properties below read it.
    """

    tenant: str
    run_id: str
    profile_id: str
    profile_revision: int
    state: RunState
    parameters: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    correlation_id: str
    error_code: str | None
    error_message: str | None
    artifact_path: Path | None
    artifact_sha256: str | None
    artifact_size: int | None
    retry_of: str | None
    failure_class: FailureClass | None = None  # set on a failed run: what kind of failure ended it

    @classmethod
    def pending(
        cls,
        *,
        tenant: str,
        run_id: str,
        profile_id: str,
        profile_revision: int,
        parameters: dict[str, Any],
        retry_of: str | None = None,
    ) -> ExportRun:
        """A new run as the planner (or a retry) records it: pending, with a fresh correlation id."""
        return cls(
            tenant=tenant,
            run_id=run_id,
            profile_id=profile_id,
            profile_revision=profile_revision,
            state=RunState.PENDING,
            parameters=parameters,
            created_at=utcnow(),
            started_at=None,
            finished_at=None,
            correlation_id=str(uuid.uuid4()),
            error_code=None,
            error_message=None,
            artifact_path=None,
            artifact_sha256=None,
            artifact_size=None,
            retry_of=retry_of,
        )

    @property
    def bundle_run_id(self) -> str:
        """The run id written into the bundle: the first attempt's, so a retry reproduces the same bytes."""
        value: str = self.parameters["runId"]
        return value

    @property
    def profile_config(self) -> ProfileConfig:
        """The profile revision's config, as pinned at plan time."""
        return ProfileConfig.from_dict(self.parameters["profile"]["config"])

    @property
    def selectors(self) -> Selectors:
        return Selectors.from_dict(self.parameters["selectors"])

    @property
    def selectors_dict(self) -> dict[str, Any]:
        """The canonical selectors, as the manifest carries them."""
        value: dict[str, Any] = self.parameters["selectors"]
        return value

    @property
    def key_name(self) -> str:
        value: str = self.parameters["keyName"]
        return value

    @property
    def out_path(self) -> Path:
        return Path(self.parameters["outPath"])

    @property
    def bundle_created_at(self) -> datetime:
        """``createdAt`` of the bundle (naive UTC, whole seconds), fixed at plan time."""
        text: str = self.parameters["createdAt"]
        return datetime.fromisoformat(text.removesuffix("Z"))

    @property
    def bundle_created_at_text(self) -> str:
        value: str = self.parameters["createdAt"]
        return value

    @property
    def options(self) -> dict[str, Any]:
        """Profile-specific run options pinned at plan time (empty for runs planned before they existed)."""
        value: dict[str, Any] = self.parameters.get("options", {})
        return value

    @property
    def input_count(self) -> int:
        return int(self.parameters["inputs"]["count"])

    @property
    def inputs_sha256(self) -> str:
        """SHA-256 over the input digests in order, one per line: what the run's inputs are."""
        value: str = self.parameters["inputs"]["sha256"]
        return value

    def to_dict(self) -> dict[str, Any]:
        """The stable ``--json`` form."""
        config = self.parameters["profile"]["config"]
        return {
            "runId": self.run_id,
            "tenant": self.tenant,
            "state": str(self.state),
            "profile": {
                "id": self.profile_id,
                "revision": self.profile_revision,
                "kind": config["kind"],
                "variant": config["variant"],
            },
            "createdAt": rfc3339(self.created_at),
            "startedAt": None if self.started_at is None else rfc3339(self.started_at),
            "finishedAt": None if self.finished_at is None else rfc3339(self.finished_at),
            "correlationId": self.correlation_id,
            "error": None
            if self.error_code is None
            else {"code": self.error_code, "message": self.error_message, "failureClass": self.failure_class},
            "artifact": None
            if self.artifact_path is None
            else {"path": str(self.artifact_path), "sha256": self.artifact_sha256, "size": self.artifact_size},
            "retryOf": self.retry_of,
            "parameters": self.parameters,
        }


@dataclass(frozen=True)
class RunEvent:
    """One ``export_events`` row."""

    run_id: str
    seq: int
    event_time: datetime
    event_type: str
    from_state: str | None
    to_state: str | None
    correlation_id: str
    actor: str | None
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "seq": self.seq,
            "time": rfc3339(self.event_time),
            "type": self.event_type,
            "from": self.from_state,
            "to": self.to_state,
            "correlationId": self.correlation_id,
            "actor": self.actor,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Distribution:
    """One copy of a run's artifact handed somewhere (``export_distributions``)."""

    distribution_id: str
    run_id: str
    type: str
    target: str
    sha256: str | None
    size: int | None
    state: str
    created_at: datetime
    resumed_from: int = 0  # bytes already at the target when a download resumed; not stored

    def to_dict(self) -> dict[str, Any]:
        return {
            "distributionId": self.distribution_id,
            "runId": self.run_id,
            "type": self.type,
            "target": self.target,
            "sha256": self.sha256,
            "size": self.size,
            "state": self.state,
            "createdAt": rfc3339(self.created_at),
            "resumedFrom": self.resumed_from,
        }


@dataclass
class Artifact:
    """What a builder produced: the bundle file, its SHA-256 (hex) and size in bytes."""

    path: Path
    sha256: str
    size: int


class BundleBuilder(Protocol):
    """Writes the artifact of a run from its inputs (in order).

    Polls ``cancel`` between units and raises :class:`core.errors.Cancelled` when it is set, after deleting
    its partial files.
    """

    def __call__(
        self, run: ExportRun, inputs: Iterator[InputRef], sink: Observer, cancel: CancelToken, /
    ) -> Artifact: ...


# -- cancellation across processes -----------------------------------------------------------------


def cancel_request_path(home: Home, run_id: str) -> Path:
    """Where a cancel request for ``run_id`` is written."""
    if not _RUN_ID.match(run_id):
        raise UsageError(f"{run_id!r} is not a run id", hint="run ids look like run-20250101T120000Z-0123abcd")
    return home.root / "runs" / f"{run_id}.cancel"


def request_cancel(home: Home, run_id: str, actor: str | None = None) -> Path:
    """Ask the process that executes ``run_id`` to stop; works while that process holds the store lock.

    The running engine sees the request at its next unit of work, aborts the run and records ``actor``.
    """
    path = cancel_request_path(home, run_id)
    body = canonical_json({"actor": actor or current_user(), "requestedAt": rfc3339(utcnow().replace(microsecond=0))})
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(body)
        tmp.replace(path)
    except OSError as exc:
        raise EnvironmentFailure(f"cannot write the cancel request: {exc.strerror}", path=str(path)) from exc
    return path


def _read_cancel_request(path: Path) -> str | None:
    """The actor of a pending cancel request, or None when there is none."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return current_user()  # a damaged request still means "stop"
    actor = data.get("actor") if isinstance(data, dict) else None
    return actor if isinstance(actor, str) and actor else current_user()


class RunCancelToken(CancelToken):
    """The token a builder polls: the caller's observer says cancel, or a cancel request file appeared."""

    def __init__(self, request_path: Path, observer: Observer | None = None) -> None:
        super().__init__()
        self._path = request_path
        self._observer = observer
        self._next_poll = 0.0
        self.requested_by: str | None = None

    def is_cancelled(self) -> bool:
        if super().is_cancelled():
            return True
        if self._observer is not None and self._observer.is_cancelled():
            self.requested_by = self.requested_by or current_user()
            self.cancel()
            return True
        now = time.monotonic()
        if now >= self._next_poll:
            # A stat per unit would be wasteful on large exports: look at most every CANCEL_POLL_INTERVAL.
            self._next_poll = now + CANCEL_POLL_INTERVAL
            actor = _read_cancel_request(self._path)
            if actor is not None:
                self.requested_by = actor
                self.cancel()
                return True
        return False


# Runs this process is executing, per store: every other `running` row was left by a process that died
# (only one process at a time can write the store).
_ACTIVE: set[tuple[str, str]] = set()
_ACTIVE_LOCK = threading.Lock()
# Event sequence numbers are "max + 1": writers of one process take turns so two threads never pick the same.
_WRITE_LOCK = threading.RLock()


def write_event(
    cur: duckdb.DuckDBPyConnection,
    run: ExportRun,
    event_type: str,
    *,
    from_state: RunState | None = None,
    to_state: RunState | None = None,
    actor: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append an event to the run's history (call inside a transaction)."""
    row = cur.execute(
        "SELECT coalesce(max(seq), 0) + 1 FROM export_events WHERE tenant = ? AND run_id = ?", [run.tenant, run.run_id]
    ).fetchone()
    seq = int(row[0]) if row else 1
    cur.execute(
        "INSERT INTO export_events (tenant, run_id, seq, event_time, event_type, from_state, to_state,"
        " correlation_id, actor, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run.tenant,
            run.run_id,
            seq,
            utcnow(),
            event_type,
            None if from_state is None else str(from_state),
            None if to_state is None else str(to_state),
            run.correlation_id,
            actor if actor is not None else current_user(),
            canonical_json(detail or {}).decode("utf-8"),
        ],
    )


_RUN_COLUMNS = (
    "tenant, run_id, profile_id, profile_revision, state, parameters, created_at, started_at, finished_at,"
    " correlation_id, error_code, error_message, artifact_path, artifact_sha256, artifact_size, retry_of,"
    " failure_class"
)


def run_from_row(row: Sequence[Any]) -> ExportRun:
    """An :class:`ExportRun` from a row of ``SELECT`` :data:`_RUN_COLUMNS`."""
    (
        tenant,
        run_id,
        pid,
        rev,
        state,
        params,
        created,
        started,
        finished,
        corr,
        ecode,
        emsg,
        apath,
        asha,
        asize,
        retry,
        fclass,
    ) = row
    return ExportRun(
        tenant=tenant,
        run_id=run_id,
        profile_id=pid,
        profile_revision=int(rev),
        state=RunState(state),
        parameters=json.loads(params),
        created_at=created,
        started_at=started,
        finished_at=finished,
        correlation_id=corr,
        error_code=ecode,
        error_message=emsg,
        artifact_path=None if apath is None else Path(apath),
        artifact_sha256=asha,
        artifact_size=None if asize is None else int(asize),
        retry_of=retry,
        failure_class=None if fclass is None else FailureClass(fclass),
    )


def insert_run(cur: duckdb.DuckDBPyConnection, run: ExportRun) -> None:
    """Write a new run row (call inside a transaction)."""
    cur.execute(
        f"INSERT INTO export_runs ({_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run.tenant,
            run.run_id,
            run.profile_id,
            run.profile_revision,
            str(run.state),
            canonical_json(run.parameters).decode("utf-8"),
            run.created_at,
            run.started_at,
            run.finished_at,
            run.correlation_id,
            run.error_code,
            run.error_message,
            None if run.artifact_path is None else str(run.artifact_path),
            run.artifact_sha256,
            run.artifact_size,
            run.retry_of,
            None if run.failure_class is None else str(run.failure_class),
        ],
    )


class RunEngine:
    """Executes planned runs and answers questions about them.

    ``max_active_per_tenant`` caps how many runs of one tenant may be ``running`` at once (threads of one
    process: the TUI and the API run exports in workers); one more is refused with exit 7.
    """

    def __init__(self, store: Store, *, max_active_per_tenant: int = DEFAULT_MAX_ACTIVE_PER_TENANT) -> None:
        if max_active_per_tenant < 1:
            raise UsageError(f"max_active_per_tenant must be at least 1, not {max_active_per_tenant}")
        self.store = store
        self.max_active_per_tenant = max_active_per_tenant
        self._key = str(store.home.store_path)

    # -- reading ----------------------------------------------------------------------------------
    def get_run(self, run_id: str, tenant: str | None = None) -> ExportRun:
        """One run; with ``tenant``, only if it belongs to that tenant."""
        sql = f"SELECT {_RUN_COLUMNS} FROM export_runs WHERE run_id = ?"
        params: list[Any] = [run_id]
        if tenant is not None:
            sql += " AND tenant = ?"
            params.append(tenant)
        with self._cursor() as cur:
            row = cur.execute(sql, params).fetchone()
        if row is None:
            where = f" in tenant {tenant!r}" if tenant is not None else ""
            raise NotFoundError(f"no export run {run_id!r}{where}", hint="see `stella export runs`")
        return run_from_row(row)

    def resolve_run_id(self, ident: str) -> str:
        """The run ``ident`` names: a whole run id, or a prefix of exactly one (as `stella data show` takes digests).

        An ambiguous prefix is a usage error (exit 2) listing the candidates; no match is exit 3.
        """
        with self._cursor() as cur:
            # A literal prefix (starts_with, not LIKE): `%` and `_` typed are characters, not wildcards.
            rows = cur.execute(
                "SELECT run_id FROM export_runs WHERE run_id = ? OR starts_with(run_id, ?) ORDER BY run_id LIMIT 11",
                [ident, ident],
            ).fetchall()
        ids = [str(r[0]) for r in rows]
        if ident in ids:
            return ident
        if not ids or not ident:
            raise NotFoundError(f"no export run {ident!r}", hint="see `stella export runs`")
        if len(ids) > 1:
            shown = ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")
            raise UsageError(f"{ident!r} matches {len(ids)} export runs: {shown}", hint="give more of the run id")
        return ids[0]

    def list_runs(self, tenant: str, *, state: RunState | None = None, limit: int | None = None) -> list[ExportRun]:
        """The tenant's runs, newest first."""
        sql = f"SELECT {_RUN_COLUMNS} FROM export_runs WHERE tenant = ?"
        params: list[Any] = [tenant]
        if state is not None:
            sql += " AND state = ?"
            params.append(str(state))
        sql += " ORDER BY created_at DESC, run_id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._cursor() as cur:
            rows = cur.execute(sql, params).fetchall()
        return [run_from_row(r) for r in rows]

    def events(self, run_id: str) -> builtins.list[RunEvent]:
        """The run's history, in order."""
        run = self.get_run(run_id)
        with self._cursor() as cur:
            rows = cur.execute(
                "SELECT run_id, seq, event_time, event_type, from_state, to_state, correlation_id, actor, detail"
                " FROM export_events WHERE tenant = ? AND run_id = ? ORDER BY seq",
                [run.tenant, run_id],
            ).fetchall()
        return [
            RunEvent(
                run_id=r[0],
                seq=int(r[1]),
                event_time=r[2],
                event_type=r[3],
                from_state=r[4],
                to_state=r[5],
                correlation_id=r[6],
                actor=r[7],
                detail=json.loads(r[8]) if r[8] else {},
            )
            for r in rows
        ]

    def inputs(self, run_id: str) -> Iterator[InputRef]:
        """The run's pinned inputs, in order, streamed; checked against the digest recorded at plan time."""
        run = self.get_run(run_id)
        return self._inputs(run)

    def _inputs(self, run: ExportRun) -> Iterator[InputRef]:
        digest = hashlib.sha256()
        count = 0
        cur = self.store.cursor()
        try:
            cur.execute(
                "SELECT i.document_sha256, i.kind, r.format, i.subject, i.document_id, r.size FROM export_inputs i"
                " LEFT JOIN raw_documents r ON r.tenant = i.tenant AND r.sha256 = i.document_sha256"
                " WHERE i.tenant = ? AND i.run_id = ? ORDER BY i.ordinal",
                [run.tenant, run.run_id],
            )
            while rows := cur.fetchmany(FETCH_ROWS):
                for sha, kind, fmt, subject, doc_id, size in rows:
                    if fmt is None:
                        raise IntegrityError(f"input document {sha} of run {run.run_id} is no longer in the store")
                    digest.update(f"{sha}\n".encode("ascii"))
                    count += 1
                    yield InputRef(sha, kind, fmt, subject, doc_id, int(size))
        finally:
            cur.close()
        if count != run.input_count or digest.hexdigest() != run.inputs_sha256:
            raise IntegrityError(
                f"the inputs of run {run.run_id} differ from those recorded when it was planned",
                hint="plan a new run",
            )

    def distributions(self, run_id: str) -> builtins.list[Distribution]:
        """Where the run's artifact has been handed, oldest first."""
        run = self.get_run(run_id)
        with self._cursor() as cur:
            rows = cur.execute(
                "SELECT distribution_id, run_id, type, target, sha256, size, state, created_at"
                " FROM export_distributions WHERE tenant = ? AND run_id = ? ORDER BY created_at, distribution_id",
                [run.tenant, run_id],
            ).fetchall()
        return [Distribution(*r) for r in rows]

    # -- cancellation -----------------------------------------------------------------------------
    def cancel_requested(self, run_id: str) -> bool:
        """True when someone asked to cancel ``run_id`` (a CancelToken adapter may poll this)."""
        return _read_cancel_request(cancel_request_path(self.store.home, run_id)) is not None

    def cancel_run(self, run_id: str, actor: str | None = None) -> ExportRun:
        """Cancel a run: a pending run is aborted at once; a running one is asked to stop at its next unit.

        A run in a terminal state cannot be cancelled (exit 2).
        """
        who = actor or current_user()
        run = self.get_run(run_id)
        if run.state is RunState.PENDING:
            return self._transition(
                run, RunState.ABORTED, "aborted", actor=f"cancelled by {who}", detail={"error_code": "cancelled"}
            )
        if run.state is RunState.RUNNING:
            request_cancel(self.store.home, run_id, who)
            with self._writing() as cur:
                write_event(cur, run, "cancel-requested", actor=who)
            return run
        raise UsageError(f"run {run_id} has already {run.state}; there is nothing to cancel")

    # -- execution --------------------------------------------------------------------------------
    def execute(
        self,
        run_id: str,
        builder: BundleBuilder,
        observer: Observer | None = None,
    ) -> ExportRun:
        """Run a pending run to the end; returns it succeeded, or raises what the builder raised.

        ``observer`` hears the builder's progress. On failure the run is ``failed`` with the error's code and
        message; on cancellation (the observer, a cancel request, Ctrl-C) it is ``aborted`` with the actor who
        cancelled. Either way nothing is left at the run's output path.
        """
        sink = observer or NullObserver()
        run = self.get_run(run_id)
        if run.state is not RunState.PENDING:
            hint = f"retry it with `stella export retry {run_id}`" if run.state.terminal else None
            raise UsageError(f"run {run_id} is {run.state}, not pending", hint=hint)
        out = run.out_path
        if out.exists() or out.is_symlink():
            raise UsageError(
                f"output {out} already exists", path=str(out), hint="move it away, or retry with another --out"
            )
        request = cancel_request_path(self.store.home, run_id)
        token = RunCancelToken(request, sink)
        if token.is_cancelled():
            # Asked to stop before it started: abort without running.
            self._clear_request(request)
            self._transition(
                run,
                RunState.ABORTED,
                "aborted",
                actor=f"cancelled by {token.requested_by}",
                detail={"error_code": "cancelled"},
            )
            raise Cancelled(f"run {run_id} was cancelled by {token.requested_by} before it started")
        run = self._start(run)
        try:
            try:
                artifact = builder(run, self._inputs(run), sink, token)
            except Exception as exc:  # a full disk, an I/O error while building: exit 8 naming where
                unnamed = isinstance(exc, OSError) and not exc.filename
                failure = environment_failure(exc, path=out if unnamed else None, what="cannot build the bundle")
                if failure is None:
                    raise
                raise failure from exc
            self._check_artifact(run, artifact)
        except (Cancelled, KeyboardInterrupt):
            who = token.requested_by or current_user()
            self._remove_partial(out)
            self._transition(
                run, RunState.ABORTED, "aborted", actor=f"cancelled by {who}", detail={"error_code": "cancelled"}
            )
            raise
        except BaseException as exc:
            self._remove_partial(out)
            code, message = _describe(exc)
            kind = classify(exc)
            self._transition(
                run,
                RunState.FAILED,
                "failed",
                detail={"error_code": code, "message": message, "failure_class": str(kind)},
                error=(code, message, kind),
            )
            raise
        else:
            # Still registered as active here, so no other thread can take it for an interrupted run.
            done = self._transition(
                run,
                RunState.SUCCEEDED,
                "succeeded",
                detail={"artifact": str(artifact.path), "sha256": artifact.sha256, "size": artifact.size},
                artifact=artifact,
            )
            # The built bundle is the run's first distribution: a file where the run said it would be.
            self.record_distribution(run_id, "file", str(artifact.path), artifact.sha256, artifact.size)
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE.discard((self._key, run_id))
            self._clear_request(request)
        return done

    def _start(self, run: ExportRun) -> ExportRun:
        with _ACTIVE_LOCK:
            self._recover_interrupted(run.tenant)
            with self._cursor() as cur:
                row = cur.execute(
                    "SELECT count(*) FROM export_runs WHERE tenant = ? AND state = 'running'", [run.tenant]
                ).fetchone()
            active = int(row[0]) if row else 0
            if active >= self.max_active_per_tenant:
                raise PolicyRefusal(
                    f"tenant {run.tenant!r} already has {active} running exports; the limit is"
                    f" {self.max_active_per_tenant} at a time",
                    hint="wait for one to finish, or cancel one with `stella export cancel RUN`",
                )
            started = self._transition(
                run,
                RunState.RUNNING,
                "started",
                detail={"pid": os.getpid(), "host": socket.gethostname()},
            )
            _ACTIVE.add((self._key, run.run_id))
        return started

    def _recover_interrupted(self, tenant: str) -> None:
        """Fail `running` runs no live engine owns: their process ended before they finished."""
        with self._cursor() as cur:
            rows = cur.execute(
                f"SELECT {_RUN_COLUMNS} FROM export_runs WHERE tenant = ? AND state = 'running'", [tenant]
            ).fetchall()
        for row in rows:
            stale = run_from_row(row)
            if (self._key, stale.run_id) in _ACTIVE:
                continue
            message = "interrupted: the stella process running this export stopped before it finished"
            # What its build left beside the output is named with its run id (the staging directory, the archive's
            # temporary file), so it is provably that run's: nobody else can be writing it now.
            sweep_temp_files(stale.out_path, stale.bundle_run_id)
            self._transition(
                stale,
                RunState.FAILED,
                "failed",
                detail={
                    "error_code": INTERRUPTED_CODE,
                    "message": message,
                    "failure_class": str(FailureClass.TRANSIENT),
                },
                error=(INTERRUPTED_CODE, message, FailureClass.TRANSIENT),
            )

    def _check_artifact(self, run: ExportRun, artifact: Artifact) -> None:
        try:
            size = artifact.path.stat().st_size
        except OSError as exc:
            raise IntegrityError(
                f"the builder reported an artifact that is not there: {exc.strerror}", path=str(artifact.path)
            ) from None
        if size != artifact.size or not re.fullmatch(r"[0-9a-f]{64}", artifact.sha256):
            raise IntegrityError(
                f"the builder reported {artifact.size} bytes / sha256 {artifact.sha256!r}, the file has {size} bytes",
                path=str(artifact.path),
            )

    @staticmethod
    def _remove_partial(path: Path) -> None:
        # NotADirectoryError: the output's directory was replaced by a file mid-build; the run must still fail cleanly.
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()

    @staticmethod
    def _clear_request(path: Path) -> None:
        with contextlib.suppress(OSError):
            path.unlink()

    def _transition(
        self,
        run: ExportRun,
        to: RunState,
        event_type: str,
        *,
        actor: str | None = None,
        detail: dict[str, Any] | None = None,
        error: tuple[str, str, FailureClass] | None = None,
        artifact: Artifact | None = None,
    ) -> ExportRun:
        if to not in _TRANSITIONS.get(run.state, frozenset()):
            raise UsageError(f"run {run.run_id} cannot go from {run.state} to {to}")
        now = utcnow()
        sets = ["state = ?"]
        params: list[Any] = [str(to)]
        if to is RunState.RUNNING:
            sets.append("started_at = ?")
            params.append(now)
        if to.terminal:
            sets.append("finished_at = ?")
            params.append(now)
        if error is not None:
            sets += ["error_code = ?", "error_message = ?", "failure_class = ?"]
            params += [error[0], error[1], str(error[2])]
        if artifact is not None:
            sets += ["artifact_path = ?", "artifact_sha256 = ?", "artifact_size = ?"]
            params += [str(artifact.path), artifact.sha256, artifact.size]
        with self._writing() as cur:
            changed = cur.execute(
                f"UPDATE export_runs SET {', '.join(sets)} WHERE tenant = ? AND run_id = ? AND state = ?",
                [*params, run.tenant, run.run_id, str(run.state)],
            ).fetchone()
            if not changed or not changed[0]:
                raise UsageError(f"run {run.run_id} changed state while this command worked on it; try again")
            write_event(cur, run, event_type, from_state=run.state, to_state=to, actor=actor, detail=detail)
        with log_fields.bound(**log_fields.run_fields(run), error_code=None if error is None else error[0]):
            _log.log(logging.ERROR if error else logging.INFO, "run %s: %s -> %s", event_type, run.state, to)
        return self.get_run(run.run_id)

    # -- retry ------------------------------------------------------------------------------------
    def retry(self, run_id: str, *, out_path: Path | None = None) -> str:
        """A new pending run repeating a finished one: same parameters (``createdAt`` too) and inputs.

        A failed or aborted run is rebuilt where it was meant to go; so is a succeeded one whose bundle was deleted.
        A succeeded run whose bundle is still there (intact or changed) is rebuilt (byte-identical) somewhere else,
        so ``out_path`` is required then. ``out_path`` changes only where the artifact goes,
        never its bytes. Returns the new run's id.
        """
        orig = self.get_run(run_id)
        if orig.state not in (RunState.FAILED, RunState.ABORTED, RunState.SUCCEEDED):
            raise UsageError(f"run {run_id} is {orig.state}; only a finished run can be retried")
        if orig.state is RunState.SUCCEEDED and out_path is None:
            # Rebuilt where it was meant to go only when the bundle is gone; say what is there otherwise.
            present = bundle_condition(orig)
            if present != "missing":
                raise UsageError(
                    f"run {run_id} succeeded and its bundle {present}: {orig.artifact_path}",
                    hint="give --out to rebuild it somewhere else"
                    + ("" if present == "is intact" else ", or move the changed file away to rebuild it there"),
                )
        params = dict(orig.parameters)
        if out_path is not None:
            params["outPath"] = str(out_path.expanduser().resolve())
        new = ExportRun.pending(
            tenant=orig.tenant,
            run_id=new_run_id(),
            profile_id=orig.profile_id,
            profile_revision=orig.profile_revision,
            parameters=params,
            retry_of=orig.run_id,
        )
        with self._writing() as cur:
            insert_run(cur, new)
            cur.execute(
                "INSERT INTO export_inputs (tenant, run_id, ordinal, document_sha256, kind, subject, document_id)"
                " SELECT tenant, ?, ordinal, document_sha256, kind, subject, document_id FROM export_inputs"
                " WHERE tenant = ? AND run_id = ?",
                [new.run_id, orig.tenant, orig.run_id],
            )
            write_event(cur, new, "planned", to_state=RunState.PENDING, detail={"retry_of": orig.run_id})
            write_event(cur, orig, "retried", detail={"retry_run": new.run_id})
        return new.run_id

    # -- distribution -----------------------------------------------------------------------------
    def record_distribution(
        self,
        run_id: str,
        type: str,
        target: str,
        sha256: str | None,
        size: int | None,
        *,
        state: str = "completed",
        expires_at: datetime | None = None,
    ) -> Distribution:
        """Record that the run's artifact was handed to ``target`` (a file, a media volume, a registry).

        ``expires_at`` is when the copy may go (an object store's retention); without it a retention policy
        stamps one later."""
        run = self.get_run(run_id)
        dist = Distribution(f"dist-{secrets.token_hex(8)}", run_id, type, target, sha256, size, state, utcnow())
        detail: dict[str, Any] = {
            "distribution_id": dist.distribution_id,
            "type": type,
            "target": target,
            "state": state,
        }
        pushed = log_fields.phase_seconds("distribute")  # inside a distribution: how long the hand-over took
        if pushed is not None:
            detail["push_seconds"] = round(pushed, 6)
        with self._writing() as cur:
            cur.execute(
                "INSERT INTO export_distributions (tenant, run_id, distribution_id, type, target, sha256, size, state,"
                " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run.tenant,
                    run_id,
                    dist.distribution_id,
                    type,
                    target,
                    sha256,
                    size,
                    state,
                    dist.created_at,
                    expires_at,
                ],
            )
            write_event(cur, run, "distributed", detail=detail)
        return dist

    def download(
        self,
        run_id: str,
        to: Path,
        *,
        observer: Observer | None = None,
    ) -> Distribution:
        """Copy the run's artifact to ``to`` (a file, or a directory to put it in), resuming a partial copy.

        The copy is written beside ``to``, to ``.<name>.<run id>.part``, and renamed over ``to`` once it is whole and
        its digest checked, so ``to`` holds the old file or the whole artifact, never part of it. A symbolic link at
        ``to`` is replaced by the copy, never written through. If the ``.part`` file (or ``to`` itself, when it is a
        regular file) holds a prefix of the artifact, only the rest is copied. The copy is checked against the
        sha256 recorded when the run succeeded: on a mismatch nothing is left and :class:`IntegrityError` (exit 4)
        is raised. ``observer`` hears the progress; when it says cancel, what was copied stays in the ``.part``
        file for the next download to resume from.
        """
        sink = observer or NullObserver()
        run = self.get_run(run_id)
        if run.state is not RunState.SUCCEEDED or run.artifact_path is None or run.artifact_sha256 is None:
            raise UsageError(f"run {run_id} is {run.state}; only a succeeded run has an artifact to download")
        src = run.artifact_path
        if not src.is_file():
            raise IntegrityError(f"the artifact of run {run_id} is missing", path=str(src))
        target = to / src.name if to.is_dir() else to
        if target.is_file() and not target.is_symlink() and target.samefile(src):
            raise UsageError(f"{target} is the artifact itself", path=str(target))
        if target.is_dir() and not target.is_symlink():
            raise UsageError(f"{target} is a directory", path=str(target))
        if writes_in_place(target):  # a device or a pipe (/dev/stdout): streamed, checked, nothing to resume
            return self._download_in_place(run, src, target, sink)
        part = target.parent / f".{target.name}.{run_id}.part"
        total = src.stat().st_size
        digest = hashlib.sha256()
        try:
            earlier = not part.is_file() and target.is_file() and not target.is_symlink()
            if earlier and _matching_prefix(src, target, total, hashlib.sha256()):
                target.rename(part)  # an earlier copy cut short: resume it
            resumed = _matching_prefix(src, part, total, digest) if not part.is_symlink() else 0
            if resumed == 0:
                digest = hashlib.sha256()
            sink.start("download", total)
            sink.advance(resumed)
            flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_APPEND if resumed else os.O_TRUNC)
            with src.open("rb") as fin, os.fdopen(os.open(part, flags, 0o666), "wb") as fout:
                fin.seek(resumed)
                while chunk := fin.read(CHUNK):
                    if sink.is_cancelled():
                        # What is in the .part file is a prefix: the next download resumes from it.
                        raise Cancelled(f"download of run {run_id} cancelled; run it again to resume")
                    fout.write(chunk)
                    digest.update(chunk)
                    sink.advance(len(chunk))
                fout.flush()
                os.fsync(fout.fileno())
            sink.finish("download")
            size = part.stat().st_size
        except OSError as exc:
            with contextlib.suppress(OSError):
                part.unlink()  # a full disk or an I/O error: no partial file is left behind
            raise EnvironmentFailure(f"cannot copy the artifact: {exc.strerror}", path=str(target)) from exc
        actual = digest.hexdigest()
        if actual != run.artifact_sha256 or size != run.artifact_size:
            with contextlib.suppress(OSError):
                part.unlink()
            raise IntegrityError(
                f"the artifact of run {run_id} does not match what the run recorded: sha256 {actual} ({size} bytes),"
                f" expected {run.artifact_sha256} ({run.artifact_size} bytes); nothing was left at {target}",
                path=str(src),
                hint="the stored artifact was changed or damaged; retry the export to build it again",
            )
        with failing_as_environment(target, "cannot copy the artifact"):
            part.replace(target)
        fsync_dir(target.parent)
        dist = self.record_distribution(run_id, "file", str(target.resolve()), actual, size)
        return replace(dist, resumed_from=resumed)

    def _download_in_place(self, run: ExportRun, src: Path, target: Path, sink: Observer) -> Distribution:
        digest = hashlib.sha256()
        size = 0
        sink.start("download", src.stat().st_size)
        with atomic_file(target, what="cannot copy the artifact") as fout, src.open("rb") as fin:
            while chunk := fin.read(CHUNK):
                if sink.is_cancelled():
                    raise Cancelled(f"download of run {run.run_id} cancelled")
                fout.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                sink.advance(len(chunk))
        sink.finish("download")
        if digest.hexdigest() != run.artifact_sha256 or size != run.artifact_size:
            raise IntegrityError(
                f"the artifact of run {run.run_id} does not match what the run recorded", path=str(src)
            )
        return self.record_distribution(run.run_id, "file", str(target), digest.hexdigest(), size)

    # -- helpers ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor in a transaction, one writer thread at a time."""
        with _WRITE_LOCK, self._cursor() as cur, transaction(cur):
            yield cur

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        # A cursor per call: the TUI and the API call the engine from worker threads.
        cur = self.store.cursor()
        try:
            yield cur
        finally:
            cur.close()


def bundle_condition(run: ExportRun) -> str:
    """What is at a succeeded run's bundle path now: ``is intact`` (size and sha256 as recorded), ``missing``,
    or a phrase saying how it differs."""
    path = run.artifact_path
    if path is None:
        return "missing"
    try:
        if not path.is_file() or path.is_symlink():
            return "missing" if not (path.exists() or path.is_symlink()) else "path holds something else"
        if path.stat().st_size != run.artifact_size:
            return f"was changed ({path.stat().st_size} bytes, the run recorded {run.artifact_size})"
        digest = hashlib.sha256()
        with path.open("rb") as src:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if digest.hexdigest() != run.artifact_sha256:
        return f"was changed (sha256 {digest.hexdigest()}, the run recorded {run.artifact_sha256})"
    return "is intact"


def _matching_prefix(src: Path, target: Path, total: int, digest: Any) -> int:
    """Length of ``target`` when it is a prefix of ``src`` (hashed into ``digest``), else 0."""
    if not target.is_file():
        return 0
    have = target.stat().st_size
    if have == 0 or have > total:
        return 0
    left = have
    with src.open("rb") as a, target.open("rb") as b:
        while left:
            n = min(CHUNK, left)
            x, y = a.read(n), b.read(n)
            if x != y:
                return 0
            digest.update(x)
            left -= n
    return have


def _describe(exc: BaseException) -> tuple[str, str]:
    """(error_code, message) of a failure, for the run row and its event."""
    if isinstance(exc, StellaError):
        return exc.code, exc.diagnostics()
    if isinstance(exc, OSError):
        return EnvironmentFailure.code, f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return "internal", f"{type(exc).__name__}: {exc}"
