"""Offline Kit benchmark: assemble a multi-GB kit onto volumes, restore it, and compare with `cp` + `sha256sum`.

Two signed bundles with incompressible payloads (the default: 2 GiB and 1 GiB, over 1 GB volumes, so the larger is
cut into parts across volumes) are written with the bundle writer. Then, each as a child process so its peak RSS is
its own:

- ``stella kit assemble`` (read every bundle once, hash it whole and per part, write the parts, sign);
- ``stella kit restore`` of every volume, last first (hash and write each part, hash each bundle whole, then
  ``stella verify`` each);
- the same-run baseline: ``cp`` of the same bundles into one directory, then ``sha256sum`` of the copies (the least
  any tool that copies and checks these bytes pays on this machine).

Figures are MB (10^6 bytes) of bundle per second and peak RSS in MB. ``--quick`` uses 48 + 16 MiB over 24 MB volumes.

    python benchmarks/bench_kit.py [--quick] [--sizes-mib 2048 1024] [--volume-size 1G] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.bundle import BundleSpec, PayloadContext, build_bundle
from core.home import Home
from core.keys import KeyStore
from core.signing import Signer

STELLA = shutil.which("stella") or str(Path(sys.executable).parent / "stella")


class RandomPayload:
    """A json:raw-shaped payload of one incompressible file of ``size`` bytes (bytes from os.urandom)."""

    kind = "json"
    variant = "raw"
    encrypted_prefixes: tuple[str, ...] | None = None

    def __init__(self, size: int) -> None:
        self.size = size

    def write_payload(self, ctx: PayloadContext) -> dict[str, int]:
        with ctx.writer.stream("raw/blob.bin", "application/octet-stream") as out:
            left = self.size
            while left:
                chunk = os.urandom(min(1 << 20, left))
                out.write(chunk)
                left -= len(chunk)
        return {"files": 1}


def build(home: Path, out: Path, size: int, run_id: str) -> Path:
    spec = BundleSpec(
        run_id=run_id,
        tenant="default",
        profile_id="json:raw",
        profile_kind="json",
        profile_variant="raw",
        profile_revision=1,
        profile_config={},
        selectors={},
        created_at=datetime(2026, 12, 1),
        compression_level=1,
    )

    def no_inputs() -> Iterator[Any]:
        return iter(())

    signer = Signer.from_keystore(KeyStore(Home(home)), "bench")
    build_bundle(
        spec, RandomPayload(size), inputs=no_inputs, raw_bytes=bytes.fromhex, query=None, signer=signer, out_path=out
    )
    return out


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child command; fails loudly if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd[:3])} failed: {err}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="48 + 16 MiB over 24 MB volumes")
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[2048, 1024])
    parser.add_argument("--volume-size", default="1G")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    sizes, volume = ([48, 16], "24M") if args.quick else (args.sizes_mib, args.volume_size)
    work = Path(tempfile.mkdtemp(prefix="bench-kit-", dir=args.workdir))
    try:
        home = work / "home"
        env = dict(os.environ, STELLA_HOME=str(home))
        subprocess.run([STELLA, "keys", "generate", "bench"], env=env, check=True, stdout=subprocess.DEVNULL)
        pub = work / "bench.pub"
        subprocess.run([STELLA, "keys", "export-public", "bench", "--out", str(pub)], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        (work / "bundles").mkdir()
        bundles = [
            build(home, work / "bundles" / f"b{n}.tar.zst", mib << 20, f"bench{n:04d}") for n, mib in enumerate(sizes)
        ]
        total = sum(b.stat().st_size for b in bundles)
        mb = total / 1e6

        assemble = [STELLA, "kit", "assemble", "--volume-size", volume, "--key", "bench", "--out", str(work / "kit")]
        a_wall, a_rss = timed([*assemble, *map(str, bundles)], env)
        volumes = sorted(p for p in (work / "kit").iterdir() if p.is_dir())
        restore = [STELLA, "kit", "restore", "--to", str(work / "restored"), "--key", str(pub)]
        r_wall, r_rss = timed([*restore, *map(str, reversed(volumes))], env)
        for b in bundles:
            if (work / "restored" / b.name).read_bytes() != b.read_bytes():
                raise SystemExit(f"{b.name} did not come back byte for byte")

        (work / "copies").mkdir()
        start = time.perf_counter()
        subprocess.run(["cp", *map(str, bundles), str(work / "copies")], check=True)
        subprocess.run(["sha256sum", *(str(work / "copies" / b.name) for b in bundles)], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        base = time.perf_counter() - start

        print(f"kit of {len(bundles)} bundles, {mb:,.0f} MB, over {len(volumes)} volumes of {volume}")
        print(f"{'step':<34}{'seconds':>9}{'MB/s':>9}{'vs cp+sha256sum':>17}{'peak RSS MB':>13}")
        print(f"{'cp + sha256sum (baseline)':<34}{base:>9.2f}{mb / base:>9.0f}{1:>17.2f}{'':>13}")
        print(f"{'stella kit assemble':<34}{a_wall:>9.2f}{mb / a_wall:>9.0f}{base / a_wall:>17.2f}{a_rss:>13.0f}")
        restored = f"{r_wall:>9.2f}{mb / r_wall:>9.0f}{base / r_wall:>17.2f}{r_rss:>13.0f}"
        print(f"{'stella kit restore (+ verify)':<34}{restored}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
