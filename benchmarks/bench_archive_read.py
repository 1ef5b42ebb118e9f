"""Bundle read benchmark: SafeArchiveReader hashing every member of a ~1 GB .tar.zst.

The same-run baseline is the floor any verifier pays on this machine: `zstd -d -c | openssl dgst -sha256`
over the same file (decompress and hash the whole tar stream, with no parsing and no checks). Figures are
uncompressed MB per second; the ratio says how much the fail-closed, pure-Python tar parsing costs.

    python benchmarks/bench_archive_read.py [--size-mb 1024] [--workdir .bench]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.archive.reader import SafeArchiveReader
from core.archive.writer import ArchiveEntry, write_archive

MTIME = 1_700_000_000
FILE_MB = 64


def _payload_file(path: Path, megabytes: int, seed: int) -> None:
    """JSON lines that compress roughly like real advisory feeds (about 5-8x), written in chunks."""
    noise = hashlib.sha256(str(seed).encode()).hexdigest()
    written = 0
    target = megabytes << 20
    i = 0
    with path.open("wb") as fh:
        while written < target:
            lines = []
            for _ in range(2000):
                i += 1
                token = hashlib.blake2b(f"{seed}-{i}".encode(), digest_size=12).hexdigest()
                lines.append(
                    b'{"id":"GHSA-%s","modified":"2024-0%d-1%dT00:00:00Z","affected":[{"package":{"ecosystem":'
                    b'"PyPI","name":"pkg-%d"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},'
                    b'{"fixed":"%d.%d.%d"}]}]}],"aliases":["CVE-2024-%05d"],"ref":"%s"}\n'
                    % (token.encode(), i % 9 + 1, i % 10, i % 5000, i % 7, i % 13, i % 31, i % 99999, noise.encode())
                )
            block = b"".join(lines)
            fh.write(block)
            written += len(block)


def build(workdir: Path, size_mb: int, level: int) -> Path:
    out = workdir / f"bundle-{size_mb}mb.tar.zst"
    if out.exists():
        return out
    src = workdir / "src"
    src.mkdir(parents=True, exist_ok=True)
    entries = [ArchiveEntry("export.json", b'{"schema":"bench"}')]
    for n in range(max(1, size_mb // FILE_MB)):
        path = src / f"part-{n:03d}.jsonl"
        _payload_file(path, min(FILE_MB, size_mb), n)
        entries.append(ArchiveEntry(f"data/{path.name}", path))
    start = time.perf_counter()
    write_archive(out, entries, mtime=MTIME, compression="zstd", level=level)
    print(f"built {out} ({out.stat().st_size / 1e6:.1f} MB at zstd -{level}) in {time.perf_counter() - start:.1f}s")
    shutil.rmtree(src)
    return out


def read_with_reader(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    total = 0
    with SafeArchiveReader(path) as reader:
        for member in reader:
            digest = hashlib.sha256()
            with member.stream() as src:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
            total += member.size
    return time.perf_counter() - start, total


def read_with_tools(path: Path) -> float:
    zstd, openssl = shutil.which("zstd"), shutil.which("openssl")
    if not zstd or not openssl:
        raise SystemExit("zstd and openssl are needed for the baseline")
    start = time.perf_counter()
    dec = subprocess.Popen([zstd, "-q", "-d", "-c", str(path)], stdout=subprocess.PIPE)
    subprocess.run([openssl, "dgst", "-sha256"], stdin=dec.stdout, check=True, stdout=subprocess.DEVNULL)
    assert dec.stdout is not None
    dec.stdout.close()
    if dec.wait() != 0:
        raise SystemExit("zstd -d failed")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--level", type=int, default=3, help="zstd level used to build the test bundle")
    ap.add_argument("--workdir", type=Path, default=Path(".bench"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    bundle = build(args.workdir, args.size_mb, args.level)
    ours, payload = read_with_reader(bundle)
    base = read_with_tools(bundle)
    # Both sides decompress the same stream; MB/s is counted in payload megabytes for both.
    tar_bytes = payload
    print(f"cpu cores: {os.cpu_count()}; payload {payload / 1e6:.0f} MB, archive {bundle.stat().st_size / 1e6:.0f} MB")
    print(f"SafeArchiveReader + sha256 per member : {ours:6.2f}s  {tar_bytes / 1e6 / ours:7.1f} MB/s")
    print(f"zstd -d -c | openssl dgst -sha256     : {base:6.2f}s  {tar_bytes / 1e6 / base:7.1f} MB/s")
    print(f"ratio (ours / tools time)             : {ours / base:6.2f}x")


if __name__ == "__main__":
    main()
