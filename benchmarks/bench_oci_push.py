"""OCI push benchmark: stella's registry client pushing one large blob, against `skopeo copy` of the same bytes.

Starts Debian's docker-registry on 127.0.0.1 (a scratch root), writes a file of random bytes, then in the same run:

- stella: ``RegistryClient.push_blob`` (chunked, 8 MiB chunks streamed in 1 MiB pieces) in a child process;
- skopeo: ``skopeo copy oci:LAYOUT docker://...`` of a one-layer OCI layout whose layer is the same file.

Each child's peak RSS comes from ``wait4``; throughput is file size over wall time. The stella figure shows that
memory stays flat whatever the blob's size (the layer is never held in memory).

    python benchmarks/bench_oci_push.py [--size-mb 1024] [--workdir .bench-oci]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from adapters.oci.client import RegistryClient
host, repo, path, digest, size = sys.argv[2], sys.argv[3], Path(sys.argv[4]), sys.argv[5], int(sys.argv[6])
with RegistryClient(host, plain_http=True) as client:
    print(client.push_blob(repo, path, digest, size).how)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _measure(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[0]} failed")
    return elapsed, usage.ru_maxrss / 1024


def _layout(folder: Path, blob: Path, digest: str, size: int) -> None:
    """A one-layer OCI layout whose layer is ``blob`` (hard-linked, not copied)."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    os.link(blob, blobs / digest.removeprefix("sha256:"))
    config = b"{}"
    (blobs / hashlib.sha256(config).hexdigest()).write_bytes(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.stellaops.bundle.v1",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": f"sha256:{hashlib.sha256(config).hexdigest()}",
                "size": len(config),
            },
            "layers": [{"mediaType": "application/octet-stream", "digest": digest, "size": size}],
        }
    ).encode()
    mdigest = hashlib.sha256(manifest).hexdigest()
    (blobs / mdigest).write_bytes(manifest)
    (folder / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": f"sha256:{mdigest}",
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": "bench"},
            }
        ],
    }
    (folder / "index.json").write_text(json.dumps(index))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--workdir", type=Path, default=Path(".bench-oci"))
    args = parser.parse_args()
    registry, skopeo = shutil.which("docker-registry"), shutil.which("skopeo")
    if registry is None or skopeo is None:
        raise SystemExit("needs docker-registry and skopeo (apt-get install docker-registry skopeo)")
    work = args.workdir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    blob = work / "blob"
    digest = hashlib.sha256()
    with blob.open("wb") as fh:
        for _ in range(args.size_mb):
            piece = os.urandom(1 << 20)
            digest.update(piece)
            fh.write(piece)
    size, hexdigest = args.size_mb << 20, f"sha256:{digest.hexdigest()}"
    port = _free_port()
    config = work / "registry.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {work / 'root'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    server = subprocess.Popen([registry, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        host = f"127.0.0.1:{port}"
        cmd = [sys.executable, "-c", CHILD, str(ROOT), host, "bench/stella", str(blob), hexdigest, str(size)]
        stella_s, stella_rss = _measure(cmd)
        _layout(work / "layout", blob, hexdigest, size)
        skopeo_s, skopeo_rss = _measure(
            [skopeo, "copy", "--dest-tls-verify=false", f"oci:{work / 'layout'}:bench", f"docker://{host}/bench/skopeo"]
        )
        mb = size / (1 << 20)
        print(f"blob: {mb:.0f} MiB")
        print(f"stella push: {stella_s:6.1f} s  {mb / stella_s:7.1f} MiB/s  peak RSS {stella_rss:6.1f} MiB")
        print(f"skopeo copy: {skopeo_s:6.1f} s  {mb / skopeo_s:7.1f} MiB/s  peak RSS {skopeo_rss:6.1f} MiB")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
