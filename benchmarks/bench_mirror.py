"""Mirror benchmark: mirror:full against `zstd` on the same bytes, a 1% delta, an encrypted bundle's size, and age.

Targets (issue 20, and issue 4 before it):
  (a) mirror:full of an N-advisory store (default 200,000; ``--quick``: 20,000) within 2x of its floor, the same
      run's `zstd -<level> --single-thread` over the bundle's own tar (the bytes the archive step compressed).
  (b) mirror:delta for a 1% change within 3% of the full build's time and of its size. The change is 1% of the
      advisories re-issued as new revisions (a later ``modified`` and a changed summary), imported, then exported
      as a delta against the full bundle's run. Another 1% is then exported as a delta on that delta (its base's
      state record is chained), and shown beside it.
  (c) an age-encrypted mirror:full bundle (one X25519 recipient) within 2% of the unencrypted one's size:
      payload files are compressed, then encrypted.
  (d) ``--only age``: encryption and decryption at no less than 0.8x the `age` CLI's throughput on the same
      payload (1 GiB by default) in the same run, through ``core.age_stream`` as the bundle writer and the mirror
      import call it; every output is decrypted back and its sha256 compared. Best of ``--repeat`` runs.

    python benchmarks/bench_mirror.py [--n 200000 | --quick] [--age-bytes 1073741824] [--only build|age]

``STELLA_BENCH_N`` sets the default of ``--n``. Work files go under ``--workdir`` (default ``.bench``). Each stella
command runs as a child process; its wall time and peak RSS are its own.
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
LEVEL = 9  # mirror:full's compression_level (the default profile)


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, str, float]:
    """(wall seconds, stdout, peak RSS in MB) of one child command."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        # `stella import` exits 3 when some input was rejected; a bench corpus has none, so any non-zero is fatal.
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed: {err.read().decode()[-2000:]}")
    return elapsed, out, usage.ru_maxrss / 1024


def _zstd_floor(bundle: Path, work: Path, level: int) -> float:
    """Seconds of `zstd -<level> --single-thread` over the bundle's own tar (page cache warm)."""
    tar = work / "floor.tar"
    subprocess.run(["zstd", "-q", "-d", "-f", "-o", str(tar), str(bundle)], check=True)
    subprocess.run(["cat", str(tar)], check=True, stdout=subprocess.DEVNULL)
    start = time.perf_counter()
    subprocess.run(
        ["zstd", "-q", f"-{level}", "--single-thread", "-c", str(tar)], check=True, stdout=subprocess.DEVNULL
    )
    elapsed = time.perf_counter() - start
    tar.unlink()
    return elapsed


def _revisions(corpus: Path, out: Path, every: int, offset: int = 0, modified: str = "2027-01-01T00:00:00Z") -> int:
    """Write every ``every``-th advisory of ``corpus`` (from ``offset``) again as a new revision into the zip ``out``,
    modified at ``modified`` (after every generated record's modified date)."""
    n = 0
    with zipfile.ZipFile(corpus) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as dst:
        for i, info in enumerate(src.infolist()):
            if i % every != offset:
                continue
            doc = json.loads(src.read(info))
            doc["modified"] = modified
            doc["summary"] = f"{doc['summary'].rstrip('.')} (revised)."
            dst.writestr(info.filename, json.dumps(doc, indent=2))
            n += 1
    return n


def bench_build(n: int, workdir: Path) -> dict[str, float]:
    corpus = workdir / f"osv-all-{n}.zip"
    if not corpus.exists():
        write_all_zip(corpus, n)
    changes = workdir / f"osv-revised-{n}.zip"
    changed = _revisions(corpus, changes, 100)
    changes2 = workdir / f"osv-revised2-{n}.zip"
    _revisions(corpus, changes2, 100, 50, "2027-02-01T00:00:00Z")
    home = Path(tempfile.mkdtemp(prefix="stella-bench-mirror-", dir=workdir))
    env = dict(os.environ, STELLA_HOME=str(home))
    try:
        t_import, _, _ = _run([STELLA, "import", "--quiet", str(corpus)], env)
        _run([STELLA, "keys", "generate", "bench"], env)
        _run([STELLA, "tuf", "init", "--key", "bench"], env)
        full = home / "full.tar.zst"
        export = [STELLA, "export", "run", "--profile", "mirror:full", "--key", "bench"]
        t_full, out, rss_full = _run([*export, "--out", str(full), "--json"], env)
        full_run = json.loads(out)["runId"]
        floor = _zstd_floor(full, home, LEVEL)
        keygen = subprocess.run(["age-keygen"], capture_output=True, text=True, check=True).stdout
        recipient = next(line.split(": ")[1] for line in keygen.splitlines() if line.startswith("# public key: "))
        sealed = home / "sealed.tar.zst"
        t_sealed, _, _ = _run([*export, "--out", str(sealed), "--recipient", recipient], env)
        t_changes, _, _ = _run([STELLA, "import", "--quiet", str(changes)], env)
        delta = home / "delta.tar.zst"
        delta_cmd = [STELLA, "export", "run", "--profile", "mirror:delta", "--key", "bench", "--base", full_run]
        t_delta, out, rss_delta = _run([*delta_cmd, "--out", str(delta), "--json"], env)
        _, report, _ = _run([STELLA, "verify", str(delta), "--key", str(home / "keys" / "bench.pub"), "--json"], env)
        counts = json.loads(report)["manifest"]["counts"]
        delta_run = json.loads(out)["runId"]
        full_size, delta_size, sealed_size = full.stat().st_size, delta.stat().st_size, sealed.stat().st_size
        # A second 1% on the first delta: its base is a chained state record (the first delta's puts and removals).
        _run([STELLA, "import", "--quiet", str(changes2)], env)
        delta2 = home / "delta2.tar.zst"
        delta2_cmd = [*delta_cmd[:-1], delta_run, "--out", str(delta2)]
        t_delta2, _, _ = _run(delta2_cmd, env)
        delta2_size = delta2.stat().st_size
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
        "full_rss": rss_full,
        "floor_s": floor,
        "delta_s": t_delta,
        "delta_rss": rss_delta,
        "delta2_s": t_delta2,
        "delta2_bytes": delta2_size,
        "sealed_s": t_sealed,
        "full_bytes": full_size,
        "delta_bytes": delta_size,
        "sealed_bytes": sealed_size,
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
    ap.add_argument("--only", choices=["build", "age"], help="run one part only")
    ap.add_argument("--quick", action="store_true", help="20,000 advisories, and the age part on 64 MiB")
    ap.add_argument("--workdir", type=Path, default=Path(".bench"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.quick:
        args.n, args.age_bytes = 20_000, 64 << 20

    if args.only in (None, "build"):
        load = os.getloadavg()[0]
        d = bench_build(args.n, args.workdir)
        full_ratio = d["full_s"] / d["floor_s"]
        time_ratio, size_ratio = d["delta_s"] / d["full_s"], d["delta_bytes"] / d["full_bytes"]
        sealed_ratio = d["sealed_bytes"] / d["full_bytes"]
        print(f"machine: {os.cpu_count()} cores, load average {load:.1f} at the start")
        print(f"--- mirror, {d['n']:,} advisories (imported in {d['import_s']:.1f} s)")
        print(
            f"mirror:full export:   {d['full_s']:.1f} s, {d['full_bytes'] / 1e6:.2f} MB, "
            f"peak RSS {d['full_rss']:.0f} MB"
        )
        print(f"floor zstd -{LEVEL} -T1:  {d['floor_s']:.1f} s on the same tar (same run)")
        verdict = "OK" if full_ratio <= 2 else "MISSES target"
        print(f"full / floor:         {full_ratio:.2f}x  (target <= 2x)  {verdict}")
        print(
            f"re-issued advisories: {d['changed']:,} (imported in {d['changes_import_s']:.1f} s); "
            f"delta counts: added {d['added']}, removed {d['removed']}"
        )
        print(
            f"mirror:delta export:  {d['delta_s']:.1f} s, {d['delta_bytes'] / 1e6:.3f} MB, "
            f"peak RSS {d['delta_rss']:.0f} MB"
        )
        ok = time_ratio <= 0.03 and size_ratio <= 0.03
        print(
            f"delta / full:         time {time_ratio:.2%}, size {size_ratio:.2%}  (target <= 3% each)  "
            f"{'OK' if ok else 'MISSES target'}"
        )
        print(
            f"1% more, on that delta: {d['delta2_s']:.1f} s, {d['delta2_bytes'] / 1e6:.3f} MB (a chained base); "
            f"time {d['delta2_s'] / d['full_s']:.2%}, size {d['delta2_bytes'] / d['full_bytes']:.2%} of the full build"
        )
        print(f"encrypted mirror:full: {d['sealed_s']:.1f} s, {d['sealed_bytes'] / 1e6:.2f} MB")
        print(
            f"encrypted / plain size: {sealed_ratio:.3f}x  (target <= 1.02x)  "
            f"{'OK' if sealed_ratio <= 1.02 else 'MISSES target'}"
        )

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
