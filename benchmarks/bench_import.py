"""Import benchmark: a realistic OSV all.zip of N advisories into a fresh store.

Target (issue 2): >= 3,000 advisories/s and peak RSS < 500 MB for 200,000 advisories on 2 cores.
The import runs in a child process (`stella import`) so its peak RSS is measured alone. The same-run
baseline is the floor any importer pays: reading every member out of the zip and hashing it.

    python benchmarks/bench_import.py [--count 200000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from osv_corpus import write_all_zip


def baseline_read(path: Path) -> float:
    start = time.perf_counter()
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            hashlib.sha256(zf.read(info)).digest()
    return time.perf_counter() - start


def child_run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    # Max RSS over the children reaped so far: the first import is the first child.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"import failed ({proc.returncode}): {err[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=200_000)
    ap.add_argument("--workdir", type=Path, default=Path(".bench"))
    args = ap.parse_args()
    corpus = args.workdir / f"osv-all-{args.count}.zip"
    if not corpus.exists():
        t = time.perf_counter()
        write_all_zip(corpus, args.count)
        print(f"generated {corpus} ({corpus.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t:.1f}s")
    home = Path(tempfile.mkdtemp(prefix="stella-bench-"))
    env = dict(os.environ, STELLA_HOME=str(home))
    stella = shutil.which("stella") or str(Path(sys.executable).parent / "stella")
    try:
        base = baseline_read(corpus)
        elapsed, rss_mb, out = child_run([stella, "import", "--quiet", str(corpus)], env)
        print(out.strip().splitlines()[-1])
        re_elapsed, _, _ = child_run([stella, "import", "--quiet", str(corpus)], env)
        store_mb = sum(f.stat().st_size for f in home.rglob("*") if f.is_file()) / 1e6
    finally:
        shutil.rmtree(home, ignore_errors=True)
    rate = args.count / elapsed
    print(f"advisories:            {args.count}")
    print(f"import:                {elapsed:.1f} s  -> {rate:,.0f} advisories/s  (target >= 3,000)")
    print(f"peak RSS (import):     {rss_mb:.0f} MB  (target < 500)")
    print(f"re-import (all dup):   {re_elapsed:.1f} s  -> {args.count / re_elapsed:,.0f} documents/s")
    print(f"store size:            {store_mb:.0f} MB")
    print(f"baseline unzip+sha256: {base:.1f} s  -> import/baseline time ratio {elapsed / base:.1f}x")
    ok = rate >= 3000 and rss_mb < 500
    print("RESULT:", "meets target" if ok else "MISSES target")


if __name__ == "__main__":
    main()
