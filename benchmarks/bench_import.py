"""Import benchmark: a realistic OSV all.zip of N advisories into a fresh store, against the same-run floor.

Targets (issue 20), on this 2-core machine, with the corpus of ``benchmarks/osv_corpus.py``:

- 200,000 advisories imported at >= 10,000 advisories/s, within 2x of the same-run floor;
- the 20k -> 200k import time within 11x (linear);
- peak RSS flat, and at most 300 MB, at both sizes.

The floor is what any importer of these documents pays, measured in this run on the same members: read every member
out of the zip, parse it with orjson and validate it with jsonschema-rs against the OSV schema stella uses, in one
process. stella runs as a child (`stella import --quiet`) with a fresh home; its peak RSS is sampled from /proc for
the import process and its worker processes: the largest single process (what ``ru_maxrss`` reports) and the sum
over all of them at any one time. A re-import of the same zip (every document a duplicate) is timed too.

    python benchmarks/bench_import.py             # 20,000 and 200,000 advisories
    python benchmarks/bench_import.py --quick     # 20,000 only (a developer's loop)
    python benchmarks/bench_import.py --count 2000000   # one size: memory flatness at 10x (not in CI)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import jsonschema_rs
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from osv_corpus import write_all_zip  # noqa: E402

from adapters.sources._common import load_schema  # noqa: E402

TARGET_RATE = 10_000
TARGET_FLOOR_RATIO = 2.0
TARGET_GROWTH = 11.0
TARGET_RSS_MB = 300.0
#: "Flat": the larger size's peak within this factor of the smaller one's.
FLAT = 1.15


@dataclass
class Run:
    count: int
    seconds: float
    peak_process_mb: float
    peak_total_mb: float
    reimport_seconds: float
    floor_seconds: float
    load: tuple[float, float]
    cpu_seconds: float
    floor_cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor_seconds


def floor(corpus: Path) -> tuple[float, float]:
    """Read every member, orjson-parse it and validate it against stella's OSV schema, in this process: wall
    seconds and CPU seconds."""
    validator = jsonschema_rs.validator_for(
        load_schema("osv/osv-schema.json"), validate_formats=True, ignore_unknown_formats=True
    )
    start, cpu = time.perf_counter(), time.process_time()
    with zipfile.ZipFile(corpus) as zf:
        for info in zf.infolist():
            if not validator.is_valid(orjson.loads(zf.read(info))):
                raise SystemExit(f"{info.filename} fails the OSV schema: the corpus is not what stella imports")
    return time.perf_counter() - start, time.process_time() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(p) for p in task.read_text().split()]
    return pids


def _kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Samples a process tree every 20 ms: the peak of any one process (VmHWM) and of the sum of VmRSS."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_process = 0
        self.peak_total = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            pids = _tree(self.pid)
            self.peak_process = max([self.peak_process, *(_kb(p, "VmHWM") for p in pids)])
            self.peak_total = max(self.peak_total, sum(_kb(p, "VmRSS") for p in pids))
            time.sleep(0.02)


def stella_import(stella: str, corpus: Path, home: Path) -> tuple[float, float, float, str, float]:
    """Wall seconds, peak RSS of one process and of the tree (MB), the summary line, and the CPU seconds of the
    import and its workers (user + system; on a loaded machine steadier than the wall time)."""
    env = dict(os.environ, STELLA_HOME=str(home))
    cpu = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [stella, "import", "--quiet", str(corpus)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sampler = RssSampler(proc.pid)
    sampler.start()
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    sampler.done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"import failed ({proc.returncode}): {err[-2000:]}")
    line = out.strip().splitlines()[-1]
    return elapsed, sampler.peak_process / 1024, sampler.peak_total / 1024, line, _children_cpu() - cpu


def measure(count: int, workdir: Path, stella: str) -> Run:
    corpus = workdir / f"osv-all-{count}.zip"
    if not corpus.exists():
        started = time.perf_counter()
        write_all_zip(corpus, count)
        print(f"generated {corpus} ({corpus.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f}s")
    home = Path(tempfile.mkdtemp(prefix="stella-bench-import-"))
    load_before = os.getloadavg()[0]
    try:
        # The floor right before and after the import, so both see the same machine; the better of the two counts.
        first = floor(corpus)
        seconds, peak_process, peak_total, line, cpu = stella_import(stella, corpus, home)
        second = floor(corpus)
        print(f"  {line}")
        again, _, _, line, _ = stella_import(stella, corpus, home)
        print(f"  {line}")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    best = min(first, second)
    load = (load_before, os.getloadavg()[0])
    return Run(count, seconds, peak_process, peak_total, again, best[0], load, cpu, min(first[1], second[1]))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000], help="advisory counts to import")
    ap.add_argument("--quick", action="store_true", help="20,000 advisories only")
    ap.add_argument("--count", type=int, help="one size only (e.g. 2000000 for the memory-flatness claim)")
    ap.add_argument("--workdir", type=Path, default=ROOT / ".bench", help="where the corpora are (generated once)")
    args = ap.parse_args()
    sizes = [args.count] if args.count else [20_000] if args.quick else sorted(args.sizes)
    stella = shutil.which("stella") or str(Path(sys.executable).parent / "stella")
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the start")
    runs: list[Run] = []
    for count in sizes:
        print(f"{count:,} advisories:")
        run = measure(count, args.workdir, stella)
        runs.append(run)
        print(f"  import:             {run.seconds:7.1f} s  {run.rate:9,.0f} advisories/s")
        print(f"  floor:              {run.floor_seconds:7.1f} s  (read + orjson + jsonschema-rs of the same members)")
        print(f"  ratio to floor:     {run.ratio:7.2f}x")
        print(
            f"  CPU:                {run.cpu_seconds:7.1f} s  import and workers, user + system; floor "
            f"{run.floor_cpu_seconds:.1f} s ({run.cpu_seconds / run.floor_cpu_seconds:.2f}x)"
        )
        print(f"  peak RSS:           {run.peak_process_mb:7.0f} MB largest process, {run.peak_total_mb:.0f} MB all")
        print(f"  re-import (dups):   {run.reimport_seconds:7.1f} s  {run.count / run.reimport_seconds:9,.0f} docs/s")
        print(f"  load average:       {run.load[0]:.1f} before, {run.load[1]:.1f} after")
    print("targets:")
    largest = runs[-1]
    print(f"  {verdict(largest.rate >= TARGET_RATE)}  {largest.count:,}: {largest.rate:,.0f}/s >= {TARGET_RATE:,}/s")
    print(
        f"  {verdict(largest.ratio <= TARGET_FLOOR_RATIO)}  {largest.count:,}: {largest.ratio:.2f}x the floor "
        f"<= {TARGET_FLOOR_RATIO}x"
    )
    for run in runs:
        print(
            f"  {verdict(run.peak_process_mb <= TARGET_RSS_MB)}  {run.count:,}: peak RSS {run.peak_process_mb:.0f} MB "
            f"<= {TARGET_RSS_MB:.0f} MB (largest process; {run.peak_total_mb:.0f} MB summed over the workers)"
        )
    if len(runs) > 1:
        small, large = runs[0], runs[-1]
        growth = large.seconds / small.seconds
        size_growth = large.count / small.count
        print(
            f"  {verdict(growth <= TARGET_GROWTH * size_growth / 10)}  {small.count:,} -> {large.count:,}: time "
            f"x{growth:.1f} for x{size_growth:.0f} the advisories (<= {TARGET_GROWTH * size_growth / 10:.0f})"
        )
        flat = large.peak_process_mb <= small.peak_process_mb * FLAT
        print(
            f"  {verdict(flat)}  peak RSS flat: {small.peak_process_mb:.0f} -> {large.peak_process_mb:.0f} MB "
            f"(within {FLAT:.2f}x)"
        )


if __name__ == "__main__":
    main()
