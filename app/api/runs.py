"""Export runs started over the API: planned in the request, built in a worker thread, with idempotency keys.

Nothing here builds anything itself: :func:`services.export.plan_export` and :func:`services.export.build_run` are
what `stella export run` calls. A run's progress counters come from the build's observer while this server builds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.atomic import write_bytes
from core.errors import NotFoundError, PolicyRefusal, StellaError, UsageError
from core.progress import Check
from core.runs import ExportRun, RunEngine, RunState
from core.selectors import Selectors
from services.export import build_run, default_out, max_active_runs, plan_export
from services.keys import signer_for
from services.schedule import run_due_in

from .store import StoreHolder

log = logging.getLogger("stella.api")


#: The environment variable that caps the bytes of a tenant's bundles still on disk, over the API.
MAX_BYTES_ENV = "STELLA_MAX_TENANT_BYTES"
DEFAULT_MAX_BYTES = 10 * 1024**3


def max_tenant_bytes() -> int:
    """Bytes of bundles a tenant may keep on disk before the API refuses new runs (STELLA_MAX_TENANT_BYTES, 10 GiB)."""
    text = os.environ.get(MAX_BYTES_ENV, str(DEFAULT_MAX_BYTES))
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"{MAX_BYTES_ENV}={text!r} is not a positive integer (bytes)")
    return int(text)


class QuotaExceeded(PolicyRefusal):
    """A tenant already has as many active runs, or as many bytes of bundles on disk, as it may (HTTP 429)."""

    code = "quota-exceeded"
    http_status = 429


class IdempotencyConflict(StellaError):
    """An ``Idempotency-Key`` reused with a different request body (HTTP 422)."""

    code = "idempotency-key-reused"
    http_status = 422


@dataclass
class Progress:
    """What a build's observer heard: the phase, units done and the phase's total, and a cancel flag."""

    phase: str = ""
    done: int = 0
    total: int | None = None
    checks: int = 0
    cancelled: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, phase: str, total: int | None = None) -> None:
        with self.lock:
            self.phase, self.done, self.total = phase, 0, total

    def advance(self, units: int = 1, *, detail: str | None = None) -> None:
        with self.lock:
            self.done += units

    def finish(self, phase: str) -> None:
        return None

    def check(self, check: Check) -> None:
        with self.lock:
            self.checks += 1

    def is_cancelled(self) -> bool:
        return self.cancelled

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            return {"phase": self.phase, "done": self.done, "total": self.total}


@dataclass(frozen=True)
class Quota:
    """A tenant's two quotas: runs pending or running, and the bytes of its bundles still on disk."""

    limit: int
    used: int
    bytes_limit: int
    bytes_used: int

    def headers(self) -> dict[str, str]:
        return {
            "X-Stella-Quota-Active-Runs-Limit": str(self.limit),
            "X-Stella-Quota-Active-Runs-Used": str(self.used),
            "X-Stella-Quota-Active-Runs-Remaining": str(max(0, self.limit - self.used)),
            "X-Stella-Quota-Bytes-Limit": str(self.bytes_limit),
            "X-Stella-Quota-Bytes-Used": str(self.bytes_used),
            "X-Stella-Quota-Bytes-Remaining": str(max(0, self.bytes_limit - self.bytes_used)),
        }

    def refusal(self, tenant: str) -> QuotaExceeded | None:
        """Why a new run is refused, or None: a run is admitted while the tenant is under both limits."""
        if self.used >= self.limit:
            return QuotaExceeded(
                f"tenant {tenant!r} already has {self.used} active runs (limit {self.limit})",
                hint="wait for a run to end, or cancel one",
            )
        if self.bytes_used >= self.bytes_limit:
            return QuotaExceeded(
                f"tenant {tenant!r} already keeps {self.bytes_used} bytes of bundles on disk"
                f" (limit {self.bytes_limit}, {MAX_BYTES_ENV})",
                hint="free space with `stella retention prune`, or delete bundles the tenant no longer needs",
            )
        return None


class RunManager:
    """The runs this server builds, and the idempotency keys of the requests that created runs."""

    def __init__(self, holder: StoreHolder) -> None:
        self.holder = holder
        self.home = holder.home
        self._create = threading.Lock()
        self._builds: dict[str, Progress] = {}  # queued or building, in this server
        #: Runs to build, and ``None``: fire the due schedules (in this same worker, so one build at a time).
        self._queue: queue.Queue[ExportRun | None] = queue.Queue()
        self._schedules_queued = threading.Event()
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()

    # -- quotas and idempotency -------------------------------------------------------------
    def quota(self, tenant: str) -> Quota:
        """The tenant's active runs, and the bytes of its succeeded runs' bundles that are still on disk."""
        with self.holder.use() as store:
            engine = RunEngine(store)
            used = len(engine.list_runs(tenant, state=RunState.PENDING)) + len(
                engine.list_runs(tenant, state=RunState.RUNNING)
            )
            artifacts = {r.artifact_path for r in engine.list_runs(tenant, state=RunState.SUCCEEDED) if r.artifact_path}
        on_disk = 0
        for path in artifacts:
            try:
                on_disk += path.stat().st_size  # pruned or deleted bundles no longer count
            except OSError:
                continue
        return Quota(max_active_runs(), used, max_tenant_bytes(), on_disk)

    def _key_path(self, tenant: str, key: str) -> Path:
        name = hashlib.sha256(f"{tenant}\0{key}".encode()).hexdigest()
        return self.home.root / "api" / "idempotency" / f"{name}.json"

    def _remembered(self, tenant: str, key: str, body_digest: str) -> str | None:
        path = self._key_path(tenant, key)
        try:
            record = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        if record.get("bodySha256") != body_digest:
            raise IdempotencyConflict(
                "this Idempotency-Key was used with a different request body",
                hint="use a new key for a different request",
            )
        return str(record["runId"])

    # -- creating and building ----------------------------------------------------------------
    def create(
        self,
        tenant: str,
        profile: str,
        selectors: Selectors,
        key: str | None,
        *,
        idempotency_key: str | None,
        body_digest: str,
    ) -> tuple[ExportRun, bool]:
        """Plan a run and start its build; with a known ``idempotency_key``, the run it created (and False)."""
        with self._create:
            if idempotency_key is not None:
                known = self._remembered(tenant, idempotency_key, body_digest)
                if known is not None:
                    with self.holder.use() as store:
                        return RunEngine(store).get_run(known, tenant), False
            refusal = self.quota(tenant).refusal(tenant)
            if refusal is not None:
                raise refusal
            name = profile.split("@", 1)[0]
            with self.holder.use() as store:
                run = plan_export(
                    store, tenant, profile, selectors, requested={}, key=key, out=default_out(self.home, name)
                )
                try:
                    signer_for(self.home, run.key_name, None)  # a missing or locked key: refused now, not later
                except StellaError:
                    RunEngine(store).cancel_run(run.run_id, actor="stella-serve")
                    raise
            if idempotency_key is not None:
                record = {"bodySha256": body_digest, "runId": run.run_id, "tenant": tenant}
                path = self._key_path(tenant, idempotency_key)
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                write_bytes(path, json.dumps(record).encode(), mode=0o600)
            self._start(run)
            return run, True

    def _start(self, run: ExportRun) -> None:
        self._builds[run.run_id] = Progress()
        self._enqueue(run)

    def fire_schedules(self) -> None:
        """Queue one firing of the due schedules behind the builds already queued (never two at once)."""
        if not self._schedules_queued.is_set():
            self._schedules_queued.set()
            self._enqueue(None)

    def _enqueue(self, item: ExportRun | None) -> None:
        self._queue.put(item)
        with self._worker_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="stella-api-builds", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        """The one build worker: builds run one after another (the store has one writer; a run waits pending)."""
        while True:
            run = self._queue.get()
            try:
                if run is None:
                    self._schedules_queued.clear()
                    self._run_schedules()
                else:
                    self._build(run, self._builds[run.run_id])
            finally:
                if run is not None:
                    self._builds.pop(run.run_id, None)
                self._queue.task_done()

    def _run_schedules(self) -> None:
        """What `stella schedule run-due` does, with this server's store: requests keep their answers meanwhile."""
        try:
            with self.holder.use() as store:
                report = run_due_in(self.home, store)
        except StellaError as exc:
            log.warning("scheduled runs not fired: %s", exc.message)
        except Exception:
            log.exception("scheduled runs: internal error")
        else:
            for firing in report.firings:
                log.info(
                    "schedule %s fired for %s: run %s %s", firing.schedule, firing.slot, firing.run_id, firing.outcome
                )

    def _build(self, run: ExportRun, progress: Progress) -> None:
        try:
            with self.holder.use() as store:
                engine = RunEngine(store)
                if engine.get_run(run.run_id).state != RunState.PENDING:
                    return  # cancelled while it waited
                try:
                    build_run(store, self.home, run, observer=progress)
                except StellaError as exc:
                    log.info("run %s ended: %s", run.run_id, exc.message)
                except Exception:
                    log.exception("run %s: internal error", run.run_id)
                if engine.get_run(run.run_id).state == RunState.PENDING:  # it failed before it started
                    engine.cancel_run(run.run_id, actor="stella-serve")
        except Exception:
            log.exception("run %s: internal error", run.run_id)

    def progress(self, run_id: str) -> dict[str, Any] | None:
        entry = self._builds.get(run_id)
        return None if entry is None else entry.to_dict()

    def building(self) -> int:
        return len(self._builds)

    # -- reading and cancelling ------------------------------------------------------------------
    def get(self, tenant: str, run_id: str) -> ExportRun:
        """The tenant's run ``run_id`` (exact id); another tenant's run is not found."""
        with self.holder.use() as store:
            return RunEngine(store).get_run(run_id, tenant)

    def cancel(self, tenant: str, run_id: str, actor: str) -> ExportRun:
        with self.holder.use() as store:
            engine = RunEngine(store)
            run = engine.get_run(run_id, tenant)
            if run.state.terminal:
                raise PolicyRefusal(f"run {run_id} is already {run.state}", hint="only a pending or running run stops")
            entry = self._builds.get(run_id)
            if entry is not None:
                entry.cancelled = True  # the build's observer stops it at its next unit of work
            return engine.cancel_run(run_id, actor)


def not_found(run_id: str) -> NotFoundError:
    return NotFoundError(f"no export run {run_id!r}")
