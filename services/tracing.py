"""OpenTelemetry-shaped spans of an export run, written to a file as OTLP JSON, with no collector and no SDK.

A run's phases open the spans ``export.plan``, ``export.fetch``, ``export.write``, ``export.sign`` and
``export.distribute`` (:func:`core.log_fields.phase`) under one ``export.run`` (or ``export.download``) span. The
file holds one ``ExportTraceServiceRequest`` in OTLP's JSON encoding (``resourceSpans`` / ``scopeSpans`` /
``spans``; ids in lowercase hex, times as decimal strings of Unix nanoseconds, enums as integers), so a collector's
``otlpjsonfile`` receiver or any OTLP/HTTP endpoint takes it as it is. The trace id is the run's correlation id (its
32 hex digits: the UUID without dashes), which its log lines, its events and its timeline events also carry.

Writing the JSON ourselves costs about 80 lines; the OpenTelemetry SDK would add a dependency tree, ~80 ms of
imports, and its protobuf JSON mapping writes ids in base64, which OTLP/JSON forbids.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from core import __version__, log_fields
from core.atomic import write_bytes
from core.errors import BadInputError, StellaError, UsageError
from core.home import Home
from core.log_fields import error_code_of, run_fields
from core.runs import ExportRun

#: OTLP's SpanKind INTERNAL and StatusCode UNSET / OK / ERROR, as OTLP/JSON spells enums: integers.
SPAN_KIND_INTERNAL = 1
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2
#: The instrumentation scope of every span.
SCOPE = "stella.export"
#: Span files kept in ``HOME/traces`` (an incident's runs): writing one more removes the oldest beyond this many.
KEEP_TRACE_FILES = 500

log = logging.getLogger("stella.tracing")


@dataclass
class Span:
    name: str
    span_id: str
    parent_id: str
    attributes: dict[str, str]
    start_ns: int
    end_ns: int | None = None
    error_code: str | None = None


@dataclass
class Tracer:
    """Collects the spans of one run (a :class:`core.log_fields.SpanSink`); :meth:`write` writes them as OTLP JSON.

    The trace id is set once the run is planned (:meth:`set_trace`): the run's correlation id is made then.
    """

    trace_id: str = field(default_factory=lambda: secrets.token_hex(16))  # until the run is planned
    spans: list[Span] = field(default_factory=list)
    _open: list[Span] = field(default_factory=list)

    def bind(self, run: ExportRun) -> None:
        """The run is planned: its correlation id is the trace id, and its fields go on the root span."""
        self.trace_id = trace_id_of(run.correlation_id)
        if self.spans:
            self.spans[0].attributes.update({f"stella.{k}": v for k, v in run_fields(run).items() if v is not None})

    def start(self, name: str, attributes: Mapping[str, str | None]) -> object:
        parent = self._open[-1].span_id if self._open else ""
        attrs = {f"stella.{k}": v for k, v in attributes.items() if v is not None}
        span = Span(name, secrets.token_hex(8), parent, attrs, time.time_ns())
        self.spans.append(span)
        self._open.append(span)
        return span

    def end(self, span: object, error_code: str | None) -> None:
        assert isinstance(span, Span)
        span.end_ns = max(time.time_ns(), span.start_ns)
        span.error_code = error_code
        if span in self._open:
            self._open.remove(span)

    def to_otlp(self) -> dict[str, Any]:
        """The ``ExportTraceServiceRequest`` of the spans, in OTLP's JSON encoding."""
        trace = self.trace_id
        return {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [
                            _attribute("service.name", "stella"),
                            _attribute("service.version", __version__),
                        ]
                    },
                    "scopeSpans": [
                        {
                            "scope": {"name": SCOPE, "version": __version__},
                            "spans": [_otlp_span(trace, s) for s in self.spans if s.end_ns is not None],
                        }
                    ],
                }
            ]
        }

    def write(self, path: Path) -> Path:
        write_bytes(path, orjson.dumps(self.to_otlp()) + b"\n", mode=0o600, what="cannot write the trace file")
        return path


def trace_id_of(correlation_id: str) -> str:
    """The OTLP trace id of a run: its correlation id's 32 hex digits."""
    return uuid.UUID(correlation_id).hex


def _attribute(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def _otlp_span(trace_id: str, span: Span) -> dict[str, Any]:
    status: dict[str, Any] = {"code": STATUS_OK}
    attributes = dict(span.attributes)
    if span.error_code is not None:
        status = {"code": STATUS_ERROR, "message": span.error_code}
        attributes["stella.error_code"] = span.error_code
    return {
        "traceId": trace_id,
        "spanId": span.span_id,
        "parentSpanId": span.parent_id,
        "name": span.name,
        "kind": SPAN_KIND_INTERNAL,
        "startTimeUnixNano": str(span.start_ns),
        "endTimeUnixNano": str(span.end_ns),
        "attributes": [_attribute(k, v) for k, v in sorted(attributes.items())],
        "status": status,
    }


# -- settings --------------------------------------------------------------------------------------


def config_path(home: Home) -> Path:
    """``tracing.json`` in the home: ``{"traceFile": PATH or null}``, where every run writes its spans."""
    return home.root / "tracing.json"


def configured_trace_file(home: Home) -> Path | None:
    """The trace file the home's settings name (None: none)."""
    path = config_path(home)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BadInputError(f"cannot read the tracing settings: {exc.strerror}", path=str(path)) from None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadInputError(f"the tracing settings are not JSON: {exc}", path=str(path)) from None
    target = value.get("traceFile") if isinstance(value, dict) else None
    if not isinstance(value, dict) or set(value) - {"traceFile"} or not isinstance(target, str | None):
        raise BadInputError('the tracing settings must be {"traceFile": PATH or null}', path=str(path))
    return None if target is None else Path(target)


def check_trace_file(path: Path) -> Path:
    target = path.expanduser().resolve()
    if not target.parent.is_dir():
        raise UsageError(f"the directory of {path} does not exist", hint="create it, or name another file")
    if target.is_dir():
        raise UsageError(f"{path} is a directory", hint="name a file for the spans")
    return target


def trace_file_for(home: Home, explicit: Path | None) -> Path | None:
    """The file a run writes its spans to: the one given, else the home's setting (None: no spans)."""
    if explicit is not None:
        return check_trace_file(explicit)
    return configured_trace_file(home)


@contextmanager
def traced(home: Home, name: str, *, trace_file: Path | None, incident: bool = False) -> Iterator[Tracer | None]:
    """Around one run's work: its log lines carry its fields once it is bound (:func:`core.log_fields.bind_run`),
    and, when ``trace_file`` is given or an incident is open, its phases are spans under the root span ``name``,
    written to ``trace_file`` (else ``HOME/traces/<trace id>.<root span>.json``) when the block ends, whatever its
    outcome. ``incident`` also logs the run at debug level."""
    tracer = Tracer() if trace_file is not None or incident else None
    with log_fields.bound(), log_fields.tracing(tracer, debug=incident):
        if tracer is None:
            yield None
            return
        root = tracer.start(name, log_fields.current())
        try:
            yield tracer
        except BaseException as exc:
            tracer.end(root, error_code_of(exc))
            raise
        else:
            tracer.end(root, None)
        finally:
            _write_spans(home, tracer, trace_file)


def _write_spans(home: Home, tracer: Tracer, trace_file: Path | None) -> None:
    root = tracer.spans[0].name if tracer.spans else "spans"
    target = trace_file or home.root / "traces" / f"{tracer.trace_id}.{root}.json"
    try:
        if trace_file is None:
            target.parent.mkdir(mode=0o700, exist_ok=True)
        tracer.write(target)
    except OSError as exc:
        log.warning("spans not written: %s: %s", target, exc.strerror)
    except StellaError as exc:  # the run's own outcome stands; the missing spans are logged
        log.warning("spans not written: %s", exc.diagnostics())
    else:
        log.debug("spans written to %s", target)
        if trace_file is None:
            prune_traces(target.parent)


def prune_traces(directory: Path, keep: int = KEEP_TRACE_FILES) -> list[Path]:
    """Remove the oldest span files in ``directory`` beyond the newest ``keep`` (by modification time, then name);
    returns what was removed. Only the files stella names there (``*.json``) are considered."""
    files: list[tuple[float, str, Path]] = []
    for path in directory.glob("*.json"):
        try:
            files.append((path.stat().st_mtime, path.name, path))
        except OSError:  # removed meanwhile by another run's pruning
            continue
    files.sort(reverse=True)
    removed: list[Path] = []
    for _, _, path in files[keep:]:
        try:
            path.unlink()
        except OSError as exc:
            log.warning("old span file not removed: %s: %s", path, exc.strerror)
            continue
        removed.append(path)
    return removed
