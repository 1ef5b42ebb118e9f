"""The fields every log line of a run carries, and the phases a run goes through.

The core never prints: it logs through the standard :mod:`logging` module, under the ``stella`` logger, and marks
where a run is with :func:`phase`. Which run a line belongs to (its id, tenant, profile, correlation id) is held in a
context variable, so a line logged deep inside an adapter carries it without being passed anything. Where the lines
go (a JSON-lines file in the home, a terminal) is decided once by the command line (:mod:`services.logs`); the
spans a phase opens go to whatever :class:`SpanSink` is installed (:mod:`services.tracing`), or nowhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from core.runs import ExportRun

#: The phases of an export run, the ``phase`` field of its log lines.
PHASES = ("plan", "resolve", "adapter", "manifest", "sign", "distribute")
#: The fields every log line carries (None when not known there).
FIELDS = ("run_id", "tenant", "profile_kind", "adapter", "phase", "correlation_id", "error_code")

log = logging.getLogger("stella.run")


class SpanSink(Protocol):
    """Where the spans of phases go (:class:`services.tracing.Tracer`)."""

    def start(self, name: str, attributes: Mapping[str, str | None]) -> object: ...

    def end(self, span: object, error_code: str | None) -> None: ...


_fields: ContextVar[Mapping[str, str | None]] = ContextVar("stella_log_fields", default=MappingProxyType({}))
_sink: ContextVar[SpanSink | None] = ContextVar("stella_span_sink", default=None)
_debug: ContextVar[bool] = ContextVar("stella_log_debug", default=False)
_started: ContextVar[Mapping[str, float]] = ContextVar("stella_phase_started", default=MappingProxyType({}))


def current() -> dict[str, str | None]:
    """The fields of the line logged now: every one of :data:`FIELDS`, None when unknown."""
    values = _fields.get()
    return {name: values.get(name) for name in FIELDS}


def debug_forced() -> bool:
    """Whether this run logs at debug level whatever the configured level (incident mode)."""
    return _debug.get()


@contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    """Add ``fields`` to every line logged inside the block."""
    token = _fields.set({**_fields.get(), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


def run_fields(run: ExportRun) -> dict[str, str | None]:
    """The fields of ``run``'s lines: its id, tenant, profile kind, adapter (``kind:variant``), correlation id."""
    config = run.profile_config
    return {
        "run_id": run.run_id,
        "tenant": run.tenant,
        "profile_kind": config.kind,
        "adapter": config.profile_kind,
        "correlation_id": run.correlation_id,
    }


def bind_run(run: ExportRun) -> None:
    """From now on in this context, lines carry ``run``'s fields (the run was just planned)."""
    _fields.set({**_fields.get(), **run_fields(run)})


@contextmanager
def tracing(sink: SpanSink | None, *, debug: bool = False) -> Iterator[None]:
    """Inside the block, phases open spans in ``sink``; ``debug`` logs at debug level whatever is configured."""
    sink_token = _sink.set(sink)
    debug_token = _debug.set(debug or _debug.get())
    try:
        yield
    finally:
        _debug.reset(debug_token)
        _sink.reset(sink_token)


def error_code_of(exc: BaseException) -> str:
    """The ``error_code`` of a line about ``exc``: its stella code, ``cancelled``, or ``internal``."""
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        return code
    return "cancelled" if isinstance(exc, KeyboardInterrupt) else "internal"


@contextmanager
def phase(name: str, span: str | None = None) -> Iterator[None]:
    """A phase of the run (one of :data:`PHASES`): lines inside carry ``phase=name``; its end is logged with its
    duration (and its error code when it failed); with ``span``, a span of that name covers it."""
    fields_token = _fields.set({**_fields.get(), "phase": name, "error_code": None})
    started_token = _started.set({**_started.get(), name: time.monotonic()})
    sink = _sink.get()
    handle = sink.start(span, current()) if sink is not None and span is not None else None
    start = time.monotonic()
    log.debug("phase %s started", name)
    try:
        yield
    except BaseException as exc:
        code = error_code_of(exc)
        with bound(error_code=code):
            log.error("phase %s failed after %.3f s: %s", name, time.monotonic() - start, code)
        if sink is not None and handle is not None:
            sink.end(handle, code)
        raise
    else:
        log.info("phase %s done in %.3f s", name, time.monotonic() - start)
        if sink is not None and handle is not None:
            sink.end(handle, None)
    finally:
        _started.reset(started_token)
        _fields.reset(fields_token)


def phase_seconds(name: str) -> float | None:
    """Seconds since phase ``name`` started, when it is under way here (a distribution's push time)."""
    started = _started.get().get(name)
    return None if started is None else time.monotonic() - started
