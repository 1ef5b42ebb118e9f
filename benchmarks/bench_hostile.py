"""Peak memory and time of `stella import` on hostile sizes, against reading the same file.

    python benchmarks/bench_hostile.py [--epss-rows 10000000] [--json-mb 200] [--workdir .bench]

Prints, for each case, the wall time and peak RSS of `stella import` and of two baselines that only read the file
(`wc -l`, and Python reading it whole): a large EPSS CSV (streamed: accepted, memory about the file's size plus a
bounded amount), a large JSON array and a large OSV document (refused by size before parsing), and a YAML alias bomb
in `devportal import` (refused before it is expanded).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
STELLA = [sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))"]
BOMB = b'openapi: "3.1.0"\ninfo: {title: bomb, version: "1"}\npaths: {}\na: &a ["lol","lol","lol","lol","lol"]\n'
BOMB += b"".join(f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n".encode() for i in range(8))


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[int, float, float]:
    """Exit code, wall seconds and peak RSS (MB, sampled every 20 ms) of ``cmd``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    watched = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    return proc.wait(), time.perf_counter() - start, peak / 1e6


def report(label: str, path: Path, cmd: list[str], env: dict[str, str]) -> None:
    size = path.stat().st_size / 1e6 if path.is_file() else 0.0
    print(f"\n{label} ({size:.0f} MB)")
    rows = [
        ("stella", cmd, env),
        ("wc -l", ["wc", "-l", str(path)], None),
        ("python read", [sys.executable, "-c", f"open({str(path)!r}, 'rb').read()"], None),
    ]
    for name, command, environ in rows:
        if not path.is_file() and name != "stella":
            continue
        code, seconds, peak = measure(command, environ)
        print(f"  {name:<12} exit {code:<3} {seconds:7.1f} s  peak RSS {peak:7.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epss-rows", type=int, default=10_000_000)
    ap.add_argument("--json-mb", type=int, default=200)
    ap.add_argument("--workdir", type=Path, default=Path(".bench"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)

    epss = args.workdir / f"epss-{args.epss_rows}.csv"
    if not epss.exists():
        with epss.open("w") as fh:
            fh.write("#model_version:v2025.03.14,score_date:2025-08-25T00:00:00+0000\ncve,epss,percentile\n")
            for i in range(args.epss_rows):
                fh.write(f"CVE-{1999 + i % 27}-{i:07d},{rng.random():.5f},{rng.random():.5f}\n")
    array = args.workdir / f"array-{args.json_mb}mb.json"
    if not array.exists():
        item = json.dumps({"id": "x" * 40, "values": list(range(20))})
        count = args.json_mb * 1_000_000 // (len(item) + 1)
        array.write_text("[" + ",".join([item] * count) + "]")
    osv = args.workdir / f"osv-{args.json_mb}mb.json"
    if not osv.exists():
        doc = json.loads((ROOT / "samples" / "advisories" / "GO-2020-0001.json").read_text())
        affected = doc["affected"][0]
        count = args.json_mb * 1_000_000 // (len(json.dumps(affected)) + 2)
        doc["affected"] = [dict(affected, package={"name": f"p{i}", "ecosystem": "Go"}) for i in range(count)]
        osv.write_text(json.dumps(doc))
    portal = args.workdir / "portal"
    if not portal.exists():
        shutil.copytree(ROOT / "tests" / "fixtures" / "devportal" / "portal", portal)
        (portal / "api" / "bomb.yaml").write_bytes(BOMB)

    for label, path, extra in [
        ("EPSS CSV, streamed", epss, ["import", "--quiet"]),
        ("JSON array, refused by size", array, ["import", "--quiet"]),
        ("OSV document, refused by size", osv, ["import", "--quiet"]),
        (f"YAML alias bomb ({len(BOMB)} bytes), devportal import", portal, ["devportal", "import"]),
    ]:
        home = Path(tempfile.mkdtemp(prefix="stella-bench-"))
        try:
            report(label, path, [*STELLA, *extra, str(path)], dict(os.environ, STELLA_HOME=str(home)))
        finally:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
