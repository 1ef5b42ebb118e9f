"""Prometheus metrics of export runs and verifications, written to a node_exporter textfile-collector file.

The metrics are defined once, in :data:`METRICS`; the Grafana dashboard and the Prometheus rules under
``packaging/observability/`` are generated from the same definitions (docs/operations.md).

Every value is rebuilt from the store each time the file is written: counters and histograms from the run history
(``export_runs``), verification outcomes from ``metric_events``. The previous textfile is never read, so whoever can
edit that file (it sits in a directory node_exporter reads) cannot make the next run publish the numbers they chose,
and a lost or deleted file is whole again after the next run. ``prometheus_client`` is imported only when a file is
rendered, so commands that write no metrics do not load it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import orjson

from core.atomic import write_bytes
from core.clock import utcnow
from core.errors import StellaError
from core.home import Home

# The settings (re-exported: callers name them here; `stella verify` imports their module alone).
from services.metrics_settings import check_textfile as check_textfile
from services.metrics_settings import config_path as config_path
from services.metrics_settings import configured_textfile as configured_textfile
from services.metrics_settings import textfile_for as textfile_for

if TYPE_CHECKING:
    from core.store import Store

#: The SLO threshold: a bundle is available within this many seconds (an exact bucket boundary, `le="90.0"`).
SLO_SECONDS = 90.0
#: Run duration buckets (seconds); 90 must stay one of them, or the SLO ratio is interpolated.
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, SLO_SECONDS, 120.0, 300.0, 600.0, 1800.0)
#: Bundle size buckets (bytes): 64 KiB to 16 GiB, by powers of four.
SIZE_BUCKETS = tuple(float(1 << n) for n in range(16, 35, 2))
#: Planner latency buckets (seconds): planning pins the inputs in one transaction.
PLAN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Distribution push buckets (seconds): a local copy to a registry push of gigabytes.
PUSH_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0)
#: The outcomes of a finished run, the ``outcome`` label.
OUTCOMES = ("succeeded", "failed", "aborted")


def verify_results() -> tuple[str, ...]:
    """The ``result`` labels of exporter_verify_total: verified, or the failure class of what failed.

    (A function, and :mod:`core.failure` and :mod:`core.canonical` imported where used, so that loading this module
    loads neither: ``stella verify`` loads it only to record an outcome.)"""
    from core.failure import FailureClass

    return ("verified", *(str(c) for c in FailureClass))


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class Metric:
    """One metric as Prometheus sees it: ``name`` is the exposed name (a counter's ends in ``_total``)."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()

    @property
    def series_names(self) -> tuple[str, ...]:
        """The sample names Prometheus stores for this metric."""
        if self.kind is Kind.HISTOGRAM:
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


RUNS = Metric(
    "exporter_runs_total", Kind.COUNTER, "Finished export runs by profile and outcome.", ("profile", "outcome")
)
RUN_DURATION = Metric(
    "exporter_run_duration_seconds",
    Kind.HISTOGRAM,
    "Time from a run's start to its end (the bundle is available when it succeeded).",
    ("profile", "outcome"),
    DURATION_BUCKETS,
)
RUN_BYTES = Metric(
    "exporter_run_bytes_total", Kind.COUNTER, "Bytes of bundles written by succeeded runs.", ("profile",)
)
RUN_FAILURES = Metric(
    "exporter_run_failures_total",
    Kind.COUNTER,
    "Failed export runs by profile, error code and failure class.",
    ("profile", "error_code", "failure_class"),
)
ACTIVE_RUNS = Metric("exporter_active_runs", Kind.GAUGE, "Export runs running when the file was written.", ("tenant",))
BUNDLE_SIZE = Metric(
    "exporter_bundle_size_bytes",
    Kind.HISTOGRAM,
    "Size of the bundles succeeded runs wrote.",
    ("profile",),
    SIZE_BUCKETS,
)
PLAN_SECONDS = Metric(
    "exporter_plan_seconds",
    Kind.HISTOGRAM,
    "Time the planner took to pin a run's inputs (from the planned event).",
    ("profile",),
    PLAN_BUCKETS,
)
DISTRIBUTION_PUSH = Metric(
    "exporter_distribution_push_seconds",
    Kind.HISTOGRAM,
    "Time a distribution took to hand a bundle over, by type (file, oci, s3).",
    ("type",),
    PUSH_BUCKETS,
)
VERIFY = Metric(
    "exporter_verify_total",
    Kind.COUNTER,
    "`stella verify` outcomes: verified, or the failure class of the check that failed.",
    ("result",),
)
LAST_WRITE = Metric(
    "exporter_metrics_written_timestamp_seconds", Kind.GAUGE, "When stella last wrote this file (Unix time).", ()
)

#: Every metric stella exposes: the dashboard, the rules and their tests use these names.
METRICS = (
    RUNS,
    RUN_DURATION,
    RUN_BYTES,
    RUN_FAILURES,
    ACTIVE_RUNS,
    BUNDLE_SIZE,
    PLAN_SECONDS,
    DISTRIBUTION_PUSH,
    VERIFY,
    LAST_WRITE,
)


def series_names() -> frozenset[str]:
    """Every sample name the metrics expose."""
    return frozenset(name for metric in METRICS for name in metric.series_names)


# -- settings --------------------------------------------------------------------------------------


def configure_textfile(home: Home, textfile: Path | None) -> Path | None:
    """Name the textfile every run writes (None: none); the file must end in ``.prom`` (node_exporter reads those)."""
    from core.canonical import canonical_json

    target = None if textfile is None else check_textfile(textfile)
    home.ensure()
    body = {"textfile": None if target is None else str(target)}
    write_bytes(config_path(home), canonical_json(body) + b"\n", mode=0o600, what="cannot write the metrics settings")
    return target


# -- collecting ------------------------------------------------------------------------------------


@dataclass
class _Histogram:
    buckets: tuple[float, ...]
    counts: list[int]
    total: float = 0.0

    @classmethod
    def empty(cls, buckets: tuple[float, ...]) -> _Histogram:
        return cls(buckets, [0] * (len(buckets) + 1))

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                break
        else:
            self.counts[-1] += 1
        self.total += value

    def cumulative(self) -> list[tuple[float, int]]:
        out, running = [], 0
        for bound, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


@dataclass
class Snapshot:
    """The values of every metric, read from the store."""

    runs: dict[tuple[str, str], int]
    durations: dict[tuple[str, str], _Histogram]
    run_bytes: dict[str, int]
    failures: dict[tuple[str, str, str], int]
    active: dict[str, int]
    sizes: dict[str, _Histogram]
    verify: dict[str, int]
    written_at: float
    plans: dict[str, _Histogram]
    pushes: dict[str, _Histogram]


def read_snapshot(store: Store) -> Snapshot:
    """Every metric's value from the store's run history and recorded verifications."""
    cur = store.cursor()
    try:
        runs: dict[tuple[str, str], int] = defaultdict(int)
        durations: dict[tuple[str, str], _Histogram] = {}
        run_bytes: dict[str, int] = defaultdict(int)
        failures: dict[tuple[str, str, str], int] = defaultdict(int)
        sizes: dict[str, _Histogram] = {}
        cur.execute(
            "SELECT profile_id, state, epoch(finished_at) - epoch(started_at), artifact_size, error_code,"
            " failure_class FROM export_runs WHERE state IN ('succeeded', 'failed', 'aborted')"
        )
        while rows := cur.fetchmany(1000):
            for profile, state, seconds, size, code, fclass in rows:
                runs[(profile, state)] += 1
                run_bytes.setdefault(profile, 0)
                if seconds is not None:
                    hist = durations.setdefault((profile, state), _Histogram.empty(DURATION_BUCKETS))
                    hist.observe(max(float(seconds), 0.0))
                if state == "succeeded" and size is not None:
                    run_bytes[profile] += int(size)
                    sizes.setdefault(profile, _Histogram.empty(SIZE_BUCKETS)).observe(float(size))
                if state == "failed":
                    failures[(profile, code or "unknown", fclass or "unclassified")] += 1
        active = {
            str(tenant): int(n)
            for tenant, n in cur.execute(
                "SELECT tenant, count(*) FILTER (WHERE state = 'running') FROM export_runs GROUP BY tenant"
            ).fetchall()
        }
        plans, pushes = _event_timings(cur)
        verify = dict.fromkeys(verify_results(), 0)
        for result, n in cur.execute(
            "SELECT result, count(*) FROM metric_events WHERE metric = 'verify' GROUP BY result"
        ).fetchall():
            verify[str(result)] = int(n)
    finally:
        cur.close()
    return Snapshot(
        dict(runs),
        durations,
        dict(run_bytes),
        dict(failures),
        active,
        sizes,
        verify,
        utcnow().timestamp(),
        plans,
        pushes,
    )


def _event_timings(cur: Any) -> tuple[dict[str, _Histogram], dict[str, _Histogram]]:
    """Planner latency by profile and push time by distribution type, from the runs' ``planned`` and
    ``distributed`` events (``plan_seconds``, ``push_seconds`` in their detail)."""
    plans: dict[str, _Histogram] = {}
    pushes: dict[str, _Histogram] = {}
    cur.execute(
        "SELECT r.profile_id, e.event_type, e.detail FROM export_events e JOIN export_runs r"
        " ON r.tenant = e.tenant AND r.run_id = e.run_id"
        " WHERE (e.event_type = 'planned' AND e.detail LIKE '%\"plan_seconds\"%')"
        " OR (e.event_type = 'distributed' AND e.detail LIKE '%\"push_seconds\"%')"
    )
    while rows := cur.fetchmany(1000):
        for profile, event_type, detail in rows:
            try:
                values = orjson.loads(detail)
            except orjson.JSONDecodeError:
                continue
            if event_type == "planned":
                seconds, key, into, buckets = values.get("plan_seconds"), str(profile), plans, PLAN_BUCKETS
            else:
                seconds, key, into, buckets = values.get("push_seconds"), values.get("type"), pushes, PUSH_BUCKETS
            if isinstance(seconds, int | float) and seconds >= 0 and isinstance(key, str):
                into.setdefault(key, _Histogram.empty(buckets)).observe(float(seconds))
    return plans, pushes


def record_verify(store: Store, error: StellaError | None, tenant: str = "") -> str:
    """Record one `stella verify` outcome (``verified``, or the failure class of ``error``) of a bundle of
    ``tenant`` ('' when unknown); returns the result."""
    from core.failure import classify

    result = "verified" if error is None else str(classify(error))
    with store.transaction() as cur:
        cur.execute(
            "INSERT INTO metric_events (tenant, recorded_at, metric, result) VALUES (?, ?, 'verify', ?)",
            [tenant, utcnow(), result],
        )
    return result


# -- rendering -------------------------------------------------------------------------------------


def render(snapshot: Snapshot) -> bytes:
    """The Prometheus text exposition of ``snapshot`` (what node_exporter's textfile collector reads)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.registry import Collector

    class _Collector(Collector):
        def collect(self) -> Iterator[Any]:
            return iter(_families(snapshot))

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return generate_latest(registry)


def _families(snap: Snapshot) -> list[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
    from prometheus_client.utils import floatToGoString

    go = cast(Callable[[float], str], floatToGoString)  # Prometheus's float spelling: 90 -> "90.0"

    def counter(metric: Metric, values: dict[Any, int]) -> Any:
        family = CounterMetricFamily(metric.name.removesuffix("_total"), metric.help, labels=metric.labels)
        for key, value in sorted(values.items()):
            family.add_metric(_labels(key), value)
        return family

    def histogram(metric: Metric, values: dict[Any, _Histogram]) -> Any:
        family = HistogramMetricFamily(metric.name, metric.help, labels=metric.labels)
        for key, hist in sorted(values.items()):
            buckets = [(go(bound), float(n)) for bound, n in hist.cumulative()]
            family.add_metric(_labels(key), buckets, hist.total)
        return family

    runs = {(p, o): snap.runs.get((p, o), 0) for p in {p for p, _ in snap.runs} for o in OUTCOMES}
    active = GaugeMetricFamily(ACTIVE_RUNS.name, ACTIVE_RUNS.help, labels=ACTIVE_RUNS.labels)
    for tenant, n in sorted(snap.active.items()):
        active.add_metric([tenant], n)
    written = GaugeMetricFamily(LAST_WRITE.name, LAST_WRITE.help)
    written.add_metric([], snap.written_at)
    return [
        counter(RUNS, runs),
        histogram(RUN_DURATION, snap.durations),
        counter(RUN_BYTES, snap.run_bytes),
        counter(RUN_FAILURES, snap.failures),
        active,
        histogram(BUNDLE_SIZE, snap.sizes),
        histogram(PLAN_SECONDS, snap.plans),
        histogram(DISTRIBUTION_PUSH, snap.pushes),
        counter(VERIFY, snap.verify),
        written,
    ]


def _labels(key: Any) -> list[str]:
    return [str(k) for k in key] if isinstance(key, tuple) else [str(key)]


# -- writing ---------------------------------------------------------------------------------------


def write_textfile(store: Store, path: Path) -> Path:
    """Rebuild the textfile at ``path`` from ``store``, atomically (node_exporter never reads half a file)."""
    data = render(read_snapshot(store))
    write_bytes(path, data, mode=0o644, what="cannot write the metrics textfile")
    return path


def exposition(home: Home) -> bytes:
    """The metrics now, as text (`stella export metrics` with no file)."""
    from core.store import Store

    with Store.open(home, read_only=True) as store:
        return render(read_snapshot(store))


def update_textfile(home: Home, path: Path) -> Path:
    """Rebuild ``path`` from the home's store (after a run: the run's row is already there)."""
    from core.store import Store

    with Store.open(home, read_only=True) as store:
        return write_textfile(store, path)


def record_verify_and_update(home: Home, path: Path, error: StellaError | None, tenant: str = "") -> str:
    """Record a `stella verify` outcome in the home's store and rebuild the textfile ``path``."""
    from core.store import Store

    with Store.open(home) as store:
        result = record_verify(store, error, tenant)
        write_textfile(store, path)
    return result
