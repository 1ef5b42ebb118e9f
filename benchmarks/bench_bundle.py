"""Bundle benchmark: build json:raw from an N-advisory store, then verify it; for two sizes.

Targets (issue 3): verification at no less than 0.8x the throughput of `zstd -d` plus `openssl dgst -sha256`
on the same archive, measured in the same run; verification peak RSS flat (within 20%) between a 20,000- and
a 200,000-advisory bundle. Each stella command runs as a child process so its peak RSS is its own.

    python benchmarks/bench_bundle.py [--sizes 20000 200000]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from osv_corpus import write_all_zip

STELLA = shutil.which("stella") or str(Path(sys.executable).parent / "stella")


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return elapsed, usage.ru_maxrss / 1024


def baseline(bundle: Path, work: Path) -> tuple[float, float, float]:
    """(zstd -d seconds, openssl dgst -sha256 seconds over the decompressed tar, pipeline seconds)."""
    tar = work / "bundle.tar"
    t = time.perf_counter()
    subprocess.run(["zstd", "-q", "-d", "-f", "-o", str(tar), str(bundle)], check=True)
    t_zstd = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run(["openssl", "dgst", "-sha256", str(tar)], check=True, stdout=subprocess.DEVNULL)
    t_sha = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run(f"zstd -q -d -c {bundle} | openssl dgst -sha256 >/dev/null", shell=True, check=True)
    t_pipe = time.perf_counter() - t
    tar.unlink()
    return t_zstd, t_sha, t_pipe


def one_size(count: int, workdir: Path) -> dict[str, float]:
    corpus = workdir / f"osv-all-{count}.zip"
    if not corpus.exists():
        write_all_zip(corpus, count)
    home = Path(tempfile.mkdtemp(prefix="stella-bench-"))
    env = dict(os.environ, STELLA_HOME=str(home))
    try:
        subprocess.run([STELLA, "import", "--quiet", str(corpus)], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([STELLA, "keys", "generate", "bench"], env=env, check=True, stdout=subprocess.DEVNULL)
        pub = home / "bench.pub"
        subprocess.run([STELLA, "keys", "export-public", "bench", "--out", str(pub)], env=env, check=True)
        bundle = home / "bundle.tar.zst"
        build_s, build_rss = timed(
            [STELLA, "export", "run", "--profile", "json:raw", "--key", "bench", "--out", str(bundle)], env
        )
        verify_s, verify_rss = timed([STELLA, "verify", str(bundle), "--key", str(pub)], env)
        t_zstd, t_sha, t_pipe = baseline(bundle, home)
        size_mb = bundle.stat().st_size / 1e6
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {
        "count": count,
        "bundle_mb": size_mb,
        "build_s": build_s,
        "build_rss": build_rss,
        "verify_s": verify_s,
        "verify_rss": verify_rss,
        "zstd_s": t_zstd,
        "sha_s": t_sha,
        "pipe_s": t_pipe,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    ap.add_argument("--workdir", type=Path, default=Path(".bench"))
    args = ap.parse_args()
    results = [one_size(n, args.workdir) for n in args.sizes]
    for r in results:
        base = r["zstd_s"] + r["sha_s"]
        print(f"--- {r['count']:,} advisories: bundle {r['bundle_mb']:.1f} MB")
        print(f"build json:raw:        {r['build_s']:.1f} s, peak RSS {r['build_rss']:.0f} MB")
        print(f"stella verify:         {r['verify_s']:.2f} s, peak RSS {r['verify_rss']:.0f} MB")
        print(
            f"baseline zstd -d:      {r['zstd_s']:.2f} s; openssl dgst -sha256: {r['sha_s']:.2f} s;"
            f" sum {base:.2f} s (pipeline on 2 cores: {r['pipe_s']:.2f} s)"
        )
        print(f"verify throughput vs zstd -d + openssl dgst (sequential sum): {base / r['verify_s']:.2f}x")
        print(
            f"verify throughput vs zstd -d -c | openssl dgst (2-core pipeline): {r['pipe_s'] / r['verify_s']:.2f}x"
            "  (target >= 0.8x; the stricter of the two readings)"
        )
    if len(results) >= 2:
        small, big = results[0], results[-1]
        growth = big["verify_rss"] / small["verify_rss"] - 1
        print(
            f"verify peak RSS {small['count']:,} -> {big['count']:,}: {small['verify_rss']:.0f} -> "
            f"{big['verify_rss']:.0f} MB ({growth:+.0%}, target within 20%)"
        )


if __name__ == "__main__":
    main()
