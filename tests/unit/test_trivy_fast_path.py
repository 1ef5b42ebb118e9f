"""The fast trivy:db path gives the bytes of the simple one, on real records.

* ``core.bbolt`` streams a bucket's pages as its entries arrive: same bytes as the recursive writer it replaced
  (``tests/unit/bbolt_reference.py``), on random trees and on real Trivy DBs.
* ``adapters.profiles._trivy_rows`` reads the run as three flat tables (Arrow files, cut into parts): the same
  records, field for field, as ``_records.ADVISORIES`` (the nested-list query the profile used before).
* ``adapters.profiles._trivy_build`` maps in two processes, spills sorted runs and merges them: the same trivy.db,
  byte for byte, as ``TrivyDbModel`` (everything in memory) written by the reference writer; the worker is gone
  after a cancel.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.profiles._records import ADVISORIES, stream
from adapters.profiles._trivy_build import TrivyDbBuilder
from adapters.profiles._trivy_mapping import TrivyDbModel
from adapters.profiles._trivy_rows import last_ordinal, part_records, write_part
from benchmarks.osv_corpus import write_all_zip
from core.bbolt import Bucket, write_bbolt
from core.errors import Cancelled
from core.home import resolve_home
from core.store import Store
from tests.conftest import FIXTURES
from tests.integration.bundle_helpers import extract
from tests.unit.bbolt_reference import write_bbolt_reference

#: Real advisories of every kind the store keeps: OSV (every ecosystem of the differential test), GHSA, CVE 5,
#: CSAF, and the Trivy fixtures' OS advisories.
REAL = [
    FIXTURES / "trivy" / "advisories",
    FIXTURES / "trivy" / "own",
    FIXTURES / "trivy-differential" / "osv",
    FIXTURES / "osv",
    FIXTURES / "ghsa",
    FIXTURES / "cve5",
    FIXTURES / "csaf",
]
_FIELDS = ("advisoryId", "documentSha256", "modified", "published", "withdrawn", "summary", "aliases", "cwes")


def _projected(record: dict[str, Any]) -> dict[str, Any]:
    """The fields of an ``ADVISORIES`` record that the Trivy mapping reads."""
    out = {k: record[k] for k in _FIELDS if k in record}
    if record.get("severities"):
        out["severities"] = [{k: v for k, v in s.items() if k != "source"} for s in record["severities"]]
    if record.get("affected"):
        out["affected"] = [{k: v for k, v in a.items() if k != "productId"} for a in record["affected"]]
    return out


def _export(stella: Any, tmp_path: Path, *inputs: Path) -> tuple[str, str, Path]:
    """Import ``inputs``, build a trivy:db bundle; (run id, tenant, the bundle's trivy.db)."""
    res = stella("import", "--quiet", *inputs)
    assert res.code in (0, 3), res.err  # 3: a fixture directory may hold a record the importer refuses
    assert stella("keys", "generate", "k").code == 0
    res = stella("export", "run", "--profile", "trivy:db", "--key", "k", "--out", tmp_path / "db.tar.zst", "--json")
    assert res.code == 0, res.err
    run = json.loads(res.out)
    tree = extract(tmp_path / "db.tar.zst", tmp_path / "bundle")
    return run["runId"], run["tenant"], tree / "cache" / "db" / "trivy.db"


def _reference_db(cursor: Any, run_id: str, tenant: str, path: Path) -> bytes:
    model = TrivyDbModel()
    for record in stream(cursor, ADVISORIES, [run_id, tenant]):
        model.add(record)
    write_bbolt_reference(path, model.take_root())
    return path.read_bytes()


def _parts(cursor: Any, run_id: str, tenant: str, directory: Path, count: int) -> list[Any]:
    end = last_ordinal(cursor, run_id, tenant) + 1
    step = max(1, -(-end // count))
    return [
        write_part(cursor, run_id, tenant, lo, min(lo + step, end), directory / f"p{count}-{lo}")
        for lo in range(0, end, step)
    ]


def _built(
    cursor: Any, run_id: str, tenant: str, scratch: Path, *, worker: bool, run_entries: int
) -> tuple[bytes, TrivyDbBuilder]:
    scratch.mkdir()
    with TrivyDbBuilder(scratch, run_entries=run_entries, worker=worker) as builder:
        parts = _parts(cursor, run_id, tenant, scratch, 2)
        for index in reversed(range(len(parts))):  # the worker's part first, as trivy_db does
            builder.map_part(parts[index], index)
        builder.write(scratch / "trivy.db")
        assert builder.worker_pid is None  # joined once its part was taken
    return (scratch / "trivy.db").read_bytes(), builder


def test_records_equal_the_nested_query_on_real_advisories(stella: Any, tmp_path: Path) -> None:
    run_id, tenant, _db = _export(stella, tmp_path, *REAL)
    with Store.open(resolve_home(None), read_only=True) as store:
        expected = [_projected(r) for r in stream(store.cursor(), ADVISORIES, [run_id, tenant])]
        assert len(expected) > 40
        for count in (1, 2, 3):
            parts = _parts(store.cursor(), run_id, tenant, tmp_path, count)
            assert len(parts) == count
            assert [_projected(r) for p in parts for r in part_records(p)] == expected


def test_real_advisories_give_the_reference_bytes(stella: Any, tmp_path: Path) -> None:
    run_id, tenant, shipped = _export(stella, tmp_path, *REAL)
    with Store.open(resolve_home(None), read_only=True) as store:
        reference = _reference_db(store.cursor(), run_id, tenant, tmp_path / "reference.db")
        assert shipped.read_bytes() == reference  # the profile, end to end
        for worker in (False, True):
            built, builder = _built(
                store.cursor(), run_id, tenant, tmp_path / f"w{worker}", worker=worker, run_entries=3
            )
            assert built == reference
            assert builder.counts.advisories > 40


def test_a_generated_feed_gives_the_reference_bytes_through_spilled_runs(stella: Any, tmp_path: Path) -> None:
    """3,000 generated OSV records (the benchmark's corpus): many runs per side, merged across both processes."""
    corpus = tmp_path / "all.zip"
    write_all_zip(corpus, 3000)
    run_id, tenant, shipped = _export(stella, tmp_path, corpus)
    with Store.open(resolve_home(None), read_only=True) as store:
        reference = _reference_db(store.cursor(), run_id, tenant, tmp_path / "reference.db")
        assert shipped.read_bytes() == reference
        built, builder = _built(store.cursor(), run_id, tenant, tmp_path / "spilled", worker=True, run_entries=700)
        assert built == reference
        assert (builder.counts.advisories, builder.vulnerabilities) == (3000, 3000)


def test_a_worker_done_before_this_side_is_not_lost(stella: Any, tmp_path: Path) -> None:
    """The worker's result may arrive while this process still maps its own part (read between two reports)."""
    corpus = tmp_path / "all.zip"
    write_all_zip(corpus, 2000)
    run_id, tenant, shipped = _export(stella, tmp_path, corpus)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with Store.open(resolve_home(None), read_only=True) as store, TrivyDbBuilder(scratch) as builder:
        cursor = store.cursor()
        end = last_ordinal(cursor, run_id, tenant) + 1
        builder.map_part(write_part(cursor, run_id, tenant, end - 10, end, scratch / "small"), 1)
        deadline = time.monotonic() + 60
        while not (scratch / "w1-vulnerabilities-0.run").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # the worker spills its runs just before it sends its result
        time.sleep(0.5)
        builder.map_part(write_part(cursor, run_id, tenant, 0, end - 10, scratch / "large"), 0)
        builder.write(scratch / "trivy.db")
    assert (scratch / "trivy.db").read_bytes() == shipped.read_bytes()
    assert builder.counts.advisories == 2000


def test_a_cancel_stops_the_worker_and_raises(stella: Any, tmp_path: Path) -> None:
    corpus = tmp_path / "all.zip"
    write_all_zip(corpus, 1500)
    run_id, tenant, _db = _export(stella, tmp_path, corpus)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with Store.open(resolve_home(None), read_only=True) as store:
        parts = _parts(store.cursor(), run_id, tenant, scratch, 2)
        builder = TrivyDbBuilder(scratch, is_cancelled=lambda: True)
        with pytest.raises(Cancelled), builder:
            builder.map_part(parts[1], 1)
            pid = builder.worker_pid
            assert pid is not None
            builder.map_part(parts[0], 0)  # the first progress report sees the cancel
    assert builder.worker_pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# Large values are a repeated byte so that generating them costs little entropy.
_big = st.builds(lambda n, b: bytes([b]) * n, st.integers(900, 9000), st.integers(0, 255))
_values = st.binary(max_size=60) | _big
_keys = st.binary(min_size=1, max_size=24) | st.builds(lambda n: b"k" * n, st.integers(200, 1500))
_buckets = st.recursive(
    st.dictionaries(_keys, _values, max_size=60),
    lambda inner: st.dictionaries(_keys, inner | _values, max_size=8),
    max_leaves=60,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(_keys, _buckets, max_size=5), st.sampled_from([1024, 4096]))
def test_streaming_writer_gives_the_reference_bytes(tmp_path: Path, tree: Bucket, page_size: int) -> None:
    write_bbolt(tmp_path / "new.db", tree, page_size=page_size)
    write_bbolt_reference(tmp_path / "old.db", tree, page_size=page_size)
    assert (tmp_path / "new.db").read_bytes() == (tmp_path / "old.db").read_bytes()


def test_streaming_writer_spools_big_buckets_and_keeps_the_bytes(tmp_path: Path, monkeypatch: Any) -> None:
    """A bucket whose leaf pages outgrow the in-memory spool goes through a scratch file: same bytes."""
    import core.bbolt

    monkeypatch.setattr(core.bbolt, "SPOOL_MEMORY", 10_000)
    tree: Bucket = {
        b"npm::x": {b"pkg%05d" % i: {b"CVE-%d" % i: b"v" * (i % 300), b"GHSA-%d" % i: b"w"} for i in range(3000)},
        b"vulnerability": {b"CVE-%06d" % i: b'{"Title":"%d"}' % i for i in range(20_000)},
    }
    write_bbolt(tmp_path / "new.db", tree)
    write_bbolt_reference(tmp_path / "old.db", tree)
    assert (tmp_path / "new.db").read_bytes() == (tmp_path / "old.db").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.db", "old.db"]  # no scratch file left behind
