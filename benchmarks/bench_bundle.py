"""Build benchmark: `stella export run --profile json:raw` against `zstd` on the same bytes, at 20k and 200k.

Target (issue 20): the build of a 200,000-advisory json:raw bundle within 2x of compressing the same payload bytes
with `zstd` at the profile's level (single-threaded, as the bundle writer runs it), in the same run; peak RSS flat
between 20,000 and 200,000. The floor is measured on the bundle's own tar (decompressed from the bundle, so exactly
the bytes the archive step compressed): `zstd -<level> --single-thread -c bundle.tar > /dev/null`, timed like the
build. The build runs as a child process, so its wall time, peak RSS and system time (wait4) are its own.
(Verification speed is benchmarks/bench_verify.py.)

    python benchmarks/bench_bundle.py [--sizes 20000 200000] [--quick] [--home DIR]

``--quick`` is 20,000 only. ``--home DIR`` reuses a home that already holds the imported corpus (and a key named
``bench``) instead of importing it into a fresh one: one size, then.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from osv_corpus import write_all_zip

STELLA = shutil.which("stella") or str(Path(sys.executable).parent / "stella")
LEVEL = 9  # json:raw's compression_level (the default profile)


def timed(cmd: list[str], env: dict[str, str], stdout: Any = subprocess.DEVNULL) -> dict[str, float]:
    """Wall seconds, peak RSS (MB), user and system seconds of one child command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return {"s": elapsed, "rss": usage.ru_maxrss / 1024, "user": usage.ru_utime, "sys": usage.ru_stime}


def zstd_floor(bundle: Path, work: Path, level: int) -> dict[str, float]:
    """`zstd -<level>` (one thread) over the bundle's own tar: the irreducible compression of the same bytes."""
    tar = work / "payload.tar"
    subprocess.run(["zstd", "-q", "-d", "-f", "-o", str(tar), str(bundle)], check=True)
    subprocess.run(["cat", str(tar)], check=True, stdout=subprocess.DEVNULL)  # warm the page cache, as the build's
    with open(os.devnull, "wb") as null:
        result = timed(["zstd", "-q", f"-{level}", "--single-thread", "-c", str(tar)], dict(os.environ), null)
    result["tar_mb"] = tar.stat().st_size / 1e6
    tar.unlink()
    return result


def one_size(count: int, workdir: Path, home: Path | None) -> dict[str, Any]:
    fresh = home is None
    if home is None:
        corpus = workdir / f"osv-all-{count}.zip"
        if not corpus.exists():
            write_all_zip(corpus, count)
        home = Path(tempfile.mkdtemp(prefix="stella-bench-build-", dir=workdir))
    env = dict(os.environ, STELLA_HOME=str(home))
    try:
        if fresh:
            subprocess.run([STELLA, "import", "--quiet", str(corpus)], env=env, check=True, stdout=subprocess.DEVNULL)
            subprocess.run([STELLA, "keys", "generate", "bench"], env=env, check=True, stdout=subprocess.DEVNULL)
        bundle = home / f"bench-{os.getpid()}.tar.zst"
        build = timed([STELLA, "export", "run", "--profile", "json:raw", "--key", "bench", "--out", str(bundle)], env)
        floor = zstd_floor(bundle, home, LEVEL)
        size_mb = bundle.stat().st_size / 1e6
        bundle.unlink()
    finally:
        if fresh:
            shutil.rmtree(home, ignore_errors=True)
    return {"count": count, "bundle_mb": size_mb, "build": build, "floor": floor}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    ap.add_argument("--quick", action="store_true", help="20,000 advisories only")
    ap.add_argument("--home", type=Path, help="reuse this home (corpus imported, key 'bench'); one size")
    ap.add_argument("--workdir", type=Path, default=Path(".bench"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    sizes = [20_000] if args.quick else args.sizes
    if args.home is not None:
        sizes = sizes[:1]
    load = os.getloadavg()[0]
    results = [one_size(n, args.workdir, args.home) for n in sizes]
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} at the start")
    for r in results:
        b, f = r["build"], r["floor"]
        ratio = b["s"] / f["s"]
        print(f"--- json:raw, {r['count']:,} advisories: bundle {r['bundle_mb']:.1f} MB (tar {f['tar_mb']:.1f} MB)")
        print(
            f"stella export run:   {b['s']:.1f} s, peak RSS {b['rss']:.0f} MB, user {b['user']:.1f} s, "
            f"system {b['sys']:.1f} s"
        )
        print(f"floor zstd -{LEVEL} -T1:   {f['s']:.1f} s on the same tar (same run)")
        print(f"build / floor:       {ratio:.2f}x  (target <= 2x)  {'OK' if ratio <= 2 else 'MISSES target'}")
        # On a loaded machine wall times say more about the load than the build: CPU seconds are steadier.
        cpu, floor_cpu = b["user"] + b["sys"], f["user"] + f["sys"]
        print(f"CPU (user + system): {cpu:.1f} s against the floor's {floor_cpu:.1f} s ({cpu / floor_cpu:.2f}x)")
    if len(results) >= 2:
        small, big = results[0], results[-1]
        growth = big["build"]["rss"] / small["build"]["rss"] - 1
        print(
            f"build peak RSS {small['count']:,} -> {big['count']:,}: {small['build']['rss']:.0f} -> "
            f"{big['build']['rss']:.0f} MB ({growth:+.0%}, target flat)"
        )


if __name__ == "__main__":
    main()
