"""A parallel import (worker processes parse, one writer) stores and reports exactly what a single-process one does.

The pool is forced on small inputs here (``workers=2``): the real fixtures of every format, valid and invalid, with
duplicates inside a batch, across batches still in flight and of documents already stored, a document over the blob
threshold (parsed by the writer, its bytes in the blob directory) and EPSS files (whose score rows stream from the
writer). Then the lifecycle: a cancel leaves no worker and nothing partial, and a killed importer takes its workers
with it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.sources.registry import SOURCES
from core.errors import Cancelled
from core.home import Home
from core.ingest import FileResult, Importer, ImportSummary
from core.progress import NullObserver
from core.store import BLOB_THRESHOLD, Store
from core.store.tables import TABLES
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures"
OSV_SAMPLE = ROOT / "samples" / "advisories" / "GHSA-mp6f-p9gp-vpj9.json"


def _result(r: FileResult) -> tuple[Any, ...]:
    error = None if r.error is None else (type(r.error).__name__, r.error.message, r.error.pointer, r.error.path)
    return (r.path, str(r.outcome), r.sha256, r.format, r.kind, r.document_id, error, tuple(r.warnings))


def _rows(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    with Store.open(Home(home), read_only=True) as store:
        out = {}
        for table, cols in TABLES.items():
            keep = ", ".join(f'"{c}"' for c, _ in cols if c != "imported_at")
            out[table] = store.conn.execute(f"SELECT {keep} FROM {table} ORDER BY ALL").fetchall()
        return out


def _run(home: Path, paths: list[Path], workers: int, batch_size: int) -> tuple[list[FileResult], ImportSummary]:
    results: list[FileResult] = []
    with Store.open(Home(home)) as store:
        summary = Importer(store, SOURCES, on_result=results.append, batch_size=batch_size, workers=workers).run(paths)
    return results, summary


def _big_osv(tmp: Path) -> Path:
    """A real OSV record made larger than the blob threshold (a long 'details'), so it takes the blob path."""
    doc = orjson.loads(OSV_SAMPLE.read_bytes())
    doc["details"] = (doc.get("details") or "") + "\n" + "x" * (BLOB_THRESHOLD + 1000)
    path = tmp / "big" / "GHSA-big.json"
    path.parent.mkdir()
    path.write_bytes(orjson.dumps(doc))
    return path


@pytest.mark.parametrize("batch_size", [3, 50])
def test_parallel_import_stores_and_reports_what_a_single_process_import_does(tmp_path: Path, batch_size: int) -> None:
    big = _big_osv(tmp_path)
    # The sample advisories twice in a row (duplicates of documents still in flight), every fixture (each format,
    # valid and invalid), the samples twice (duplicates of documents stored) and the big record twice.
    advisories = ROOT / "samples" / "advisories"
    paths = [advisories, advisories, FIXTURES, ROOT / "samples", big.parent, ROOT / "samples", big.parent, big]
    single, single_summary = _run(tmp_path / "single", paths, workers=0, batch_size=batch_size)
    parallel, parallel_summary = _run(tmp_path / "parallel", paths, workers=2, batch_size=batch_size)

    assert [_result(r) for r in parallel] == [_result(r) for r in single]
    assert parallel_summary.to_dict() | {"importId": None} == single_summary.to_dict() | {"importId": None}
    assert parallel_summary.exit_code == single_summary.exit_code
    outcomes = {str(r.outcome) for r in single}
    assert outcomes == {"imported", "duplicate", "rejected", "skipped"}, "the fixtures exercise every outcome"
    assert single_summary.by_format["epss"] and single_summary.by_format["osv"] > 10
    assert _rows(tmp_path / "parallel") == _rows(tmp_path / "single")
    for home in ("single", "parallel"):
        blob = Home(tmp_path / home).blobs_dir
        assert sorted(p.name for p in blob.rglob("*") if p.is_file()) == sorted(
            {r.sha256 for r in single if r.sha256 and r.outcome == "imported" and len(_bytes(r.path)) > BLOB_THRESHOLD}
        )

    # Importing everything again through the pool: every document is a duplicate or rejected as before.
    again, summary = _run(tmp_path / "parallel", paths, workers=2, batch_size=batch_size)
    assert summary.imported == 0
    assert {str(r.outcome) for r in again} <= {"duplicate", "rejected", "skipped"}
    assert _rows(tmp_path / "parallel") == _rows(tmp_path / "single")


def _bytes(label: str) -> bytes:
    return Path(label.split("!", 1)[0]).read_bytes()


def _corpus(tmp: Path, count: int) -> Path:
    """A zip of ``count`` distinct OSV records, made from a real one (new IDs)."""
    doc = orjson.loads(OSV_SAMPLE.read_bytes())
    path = tmp / "corpus.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n in range(count):
            zf.writestr(f"GHSA-test-{n:06d}.json", orjson.dumps({**doc, "id": f"GHSA-test-{n:06d}"}))
    return path


class _CancelAfter(NullObserver):
    def __init__(self, documents: int) -> None:
        self.left = documents

    def advance(self, units: int = 1, *, detail: str | None = None) -> None:
        self.left -= units

    def is_cancelled(self) -> bool:
        return self.left <= 0


def test_cancel_stops_the_workers_and_keeps_only_whole_batches(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, 3000)
    results: list[FileResult] = []
    with Store.open(Home(tmp_path / "home")) as store:
        importer = Importer(store, SOURCES, sink=_CancelAfter(700), on_result=results.append, batch_size=200, workers=2)
        with pytest.raises(Cancelled, match="import cancelled"):
            importer.run([corpus])
        stored = store.conn.execute("SELECT count(*) FROM raw_documents").fetchone()
        rows = store.conn.execute("SELECT count(*) FROM advisories").fetchone()
    assert multiprocessing.active_children() == []
    imported = [r for r in results if r.outcome == "imported"]
    # Whole batches only, each reported: what is stored is what was reported imported, nothing partial.
    assert stored == rows == (len(imported),)
    assert len(imported) % 200 == 0 and 700 <= len(imported) < 3000
    assert [r.path for r in results] == [f"{corpus}!GHSA-test-{n:06d}.json" for n in range(len(results))]


def test_workers_die_with_a_killed_importer(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, 20_000)
    script = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        from adapters.sources.registry import SOURCES
        from core.home import Home
        from core.ingest import Importer
        from core.progress import NullObserver
        from core.store import Store

        class Announce(NullObserver):
            said = False
            def advance(self, units=1, *, detail=None):
                if not self.said:
                    import multiprocessing
                    print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
                    self.said = True

        with Store.open(Home(Path({str(tmp_path / "home")!r}))) as store:
            Importer(store, SOURCES, sink=Announce(), batch_size=500, workers=2).run([Path({str(corpus)!r})])
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    assert proc.stdout is not None
    workers = [int(p) for p in proc.stdout.readline().split()]
    assert len(workers) == 2, "the import reported its first document with both workers running"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers), "a worker outlived its killed importer"
    assert not list((tmp_path / "home").glob("**/.tmp-*")), "no stray temporary file"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) is gone for our purpose.
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
