"""Verify benchmark: `stella verify` of a json:raw bundle against `zstd -d -c BUNDLE | openssl dgst -sha256`.

For each size, a json:raw bundle is built with stella from the realistic corpus (``.bench/osv-all-N.zip``, written by
``osv_corpus.py`` when missing) in a fresh home, with its ``BUNDLE.intoto.jsonl`` beside it, so the verification
includes every check a receiver meets: the canonical-archive checks, signatures, every digest and size, checksums,
provenance, the Sigstore bundle and the in-toto release attestation. Then, in the same run and alternating, the
verification and the floor any verifier pays on this machine (decompress the whole tar stream and hash it, on two
cores, with no parsing and no checks) run ``--runs`` times each; the medians are printed with the throughput
(uncompressed MB/s), the ratio (floor time / stella time) and PASS or MISS against the target of 0.9x.

Each command runs as a child process, so its peak RSS and CPU time are its own; stella runs with its bytecode
cached (in a private pycache under the work directory), as an installed stella or the binary has it.

    python benchmarks/bench_verify.py [--quick] [--sizes 20000 200000] [--runs 5] [--reuse] [--before REV]

``--quick`` is the 20,000-advisory figure alone; ``--reuse`` keeps each built bundle in the work directory and uses
it again next time (the build is the slow part); ``--before REV`` also times, alternating in the same run, the
verification by the tree of git revision REV (exported with ``git archive``, run with the same interpreter).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from osv_corpus import write_all_zip

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.9


def stella_cmd() -> list[str]:
    script = Path(sys.executable).parent / "stella"
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from app.cli import run; run()"]


def export_revision(rev: str, workdir: Path) -> Path:
    """The tree of git revision ``rev``, exported (read-only: ``git archive``) under ``workdir``."""
    sha = subprocess.run(["git", "rev-parse", rev], check=True, capture_output=True, text=True, cwd=ROOT).stdout
    tree = workdir / f"tree-{sha.strip()[:12]}"
    if not tree.is_dir():
        tree.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", sha.strip()], check=True, capture_output=True, cwd=ROOT).stdout
        subprocess.run(["tar", "x", "-C", str(tree)], input=archive, check=True)
    return tree


def environment(workdir: Path, home: Path) -> dict[str, str]:
    """The children's environment: the bench home, and stella's bytecode cached in a private pycache."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "STELLA_HOME": str(home), "PYTHONPYCACHEPREFIX": str(workdir / "pycache"), "NO_COLOR": "1"}


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float


def timed(cmd: list[str] | str, env: dict[str, str], cwd: Path = ROOT) -> Run:
    """Wall seconds, CPU seconds (user + system, children included) and peak RSS of one child command."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, shell=isinstance(cmd, str), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd if isinstance(cmd, str) else ' '.join(cmd)} failed: {err[-2000:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def build(count: int, workdir: Path, reuse: bool) -> tuple[Path, Path, dict[str, str]]:
    """A json:raw bundle of ``count`` advisories (and its attestation), its signer's public key, the environment."""
    corpus = workdir / f"osv-all-{count}.zip"
    if not corpus.exists():
        write_all_zip(corpus, count)
    home = workdir / f"bench-verify-{count}"
    bundle, pub = home / "bundle.tar.zst", home / "signer.pub"
    env = environment(workdir, home)
    if reuse and bundle.is_file() and pub.is_file():
        return bundle, pub, env
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    stella = stella_cmd()
    started = time.perf_counter()
    for args in (
        ["import", "--quiet", str(corpus)],
        ["keys", "generate", "signer"],
        ["keys", "export-public", "signer", "--out", str(pub)],
        ["export", "run", "--profile", "json:raw", "--key", "signer", "--out", str(bundle)],
    ):
        subprocess.run([*stella, *args], env=env, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    print(f"built the {count:,}-advisory bundle in {time.perf_counter() - started:.0f} s", flush=True)
    return bundle, pub, env


def tar_size(bundle: Path) -> int:
    out = subprocess.run(f"zstd -d -c {bundle} | wc -c", shell=True, check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


def checks_of(bundle: Path, pub: Path, env: dict[str, str]) -> list[str]:
    """The checks `stella verify --json` reports, to show what the timed runs include."""
    out = subprocess.run(
        [*stella_cmd(), "verify", str(bundle), "--key", str(pub), "--json"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    report = json.loads(out.stdout)
    if not report["verified"]:
        raise SystemExit(f"the bench bundle does not verify: {out.stdout[-2000:]}")
    return [str(c["check"]) for c in report["checks"]]


def one_size(count: int, workdir: Path, runs: int, reuse: bool, before: Path | None) -> dict[str, object]:
    bundle, pub, env = build(count, workdir, reuse)
    attestation = bundle.with_name(bundle.name + ".intoto.jsonl")
    if not attestation.is_file():
        raise SystemExit(f"{attestation} is missing: the verification would skip the in-toto release check")
    size = tar_size(bundle)
    checks = checks_of(bundle, pub, env)  # also the warm-up: bytecode compiled, the bundle in the page cache
    verify_cmd = [*stella_cmd(), "verify", str(bundle), "--key", str(pub)]
    pipeline = f"zstd -q -d -c {bundle} | openssl dgst -sha256 >/dev/null"
    old_cmd = [sys.executable, "-c", "from app.cli import run; run()", *verify_cmd[-4:]]
    old_env = {**env, "PYTHONPATH": str(before)}
    if before is not None:
        timed(old_cmd, old_env, cwd=before)  # its warm-up
    load_before = os.getloadavg()[0]
    verifies, pipes, olds = [], [], []
    for _ in range(runs):
        verifies.append(timed(verify_cmd, env))
        pipes.append(timed(pipeline, env))
        if before is not None:
            olds.append(timed(old_cmd, old_env, cwd=before))
    return {
        "count": count,
        "bundle_mb": bundle.stat().st_size / 1e6,
        "tar_mb": size / 1e6,
        "checks": checks,
        "verify": verifies,
        "pipe": pipes,
        "before": olds,
        "load": (load_before, os.getloadavg()[0]),
    }


def median(runs: list[Run], field: str) -> float:
    return float(statistics.median(getattr(r, field) for r in runs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    ap.add_argument("--quick", action="store_true", help="the 20,000-advisory figure only")
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each side (the median is printed)")
    ap.add_argument("--reuse", action="store_true", help="reuse the bundles a previous run built in --workdir")
    ap.add_argument("--workdir", type=Path, default=ROOT / ".bench")
    ap.add_argument("--before", metavar="REV", help="also time the verification of git revision REV's tree")
    args = ap.parse_args()
    sizes = [20_000] if args.quick else args.sizes
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    before = export_revision(args.before, workdir) if args.before else None
    results = [one_size(n, workdir, args.runs, args.reuse, before) for n in sizes]
    print(f"machine: {os.cpu_count()} cores; medians of {args.runs} alternating runs of each side")
    verdicts = []
    for r in results:
        v, p = r["verify"], r["pipe"]
        assert isinstance(v, list) and isinstance(p, list)
        tar_mb = float(r["tar_mb"])  # type: ignore[arg-type]
        v_wall, p_wall = median(v, "wall"), median(p, "wall")
        ratio = p_wall / v_wall
        verdict = "PASS" if ratio >= TARGET else "MISS"
        verdicts.append(verdict)
        load = r["load"]
        assert isinstance(load, tuple)
        print(
            f"--- {r['count']:,} advisories: bundle {r['bundle_mb']:.1f} MB, tar {tar_mb:.1f} MB "
            f"(load average {load[0]:.2f} -> {load[1]:.2f})"
        )
        print(f"    checks: {', '.join(r['checks'])}")  # type: ignore[arg-type]
        print(
            f"{'stella verify:':36}{v_wall:6.2f} s  {tar_mb / v_wall:6.0f} MB/s  "
            f"CPU {median(v, 'cpu'):5.2f} s  peak RSS {max(x.rss_mb for x in v):4.0f} MB"
        )
        print(
            f"{'zstd -d -c | openssl dgst -sha256:':36}{p_wall:6.2f} s  {tar_mb / p_wall:6.0f} MB/s  "
            f"CPU {median(p, 'cpu'):5.2f} s"
        )
        old = r["before"]
        assert isinstance(old, list)
        if old:
            o_wall = median(old, "wall")
            label = f"stella verify before ({args.before}):"
            print(
                f"{label:36}{o_wall:6.2f} s  {tar_mb / o_wall:6.0f} MB/s  "
                f"CPU {median(old, 'cpu'):5.2f} s  peak RSS {max(x.rss_mb for x in old):4.0f} MB  "
                f"(ratio {p_wall / o_wall:.2f}x)"
            )
        print(f"throughput ratio (floor time / verify time): {ratio:.2f}x  {verdict} (target >= {TARGET}x)")
    if len(results) >= 2:
        small, big = results[0], results[-1]
        rss_small = max(x.rss_mb for x in small["verify"])  # type: ignore[attr-defined]
        rss_big = max(x.rss_mb for x in big["verify"])  # type: ignore[attr-defined]
        print(f"verify peak RSS {small['count']:,} -> {big['count']:,}: {rss_small:.0f} -> {rss_big:.0f} MB")
    return 0 if all(v == "PASS" for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
