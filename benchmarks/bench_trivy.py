"""Trivy DB benchmark: write trivy.db from an N-advisory store (default 200,000); seconds, file size, peak RSS.

Steps, each in its own child process so its peak RSS is its own:

1. ``stella import`` of a generated OSV ``all.zip`` (benchmarks/osv_corpus.py, as bench_import.py uses);
2. ``stella export run --profile trivy:db``: the whole signed bundle (trivy.db, db.tar.gz, cache and OCI layouts);
3. the trivy.db write alone, over the advisories that run selected: stream + map, then the bbolt writer;
4. ``verify.bbolt_check.check_bbolt`` on the result (what `stella verify` adds for a trivy bundle).

    python benchmarks/bench_trivy.py [--count 200000] [--workdir .bench]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from osv_corpus import write_all_zip

ROOT = Path(__file__).resolve().parent.parent
STELLA = shutil.which("stella") or str(Path(sys.executable).parent / "stella")

#: Step 3 and 4, run as `python -c` in a child: prints one JSON line of figures.
WRITE_DB = """
import json, resource, sys, time
from pathlib import Path
from adapters.profiles._records import ADVISORIES, stream
from adapters.profiles._trivy_mapping import TrivyDbModel
from core.bbolt import write_bbolt
from core.home import Home
from core.store import Store

home, run_id, tenant, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
t0 = time.perf_counter()
with Store.open(Home(home), read_only=True) as store:
    model = TrivyDbModel()
    for record in stream(store.cursor(), ADVISORIES, [run_id, tenant]):
        model.add(record)
t1 = time.perf_counter()
result = write_bbolt(out, model.take_root())
t2 = time.perf_counter()
print(json.dumps({"map": t1 - t0, "write": t2 - t1, "pages": result.pages, "keys": result.keys,
                  "buckets": result.buckets, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
CHECK_DB = """
import json, resource, sys, time
from pathlib import Path
from verify.bbolt_check import check_bbolt
t0 = time.perf_counter()
report = check_bbolt(Path(sys.argv[1]))
print(json.dumps({"check": time.perf_counter() - t0, "pages": report.high_water,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stdout of one child command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    out = proc.stdout.read() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read() if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd[:4])} failed: {err[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=200_000)
    ap.add_argument("--workdir", type=Path, default=Path(".bench"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    corpus = args.workdir / f"osv-all-{args.count}.zip"
    if not corpus.exists():
        write_all_zip(corpus, args.count)
    home = Path(tempfile.mkdtemp(prefix="stella-bench-trivy-"))
    env = dict(os.environ, STELLA_HOME=str(home))
    try:
        t_import, rss_import, _ = child([STELLA, "import", "--quiet", str(corpus)], env)
        child([STELLA, "keys", "generate", "bench"], env)
        bundle = home / "trivy-db.tar.zst"
        t_export, rss_export, out = child(
            [STELLA, "export", "run", "--profile", "trivy:db", "--key", "bench", "--out", str(bundle), "--json"], env
        )
        run = json.loads(out)
        db = home / "trivy.db"
        _, _, out = child([sys.executable, "-c", WRITE_DB, str(home), run["runId"], run["tenant"], str(db)], env)
        write = json.loads(out)
        _, _, out = child([sys.executable, "-c", CHECK_DB, str(db)], env)
        check = json.loads(out)
        t_verify, rss_verify, _ = child([STELLA, "verify", str(bundle), "--key", str(_export_key(home, env))], env)
        size = db.stat().st_size
        bundle_size = bundle.stat().st_size
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"advisories:                 {args.count:,}")
    print(f"import:                     {t_import:.1f} s, peak RSS {rss_import:.0f} MB")
    print(
        f"trivy.db write (map+bbolt): {write['map'] + write['write']:.1f} s "
        f"(stream+map {write['map']:.1f} s, bbolt {write['write']:.1f} s), peak RSS {write['rss']:.0f} MB"
    )
    print(
        f"trivy.db size:              {size / 1e6:.1f} MB, {write['pages']:,} pages, {write['buckets']:,} buckets, "
        f"{write['keys']:,} keys"
    )
    print(
        f"export run trivy:db:        {t_export:.1f} s, peak RSS {rss_export:.0f} MB, bundle {bundle_size / 1e6:.1f} MB"
    )
    print(f"check_bbolt:                {check['check']:.1f} s, peak RSS {check['rss']:.0f} MB")
    print(f"stella verify (bundle):     {t_verify:.1f} s, peak RSS {rss_verify:.0f} MB")


def _export_key(home: Path, env: dict[str, str]) -> Path:
    pub = home / "bench.pub"
    child([STELLA, "keys", "export-public", "bench", "--out", str(pub)], env)
    return pub


if __name__ == "__main__":
    main()
