"""trivy:db benchmark: the whole `stella export run --profile trivy:db` against its same-run floor, at 20k and 200k.

For each size (``--quick``: 20,000 only), in child processes so each peak RSS is its own:

1. ``stella import`` of the generated OSV ``all.zip`` (benchmarks/osv_corpus.py) into a fresh home (not timed;
   ``--home DIR`` reuses a store that already holds it);
2. ``stella export run --profile trivy:db``: the whole signed bundle (trivy.db, db.tar.gz, cache and OCI layouts),
   wall time and peak RSS: the stella figure;
3. the floor, on the trivy.db that run shipped: the bbolt page writing of the same keys and values
   (``core.bbolt.write_bbolt`` from the tree read back, timed alone), plus the profile's two compressions of it
   with the system tools: ``gzip -6`` (db.tar.gz) and ``zstd -9`` (the bundle archive, the profile's level).

The ratio is stella / floor. Each line also says how loaded the machine was (load average, cores).

    python benchmarks/bench_trivy.py [--quick] [--sizes 20000,200000] [--workdir .bench] [--home N=DIR ...]
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

#: The floor's bbolt part, run as `python -c` in a child: read the tree back, then time the page writing alone.
BBOLT_WRITE = """
import json, sys, time
from pathlib import Path
from core.bbolt import write_bbolt
from verify.bbolt_check import read_bbolt
tree = read_bbolt(Path(sys.argv[1]))
start = time.perf_counter()
result = write_bbolt(Path(sys.argv[2]), tree)
print(json.dumps({"write": time.perf_counter() - start, "pages": result.pages, "keys": result.keys}))
"""


def child(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB, of that process alone: wait4) and stdout of one child command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    out = proc.stdout.read().decode() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd[:4])} failed: {err[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, out


def timed_tool(shell: str) -> float:
    start = time.perf_counter()
    subprocess.run(shell, shell=True, check=True, cwd=ROOT)
    return time.perf_counter() - start


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


def bench(count: int, workdir: Path, home: Path | None) -> dict[str, float]:
    corpus = workdir / f"osv-all-{count}.zip"
    scratch = Path(tempfile.mkdtemp(prefix="stella-bench-trivy-", dir=workdir))
    own_home = home is None
    home = home or scratch / "home"
    env = dict(os.environ, STELLA_HOME=str(home))
    try:
        if own_home:
            if not corpus.exists():
                write_all_zip(corpus, count)
            child([STELLA, "import", "--quiet", str(corpus)], env)
        if not (home / "keys" / "bench-trivy.key").exists():
            child([STELLA, "keys", "generate", "bench-trivy"], env)
        bundle = scratch / "trivy-db.tar.zst"
        before = load()
        t_export, rss_export, out = child(
            [STELLA, "export", "run", "--profile", "trivy:db", "--key", "bench-trivy", "--out", str(bundle), "--json"],
            env,
        )
        run = json.loads(out)
        db = scratch / "trivy.db"
        subprocess.run(f"tar -I zstd -xOf {bundle} cache/db/trivy.db > {db}", shell=True, check=True)
        _, _, floor_out = child([sys.executable, "-c", BBOLT_WRITE, str(db), str(scratch / "rewritten.db")], env)
        bbolt = json.loads(floor_out)
        if (scratch / "rewritten.db").read_bytes() != db.read_bytes():
            raise SystemExit("the floor's bbolt rewrite differs from the shipped trivy.db")
        t_gzip = timed_tool(f"gzip -6 -c {db} > /dev/null")
        t_zstd = timed_tool(f"zstd -q -9 -T1 -c {db} > /dev/null")
        after = load()
        figures = {
            "count": count,
            "export": t_export,
            "rss": rss_export,
            "bbolt": bbolt["write"],
            "gzip": t_gzip,
            "zstd": t_zstd,
            "floor": bbolt["write"] + t_gzip + t_zstd,
            "db_mb": db.stat().st_size / 1e6,
            "bundle_mb": bundle.stat().st_size / 1e6,
            "advisories": run["bundleCounts"]["advisories"],
        }
        print(
            f"trivy:db {count:>7,}: stella {t_export:6.1f} s, peak RSS {rss_export:5.0f} MB | floor "
            f"{figures['floor']:5.1f} s (bbolt write {bbolt['write']:.1f} + gzip -6 {t_gzip:.1f} + zstd -9 "
            f"{t_zstd:.1f}) | ratio {t_export / figures['floor']:.2f}x | trivy.db {figures['db_mb']:.0f} MB, "
            f"bundle {figures['bundle_mb']:.0f} MB | {before} before, {after} after",
            flush=True,
        )
        return figures
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="20,000 advisories only (a developer's loop)")
    ap.add_argument("--sizes", default="20000,200000", help="comma-separated advisory counts")
    ap.add_argument("--workdir", type=Path, default=Path(".bench"))
    ap.add_argument(
        "--home", action="append", default=[], metavar="N=DIR", help="reuse a home that holds the N-advisory corpus"
    )
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    homes = {int(n): Path(d) for n, d in (h.split("=", 1) for h in args.home)}
    sizes = [20_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    results = [bench(n, args.workdir, homes.get(n)) for n in sizes]
    if len(results) > 1:
        small, large = results[0], results[-1]
        print(
            f"growth {small['count']:,} -> {large['count']:,} ({large['count'] / small['count']:.0f}x data): "
            f"time {large['export'] / small['export']:.1f}x, peak RSS {large['rss'] / small['rss']:.2f}x"
        )


if __name__ == "__main__":
    main()
