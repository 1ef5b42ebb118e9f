"""Mirror benchmark: delta size for a 1% change, and age encryption throughput against the `age` CLI.

Targets (issue 4):
  (a) a mirror:delta for a 1% change of an N-advisory store (default 200,000) is at most 3% of the mirror:full
      bundle's size. The change is 1% of the advisories re-issued as new revisions (a later ``modified`` and a
      changed summary), imported, then exported as a delta against the full bundle's run.
  (b) encryption and decryption run at no less than 0.8x the `age` CLI's throughput on the same payload (1 GiB by
      default) in the same run. stella's path is ``core.age_stream`` (encrypt_stream / decrypt_stream), file
      to file, exactly as the bundle writer (``core.bundle._encrypt_payload``) and the mirror import
      (``services.mirror_import``) call it; the CLI runs
      ``age -r R -o OUT IN`` and ``age -d -i ID -o OUT IN``. Every output is decrypted back and its sha256
      compared, so a fast wrong answer does not count. Each timing is the best of ``--repeat`` runs.

    python benchmarks/bench_mirror.py [--n 200000] [--age-bytes 1073741824] [--only delta|age]

``STELLA_BENCH_N`` sets the default of ``--n``. Work files go under ``--workdir`` (default ``.bench``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyrage import x25519

sys.path.insert(0, str(Path(__file__).resolve().parent))
from osv_corpus import write_all_zip

from core.age_stream import decrypt_stream, encrypt_stream

STELLA = shutil.which("stella") or str(Path(sys.executable).parent / "stella")
CHUNK = 1 << 20


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    # `stella import` exits 3 when some input was rejected; a bench corpus has none, so any non-zero is fatal.
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def _revisions(corpus: Path, out: Path, every: int) -> int:
    """Write every ``every``-th advisory of ``corpus`` again as a new revision into the zip ``out``."""
    n = 0
    with zipfile.ZipFile(corpus) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as dst:
        for i, info in enumerate(src.infolist()):
            if i % every:
                continue
            doc = json.loads(src.read(info))
            doc["modified"] = "2027-01-01T00:00:00Z"  # after every generated record's modified date
            doc["summary"] = f"{doc['summary'].rstrip('.')} (revised)."
            dst.writestr(info.filename, json.dumps(doc, indent=2))
            n += 1
    return n


def bench_delta(n: int, workdir: Path) -> dict[str, float]:
    corpus = workdir / f"osv-all-{n}.zip"
    if not corpus.exists():
        write_all_zip(corpus, n)
    changes = workdir / f"osv-revised-{n}.zip"
    changed = _revisions(corpus, changes, 100)
    home = Path(tempfile.mkdtemp(prefix="stella-bench-mirror-", dir=workdir))
    env = dict(os.environ, STELLA_HOME=str(home))
    try:
        t_import, _ = _run([STELLA, "import", "--quiet", str(corpus)], env)
        _run([STELLA, "keys", "generate", "bench"], env)
        _run([STELLA, "tuf", "init", "--key", "bench"], env)
        full = home / "full.tar.zst"
        t_full, out = _run(
            [STELLA, "export", "run", "--profile", "mirror:full", "--key", "bench", "--out", str(full), "--json"], env
        )
        full_run = json.loads(out)["runId"]
        t_changes, _ = _run([STELLA, "import", "--quiet", str(changes)], env)
        delta = home / "delta.tar.zst"
        delta_cmd = [STELLA, "export", "run", "--profile", "mirror:delta", "--key", "bench", "--base", full_run]
        t_delta, out = _run([*delta_cmd, "--out", str(delta), "--json"], env)
        _, report = _run([STELLA, "verify", str(delta), "--key", str(home / "keys" / "bench.pub"), "--json"], env)
        counts = json.loads(report)["manifest"]["counts"]
        full_size, delta_size = full.stat().st_size, delta.stat().st_size
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {
        "n": n,
        "changed": changed,
        "added": counts.get("added", -1),
        "removed": counts.get("removed", -1),
        "import_s": t_import,
        "changes_import_s": t_changes,
        "full_s": t_full,
        "delta_s": t_delta,
        "full_bytes": full_size,
        "delta_bytes": delta_size,
    }


def _payload(path: Path, size: int) -> str:
    sha = hashlib.sha256()
    with path.open("wb") as fh:
        left = size
        while left:
            chunk = os.urandom(min(CHUNK * 8, left))
            sha.update(chunk)
            fh.write(chunk)
            left -= len(chunk)
    return sha.hexdigest()


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK * 8):
            sha.update(chunk)
    return sha.hexdigest()


def _best(repeat: int, action: Callable[[], None], before: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(repeat):
        before()
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def bench_age(size: int, workdir: Path, repeat: int) -> dict[str, Any]:
    age, keygen = shutil.which("age"), shutil.which("age-keygen")
    if not age or not keygen:
        raise SystemExit("the age benchmark needs the `age` and `age-keygen` commands (apt-get install age)")
    work = Path(tempfile.mkdtemp(prefix="stella-bench-age-", dir=workdir))
    try:
        id_file = work / "id.key"
        subprocess.run([keygen, "-o", str(id_file)], check=True, capture_output=True)
        recipient = subprocess.run([keygen, "-y", str(id_file)], check=True, capture_output=True, text=True)
        secret = next(line for line in id_file.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-"))
        public = x25519.Recipient.from_str(recipient.stdout.strip())

        plain = work / "payload.bin"
        want = _payload(plain, size)
        ours_ct, ours_pt = work / "stella.age", work / "stella.out"
        cli_ct, cli_pt = work / "cli.age", work / "cli.out"

        def clear(path: Path) -> Callable[[], None]:
            return lambda: path.unlink(missing_ok=True)

        def stella_encrypt() -> None:  # what `stella export run --recipient` runs (core.age_stream)
            with plain.open("rb") as src, ours_ct.open("wb") as dst:
                encrypt_stream(src, dst, [str(public)])

        def stella_decrypt() -> None:  # what `stella mirror import --identity` runs (core.age_stream)
            with ours_ct.open("rb") as src, ours_pt.open("wb") as dst:
                decrypt_stream(src, dst, [secret])

        def cli_encrypt() -> None:
            subprocess.run([age, "-r", public_text, "-o", str(cli_ct), str(plain)], check=True)

        def cli_decrypt() -> None:
            subprocess.run([age, "-d", "-i", str(id_file), "-o", str(cli_pt), str(cli_ct)], check=True)

        public_text = recipient.stdout.strip()
        _sha256(plain)  # warm the page cache for both contenders alike
        times = {
            "stella_encrypt": _best(repeat, stella_encrypt, clear(ours_ct)),
            "age_encrypt": _best(repeat, cli_encrypt, clear(cli_ct)),
            "stella_decrypt": _best(repeat, stella_decrypt, clear(ours_pt)),
            "age_decrypt": _best(repeat, cli_decrypt, clear(cli_pt)),
        }
        if _sha256(ours_pt) != want or _sha256(cli_pt) != want:
            raise SystemExit("a decrypted payload differs from the plaintext: the figures are void")
        # Cross-check once (untimed): each side decrypts the other's ciphertext.
        subprocess.run([age, "-d", "-i", str(id_file), "-o", str(cli_pt), str(ours_ct)], check=True)
        with cli_ct.open("rb") as src, ours_pt.open("wb") as dst:
            decrypt_stream(src, dst, [secret])
        if _sha256(ours_pt) != want or _sha256(cli_pt) != want:
            raise SystemExit("cross-decryption (age <-> stella) differs from the plaintext")
        version = subprocess.run([age, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"bytes": size, "age_version": version, "pyrage_version": _pyrage_version(), **times}


def _pyrage_version() -> str:
    from importlib.metadata import version

    return version("pyrage")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=int(os.environ.get("STELLA_BENCH_N", "200000")), help="advisories")
    ap.add_argument("--age-bytes", type=int, default=1 << 30, help="payload size for the age benchmark")
    ap.add_argument("--repeat", type=int, default=3, help="age timings: best of this many runs")
    ap.add_argument("--only", choices=["delta", "age"], help="run one part only")
    ap.add_argument("--workdir", type=Path, default=Path(".bench"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    if args.only in (None, "delta"):
        d = bench_delta(args.n, args.workdir)
        ratio = d["delta_bytes"] / d["full_bytes"]
        print(f"--- (a) delta for a 1% change of {d['n']:,} advisories")
        print(f"import {d['n']:,} advisories:   {d['import_s']:.1f} s")
        print(f"mirror:full export:        {d['full_s']:.1f} s, {d['full_bytes'] / 1e6:.2f} MB")
        print(
            f"re-issued advisories:      {d['changed']:,} (imported in {d['changes_import_s']:.1f} s); "
            f"delta counts: added {d['added']}, removed {d['removed']}"
        )
        print(f"mirror:delta export:       {d['delta_s']:.1f} s, {d['delta_bytes'] / 1e6:.3f} MB")
        print(f"delta / full:              {ratio:.2%}  (target <= 3%)  {'OK' if ratio <= 0.03 else 'MISSES target'}")

    if args.only in (None, "age"):
        a = bench_age(args.age_bytes, args.workdir, args.repeat)
        mb = a["bytes"] / 1e6
        print(f"--- (b) age throughput on a {a['bytes'] / (1 << 20):.0f} MiB payload, best of {args.repeat}")
        print(f"    (age {a['age_version']}; stella: core.age_stream on cryptography)")
        for op in ("encrypt", "decrypt"):
            ours, theirs = a[f"stella_{op}"], a[f"age_{op}"]
            ratio = theirs / ours
            print(
                f"{op}: stella {mb / ours:7.1f} MB/s   age CLI {mb / theirs:7.1f} MB/s   "
                f"stella/age {ratio:.2f}x  (target >= 0.8x)  {'OK' if ratio >= 0.8 else 'MISSES target'}"
            )


if __name__ == "__main__":
    main()
