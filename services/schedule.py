"""`stella schedule`: scheduled exports and retention prunes, fired by `run-due` (from a systemd timer, or by hand).

A schedule is due when its latest calendar slot at or before now is newer than the slot it last fired for (missed
slots are caught up once: only the latest one fires), or, for an import trigger, when a document of one of its kinds
was imported after it last fired (it never fires for documents imported before it was added). Each firing claims a
run key (core/schedule.py) under a UNIQUE constraint before it starts anything, so a second `run-due` for the same
slot, concurrent or later, finds the key taken and starts nothing.

A firing that fails with a transient failure (core/failure.py) is tried again after a backoff, up to the attempt
limit; any other failure ends it at once. `run-due` itself waits for the store the same way when another stella
process holds it.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from adapters.profiles.registry import run_options
from core import log_fields
from core.atomic import failing_as_environment, write_bytes
from core.clock import rfc3339, utcnow
from core.errors import NotFoundError, StellaError, UsageError
from core.failure import FailureClass, classify
from core.home import Home
from core.keys import KeyStore
from core.profiles import ProfileStore, current_profile_id
from core.records import DocumentKind
from core.runs import RunEngine, current_user
from core.schedule import Action, Calendar, Schedule, Trigger, check_name, run_key
from core.store import Store
from core.tenants import validate_tenant
from services import retention
from services.export import build_run, check_selectors, default_out, max_active_runs, plan_export, traced_run

#: Tries of one firing (and of opening the store) before a transient failure is given up.
DEFAULT_ATTEMPTS = 6
#: Seconds before the second try; doubled for each further one (6 tries wait up to 62 s in all).
DEFAULT_BACKOFF = 2.0

#: The profile and revision that stand in a retention schedule's run key.
_RETENTION_PROFILE = "retention"

#: How often a systemd timer looks for the imports an import-triggered schedule waits for.
IMPORT_POLL = "*-*-* *:00/15:00 UTC"

_COLUMNS = (
    "tenant, name, action, trigger, calendar, import_kinds, profile_id, key_name, selectors, providers, created_at,"
    " created_by"
)


def _schedule(row: Sequence[Any]) -> Schedule:
    tenant, name, action, trigger, calendar, kinds, profile_id, key_name, selectors, providers, created_at, by = row
    return Schedule(
        tenant=tenant,
        name=name,
        action=Action(action),
        trigger=Trigger(trigger),
        calendar=None if calendar is None else Calendar.parse(calendar),
        import_kinds=tuple(kinds or ()),
        profile_id=profile_id,
        key_name=key_name,
        selectors=tuple(selectors or ()),
        providers=tuple(providers or ()),
        created_at=created_at,
        created_by=by,
    )


@dataclass(frozen=True)
class ScheduleSpec:
    """What `stella schedule add` asks for: exactly one of ``calendar`` and ``import_kinds``; an export names a
    profile and a key, a retention prune neither."""

    tenant: str
    name: str
    action: Action
    calendar: str | None = None
    import_kinds: tuple[str, ...] = ()
    profile: str | None = None
    key: str | None = None
    selectors: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()  # risk bundles: `export run --provider` values


def _check_spec(home: Home, store: Store, spec: ScheduleSpec) -> Schedule:
    tenant = validate_tenant(spec.tenant)
    name = check_name(spec.name)
    if (spec.calendar is None) == (not spec.import_kinds):
        raise UsageError("a schedule needs exactly one of --calendar, --after-import and --on-risk-feed-update")
    calendar = None if spec.calendar is None else Calendar.parse(spec.calendar)
    known = {str(k) for k in DocumentKind}
    for kind in spec.import_kinds:
        if kind not in known:
            raise UsageError(
                f"--after-import {kind!r} is not a document kind", hint=f"known: {', '.join(sorted(known))}"
            )
    profile_id = key_name = None
    if spec.action is Action.EXPORT:
        if not spec.profile or not spec.key:
            raise UsageError("an export schedule needs --profile and --key")
        if "@" in spec.profile:
            raise UsageError(
                "a schedule runs the latest revision of its profile: give the profile ID without @REVISION"
            )
        profile_id = current_profile_id(spec.profile)
        ProfileStore(store).get(tenant, profile_id)  # exists in this tenant (exit 3 when not)
        key_name = spec.key
        KeyStore(home).info(key_name)  # exists (exit 3 when not)
        check_selectors(spec.selectors)
        run_options(ProfileStore(store).get(tenant, profile_id).config, _requested(spec.providers), store)
    elif spec.profile or spec.key or spec.selectors or spec.providers:
        raise UsageError("a --retention schedule takes no --profile, --key, --selector or --provider")
    return Schedule(
        tenant=tenant,
        name=name,
        action=spec.action,
        trigger=Trigger.CALENDAR if calendar is not None else Trigger.IMPORT,
        calendar=calendar,
        import_kinds=tuple(sorted(set(spec.import_kinds))),
        profile_id=profile_id,
        key_name=key_name,
        selectors=spec.selectors,
        providers=spec.providers,
        created_at=utcnow(),
        created_by=current_user(),
    )


def _requested(providers: Sequence[str]) -> dict[str, Any]:
    """The run options of a scheduled export, as `export run` passes them."""
    return {"providers": list(providers)} if providers else {}


def add_schedule(home: Home, spec: ScheduleSpec) -> Schedule:
    """`stella schedule add`: store a new schedule (a name already used in the tenant is exit 2)."""
    with Store.open(home) as store:
        sched = _check_spec(home, store, spec)
        with store.transaction() as cur:
            if _find(cur, sched.tenant, sched.name) is not None:
                raise UsageError(
                    f"tenant {sched.tenant!r} already has a schedule named {sched.name!r}",
                    hint="remove it first, or choose another name",
                )
            cur.execute(
                f"INSERT INTO schedules ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    sched.tenant,
                    sched.name,
                    str(sched.action),
                    str(sched.trigger),
                    None if sched.calendar is None else sched.calendar.text,
                    list(sched.import_kinds) or None,
                    sched.profile_id,
                    sched.key_name,
                    list(sched.selectors),
                    list(sched.providers),
                    sched.created_at,
                    sched.created_by,
                ],
            )
        return sched


def _find(cur: duckdb.DuckDBPyConnection, tenant: str, name: str) -> Schedule | None:
    row = cur.execute(f"SELECT {_COLUMNS} FROM schedules WHERE tenant = ? AND name = ?", [tenant, name]).fetchone()
    return None if row is None else _schedule(row)


def _all(cur: duckdb.DuckDBPyConnection, tenant: str | None) -> list[Schedule]:
    if tenant is None:
        rows = cur.execute(f"SELECT {_COLUMNS} FROM schedules ORDER BY tenant, name").fetchall()
    else:
        rows = cur.execute(f"SELECT {_COLUMNS} FROM schedules WHERE tenant = ? ORDER BY name", [tenant]).fetchall()
    return [_schedule(r) for r in rows]


def remove_schedule(home: Home, tenant: str, name: str) -> Schedule:
    """`stella schedule remove`: forget a schedule (its firings stay, as the history of the runs it started)."""
    tenant = validate_tenant(tenant)
    with Store.open(home) as store, store.transaction() as cur:
        sched = _find(cur, tenant, name)
        if sched is None:
            raise NotFoundError(f"tenant {tenant!r} has no schedule named {name!r}", hint="see `stella schedule list`")
        cur.execute("DELETE FROM schedules WHERE tenant = ? AND name = ?", [tenant, name])
        return sched


@dataclass(frozen=True)
class Firing:
    """One slot a schedule fired for (a row of ``schedule_firings``)."""

    schedule: str
    slot: datetime
    run_key: str
    fired_at: datetime
    outcome: str  # running | succeeded | failed | already-fired (this `run-due` found the key taken)
    attempts: int
    run_id: str | None = None
    failure_class: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    detail: dict[str, Any] | None = None
    exit_code: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "slot": rfc3339(self.slot),
            "runKey": self.run_key,
            "firedAt": rfc3339(self.fired_at),
            "outcome": self.outcome,
            "attempts": self.attempts,
            "runId": self.run_id,
            "failureClass": self.failure_class,
            "errorCode": self.error_code,
            "error": self.error_message,
        } | ({"detail": self.detail} if self.detail is not None else {})


_FIRING_COLUMNS = (
    "schedule_name, slot, run_key, fired_at, outcome, attempts, run_id, failure_class, error_code, error_message"
)


def _firing(row: Sequence[Any]) -> Firing:
    return Firing(*row)


def _last_firing(cur: duckdb.DuckDBPyConnection, tenant: str, name: str) -> Firing | None:
    row = cur.execute(
        f"SELECT {_FIRING_COLUMNS} FROM schedule_firings WHERE tenant = ? AND schedule_name = ?"
        " ORDER BY slot DESC, fired_at DESC LIMIT 1",
        [tenant, name],
    ).fetchone()
    return None if row is None else _firing(row)


@dataclass(frozen=True)
class ScheduleStatus:
    """A schedule with its last firing and, for a calendar, its next slot after ``at``."""

    schedule: Schedule
    last: Firing | None
    next_due: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return self.schedule.to_dict() | {
            "lastFiring": None if self.last is None else self.last.to_dict(),
            "nextDue": None if self.next_due is None else rfc3339(self.next_due),
        }


def list_schedules(home: Home, tenant: str, *, at: datetime | None = None) -> list[ScheduleStatus]:
    """`stella schedule list`: the tenant's schedules, with when each last fired and next falls due."""
    tenant = validate_tenant(tenant)
    now = at or utcnow()
    with Store.open(home, read_only=True) as store:
        cur = store.cursor()
        try:
            return [
                ScheduleStatus(s, _last_firing(cur, tenant, s.name), s.calendar.next_after(now) if s.calendar else None)
                for s in _all(cur, tenant)
            ]
        finally:
            cur.close()


def _due_slot(cur: duckdb.DuckDBPyConnection, sched: Schedule, at: datetime) -> datetime | None:
    """The slot ``sched`` is due for at ``at``, or None when it is not due."""
    last = _last_firing(cur, sched.tenant, sched.name)
    if sched.calendar is not None:
        slot = sched.calendar.slot_at_or_before(at)
        if slot < sched.created_at:
            return None  # the first slot of a schedule is the first one after it was added
    else:
        row = cur.execute(
            "SELECT max(imported_at) FROM raw_documents WHERE tenant = ? AND list_contains(?, kind)"
            " AND imported_at <= ?",
            [sched.tenant, list(sched.import_kinds), at],
        ).fetchone()
        if row is None or row[0] is None or row[0] <= sched.created_at:
            return None
        slot = row[0]
    if last is not None and last.slot >= slot:
        return None
    return slot


@dataclass
class RunDueReport:
    """What `run-due` did: the firings it started (or found taken) and, per calendar schedule not due, its next
    slot."""

    at: datetime
    firings: list[Firing] = field(default_factory=list)
    not_due: list[tuple[str, datetime | None]] = field(default_factory=list)
    store_attempts: int = 1

    @property
    def exit_code(self) -> int:
        """0 when every firing succeeded (or was already taken), else the exit code of the first that failed."""
        return next((f.exit_code for f in self.firings if f.outcome == "failed"), 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": rfc3339(self.at),
            "storeAttempts": self.store_attempts,
            "firings": [f.to_dict() for f in self.firings],
            "notDue": [{"schedule": n, "nextDue": None if d is None else rfc3339(d)} for n, d in self.not_due],
        }


@dataclass(frozen=True)
class Retrying:
    """A transient failure about to be tried again (what `run-due` tells the user on stderr)."""

    what: str
    attempt: int
    attempts: int
    wait: float
    error: StellaError


def run_due(
    home: Home,
    *,
    tenant: str | None = None,
    only: str | None = None,
    at: datetime | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: float = DEFAULT_BACKOFF,
    on_retry: Callable[[Retrying], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RunDueReport:
    """`stella schedule run-due`: fire every schedule due at ``at`` (default: now), of ``tenant`` (default: every
    tenant), or only the one named ``only``."""
    if attempts < 1:
        raise UsageError("--attempts must be at least 1")
    if backoff < 0:
        raise UsageError("--backoff must not be negative")
    if tenant is not None:
        validate_tenant(tenant)
    max_active_runs()  # a bad setting is refused before anything fires
    now = at or utcnow()
    report = RunDueReport(now)
    for attempt in range(1, attempts + 1):
        try:
            store = Store.open(home)
        except StellaError as exc:
            if classify(exc) is not FailureClass.TRANSIENT or attempt == attempts:
                raise
            wait = backoff * 2 ** (attempt - 1)
            if on_retry is not None:
                on_retry(Retrying("opening the store", attempt, attempts, wait, exc))
            sleep(wait)
            continue
        report.store_attempts = attempt
        with store:
            _fire_all(home, store, report, tenant, only, attempts, backoff, on_retry, sleep)
        break
    return report


def run_due_in(home: Home, store: Store, *, at: datetime | None = None) -> RunDueReport:
    """The schedules due at ``at`` (default: now), every tenant, fired with a store the caller already holds
    (`stella serve`, between its API requests); a transient failure is retried as `schedule run-due` retries it."""
    max_active_runs()
    report = RunDueReport(at or utcnow())
    _fire_all(home, store, report, None, None, DEFAULT_ATTEMPTS, DEFAULT_BACKOFF, None, time.sleep)
    return report


def _fire_all(
    home: Home,
    store: Store,
    report: RunDueReport,
    tenant: str | None,
    only: str | None,
    attempts: int,
    backoff: float,
    on_retry: Callable[[Retrying], None] | None,
    sleep: Callable[[float], None],
) -> None:
    cur = store.cursor()
    try:
        schedules = _all(cur, tenant)
        if only is not None:
            schedules = [s for s in schedules if s.name == only]
            if not schedules:
                raise NotFoundError(f"no schedule named {only!r}", hint="see `stella schedule list`")
        due = [(s, _due_slot(cur, s, report.at)) for s in schedules]
    finally:
        cur.close()
    for sched, slot in due:
        if slot is None:
            report.not_due.append((sched.name, sched.calendar.next_after(report.at) if sched.calendar else None))
            continue
        report.firings.append(_fire(home, store, sched, slot, report.at, attempts, backoff, on_retry, sleep))


def _claim(store: Store, sched: Schedule, slot: datetime, key: str) -> Firing | None:
    """Insert the firing of ``slot`` under ``key``; None when the key is already taken (the slot has fired)."""
    fired_at = utcnow()
    with store.transaction() as cur:
        row = cur.execute(
            "INSERT INTO schedule_firings (run_key, tenant, schedule_name, slot, fired_at, outcome, attempts)"
            " VALUES (?, ?, ?, ?, ?, 'running', 0) ON CONFLICT (run_key) DO NOTHING RETURNING run_key",
            [key, sched.tenant, sched.name, slot, fired_at],
        ).fetchone()
    if row is None:
        return None
    return Firing(sched.name, slot, key, fired_at, "running", 0)


def _fire(
    home: Home,
    store: Store,
    sched: Schedule,
    slot: datetime,
    at: datetime,
    attempts: int,
    backoff: float,
    on_retry: Callable[[Retrying], None] | None,
    sleep: Callable[[float], None],
) -> Firing:
    if sched.action is Action.EXPORT:
        assert sched.profile_id is not None
        try:
            revision = ProfileStore(store).get(sched.tenant, sched.profile_id).revision
        except StellaError as exc:  # the profile is gone: nothing to claim, and the next run-due says so again
            return Firing(
                sched.name, slot, "", utcnow(), "failed", 0, None, str(classify(exc)), exc.code, exc.diagnostics(),
                exit_code=int(exc.exit_code),
            )  # fmt: skip
        key = run_key(sched.tenant, sched.profile_id, revision, sched.name, slot)
    else:
        key = run_key(sched.tenant, _RETENTION_PROFILE, 0, sched.name, slot)
    claimed = _claim(store, sched, slot, key)
    if claimed is None:
        return Firing(sched.name, slot, key, utcnow(), "already-fired", 0)
    run_id: str | None = None
    detail: dict[str, Any] | None = None
    for attempt in range(1, attempts + 1):
        try:
            if sched.action is Action.EXPORT:
                run_id = _export_attempt(home, store, sched, key, attempt, run_id)
            else:
                detail = retention.prune_in(store, sched.tenant, now=at).to_dict()
        except StellaError as exc:
            run_id = _last_run(store, key) or run_id  # the run this attempt started, if it got that far
            failure = classify(exc)
            if failure is FailureClass.TRANSIENT and attempt < attempts:
                wait = backoff * 2 ** (attempt - 1)
                if on_retry is not None:
                    on_retry(Retrying(f"schedule {sched.name}", attempt, attempts, wait, exc))
                sleep(wait)
                continue
            return _finish(store, claimed, attempt, run_id, outcome="failed", failure=failure, error=exc)
        except Exception:
            # A bug: the firing is recorded as failed (its slot is spent), then the CLI reports the error.
            _finish(
                store, claimed, attempt, _last_run(store, key) or run_id, outcome="failed", failure=FailureClass.BUG
            )
            raise
        return _finish(store, claimed, attempt, run_id, outcome="succeeded", detail=detail)
    raise AssertionError("the loop returns on its last attempt")  # pragma: no cover


def _last_run(store: Store, key: str) -> str | None:
    row = store.conn.execute(
        "SELECT run_id FROM schedule_runs WHERE run_key = ? ORDER BY attempt DESC LIMIT 1", [key]
    ).fetchone()
    return None if row is None else str(row[0])


def _export_attempt(home: Home, store: Store, sched: Schedule, key: str, attempt: int, previous: str | None) -> str:
    """Plan and build one run of an export schedule (a retry of ``previous``, the run of the attempt before, when
    there is one); returns its id."""
    assert sched.profile_id is not None
    engine = RunEngine(store)
    with traced_run(home, store, sched.tenant, None) as tracer:  # spans per the home's setting, or an incident
        with log_fields.bound(tenant=sched.tenant), log_fields.phase("plan", span="export.plan"):
            if previous is not None and engine.get_run(previous).state == "failed":
                run = engine.get_run(engine.retry(previous))
            else:
                out = default_out(home, sched.profile_id).resolve()
                with failing_as_environment(out.parent, "cannot create the exports directory"):
                    out.parent.mkdir(parents=True, exist_ok=True)
                run = plan_export(
                    store,
                    sched.tenant,
                    sched.profile_id,
                    check_selectors(sched.selectors),
                    requested=_requested(sched.providers),
                    key=sched.key_name,
                    out=out,
                )
            log_fields.bind_run(run)
        if tracer is not None:
            tracer.bind(run)
        with store.transaction() as cur:
            cur.execute("INSERT INTO schedule_runs VALUES (?, ?, ?, ?)", [sched.tenant, run.run_id, key, attempt])
        done = build_run(store, home, run, key=sched.key_name)
    retention.stamp_expiry(store, sched.tenant)
    return done.run_id


def _finish(
    store: Store,
    firing: Firing,
    attempts: int,
    run_id: str | None,
    *,
    outcome: str,
    failure: FailureClass | None = None,
    error: StellaError | None = None,
    detail: dict[str, Any] | None = None,
) -> Firing:
    import json

    done = Firing(
        firing.schedule,
        firing.slot,
        firing.run_key,
        firing.fired_at,
        outcome,
        attempts,
        run_id,
        None if failure is None else str(failure),
        None if error is None else error.code,
        None if error is None else error.diagnostics(),
        detail,
        0 if error is None else int(error.exit_code),
    )
    with store.transaction() as cur:
        cur.execute(
            "UPDATE schedule_firings SET outcome = ?, attempts = ?, run_id = ?, failure_class = ?, error_code = ?,"
            " error_message = ?, detail = ? WHERE run_key = ?",
            [
                outcome,
                attempts,
                run_id,
                done.failure_class,
                done.error_code,
                done.error_message,
                None if detail is None else json.dumps(detail, sort_keys=True),
                firing.run_key,
            ],
        )
    return done


def run_origin(store: Store, tenant: str, run_id: str) -> dict[str, Any] | None:
    """The schedule firing that started run ``run_id`` (`export show` prints it), or None for a run started by
    hand."""
    row = store.conn.execute(
        "SELECT f.schedule_name, f.slot, f.run_key, r.attempt FROM schedule_runs r"
        " JOIN schedule_firings f ON f.run_key = r.run_key WHERE r.tenant = ? AND r.run_id = ?",
        [tenant, run_id],
    ).fetchone()
    if row is None:
        return None
    name, slot, key, attempt = row
    return {"name": name, "slot": rfc3339(slot), "runKey": key, "attempt": attempt}


# -- systemd units ---------------------------------------------------------------------------------------------------

_UNIT_PREFIX = "stella-schedule-"
_UNIT_TENANT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def unit_name(tenant: str, name: str) -> str:
    """The base name of a schedule's units: ``stella-schedule-<tenant>_<name>`` (a schedule name has no ``_``, so
    the last one separates the two)."""
    if not _UNIT_TENANT.match(tenant):
        raise UsageError(
            f"tenant {tenant!r} cannot be part of a systemd unit name", hint="use ASCII letters and digits"
        )
    return f"{_UNIT_PREFIX}{tenant}_{name}"


def _quote(arg: str) -> str:
    """``arg`` as one word of a systemd command line (quoted; ``%`` and ``$`` doubled so nothing expands)."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in arg):
        raise UsageError(f"{arg!r} holds a control character and cannot be written into a systemd unit")
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def _text(value: str) -> str:
    """``value`` as a unit's free text (``Description=``): one line, ``%`` doubled so no specifier expands."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise UsageError(f"{value!r} holds a control character and cannot be written into a systemd unit")
    return value.replace("%", "%%")


def find_stella() -> Path:
    """The ``stella`` the units run: the one on PATH."""
    found = shutil.which("stella")
    if found is None:
        raise UsageError("no stella on PATH to write into the units", hint="pass --stella PATH")
    return Path(found)


def unit_files(home: Home, sched: Schedule, stella: Path) -> dict[str, str]:
    """The ``.service`` and ``.timer`` text of ``sched``: the timer fires on the calendar (an import trigger: every
    15 minutes), and the service runs `stella schedule run-due --only NAME` for the schedule's tenant."""
    base = unit_name(sched.tenant, sched.name)
    command = " ".join(
        _quote(a)
        for a in (
            str(stella),
            "--home",
            str(home.root.resolve()),
            "schedule",
            "run-due",
            "--tenant",
            sched.tenant,
            "--only",
            sched.name,
        )
    )
    service = (
        "[Unit]\n"
        f"Description={_text(f'stella schedule {sched.name} of tenant {sched.tenant}: {sched.what_text()}')}\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"ExecStart={command}\n"
        "Nice=10\n"
        "IOSchedulingClass=idle\n"
    )
    on_calendar = sched.calendar.on_calendar() if sched.calendar is not None else IMPORT_POLL
    timer = (
        "[Unit]\n"
        f"Description={_text(f'stella schedule {sched.name} of tenant {sched.tenant}: {sched.when_text()}')}\n"
        "\n"
        "[Timer]\n"
        f"OnCalendar={on_calendar}\n"
        "Persistent=true\n"
        "AccuracySec=1m\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return {f"{base}.service": service, f"{base}.timer": timer}


@dataclass(frozen=True)
class Installed:
    """What `schedule install` wrote and removed."""

    unit_dir: Path
    written: list[Path]
    removed: list[Path]

    def to_dict(self) -> dict[str, Any]:
        return {
            "unitDir": str(self.unit_dir),
            "written": [str(p) for p in self.written],
            "removed": [str(p) for p in self.removed],
        }


def install_units(home: Home, tenant: str, unit_dir: Path, *, stella: Path | None = None) -> Installed:
    """`stella schedule install`: write the units of every schedule of ``tenant`` into ``unit_dir`` (each file
    atomically), and remove this tenant's units of schedules that no longer exist."""
    tenant = validate_tenant(tenant)
    exe = (stella or find_stella()).expanduser().resolve()
    if not exe.is_file():
        raise UsageError("the stella to write into the units is not a file", hint=str(exe))
    if not unit_dir.is_dir():
        raise UsageError("the unit directory does not exist", hint=str(unit_dir))
    with Store.open(home, read_only=True) as store:
        cur = store.cursor()
        try:
            schedules = _all(cur, tenant)
        finally:
            cur.close()
    units: dict[str, str] = {}
    for sched in schedules:
        units |= unit_files(home, sched, exe)
    written = []
    for name, text in sorted(units.items()):
        path = unit_dir / name
        write_bytes(path, text.encode("utf-8"), mode=0o644, what="cannot write the unit")
        written.append(path)
    removed = []
    prefix = unit_name(tenant, "")
    for path in sorted(unit_dir.glob(f"{prefix}*")):
        ours = path.suffix in (".timer", ".service") and "_" not in path.stem[len(prefix) :]
        if ours and path.name not in units and path.is_file():
            with contextlib.suppress(FileNotFoundError), failing_as_environment(path, "cannot remove the unit"):
                path.unlink()
            removed.append(path)
    return Installed(unit_dir, written, removed)
