"""Local API load benchmark: N concurrent clients against `stella serve`, and a static-file baseline, on loopback.

Setup: a fresh home with the samples imported into one tenant, a signing key, a token minted by `stella token
create`. Then, each server a child process so its peak RSS (VmHWM) is its own:

- ``stella serve --port 0``, two phases of ``--seconds`` each on the same server:
  1. *workflow*: each client loops: ``POST /api/v1/export/runs`` (json:raw), reads the run's ``/events`` stream to its
     end, ``GET`` the run (it must have ended), downloads the bundle and checks its sha256 against
     ``X-Export-Digest``. A client that is mid-run when the time is up finishes that run. At the end every run
     created must be listed by the API as succeeded, and none may be missing ("runs lost").
  2. *downloads*: each client loops ``GET /api/v1/export/runs/{id}/download`` of one finished run (token, tenant,
     store lookup, digest headers), checking the digest: the like-for-like twin of the baseline.
- the same-run baseline: uvicorn serving the same bundle file through a bare Starlette ``FileResponse`` (no tokens,
  no store, no app logic), the same clients downloading it for the same time (and checking its digest too).

Then one run is verified (``POST /api/v1/verify``): when the streamed report's first check line and its result
line arrive, and how long the one-document form takes.

Figures: requests/s, p50/p95 latency (the SSE streams of the workflow are counted as requests but not in the
latencies, as a stream lasts as long as its run's build) and each server's peak RSS; the ratios API/baseline for the
downloads (like for like) and for the workflow; the memory bound and runs lost. The workflow's rate is bounded by the
builds, which run one at a time in the server's one worker (each client waits for its run before downloading), not
by the HTTP layer: the downloads phase is the comparison with the baseline. ``--corpus ZIP`` imports that corpus
(``benchmarks/osv_corpus.py``) instead of the samples, for bigger bundles and builds.

    python benchmarks/bench_api.py [--quick] [--clients 8] [--seconds 20] [--max-rss-mb 1024] [--profile FILE]
                                   [--corpus .bench/osv-all-20000.zip]

Loopback only; at most 32 clients and 120 s a phase. ``--quick`` is 4 clients for 6 s. ``--profile FILE`` records
the API server with py-spy (a speedscope JSON). Exit status 1 when a run is lost, did not succeed, a digest
differs, or the server's peak RSS is over ``--max-rss-mb``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
MAIN = "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))"
TENANT = "bench"
STATIC_APP = """
import socket, sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import FileResponse
from starlette.routing import Route

path = sys.argv[1]

async def bundle(request):
    return FileResponse(path, media_type="application/zstd")

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)
print(f"http://127.0.0.1:{sock.getsockname()[1]}/", flush=True)
app = Starlette(routes=[Route("/bundle", bundle)])
uvicorn.Server(uvicorn.Config(app, http="h11", loop="asyncio", lifespan="off", log_level="warning")).run(
    sockets=[sock]
)
"""


def cli(home: Path, *args: str) -> str:
    env = dict(os.environ, STELLA_HOME=str(home))
    done = subprocess.run([sys.executable, "-c", MAIN, *args], capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"stella {' '.join(args)}: exit {done.returncode}\n{done.stderr}")
    return done.stdout


class Served:
    """A server child process: the address it prints on its first line, and its peak RSS from /proc."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        assert self.proc.stdout is not None
        self.url = ""
        for line in self.proc.stdout:  # the server's first line (py-spy's banner may come around it)
            if not line.startswith("py-spy>") and line.strip():
                self.url = line.strip().rstrip("/")
                break
        if not self.url.startswith("http://127.0.0.1:"):
            raise SystemExit(f"the server printed no loopback address: {self.url!r}")
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url + "/health/ready", timeout=5)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def server_pid(self) -> int:
        if self.argv[0].endswith("py-spy"):  # the server is py-spy's child
            return int(Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()[0])
        return self.proc.pid

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.server_pid()}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise SystemExit("no VmHWM in /proc: peak RSS is measured on Linux only")

    def stop(self) -> None:
        os.kill(self.server_pid(), signal.SIGTERM)  # under py-spy, it writes its profile once the server ended
        self.proc.wait(timeout=60)


@dataclass
class Tally:
    """What the clients saw, shared between their threads."""

    requests: int = 0
    latencies: list[float] = field(default_factory=list)
    downloads: list[float] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(
        self, client: httpx.Client, method: str, url: str, *, download: bool = False, **kw: Any
    ) -> httpx.Response:
        start = time.perf_counter()
        response = client.request(method, url, **kw)
        took = time.perf_counter() - start
        with self.lock:
            self.requests += 1
            self.latencies.append(took)
            if download:
                self.downloads.append(took)
        return response

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


def api_client(url: str, token: str, deadline: float, tally: Tally) -> None:
    runs = f"{url}/api/v1/export/runs"
    body = {"profile": "json:raw", "selectors": {}, "options": {"key": "k"}}
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=300) as client:
        while time.monotonic() < deadline:
            created = tally.timed(client, "POST", runs, json=body)
            if created.status_code != 202:
                tally.problem(f"POST runs: {created.status_code} {created.text[:200]}")
                return
            run_id = created.json()["id"]
            with tally.lock:
                tally.created.append(run_id)
            with client.stream("GET", f"{runs}/{run_id}/events") as stream:
                for _ in stream.iter_bytes():
                    pass
            with tally.lock:
                tally.requests += 1
            view = tally.timed(client, "GET", f"{runs}/{run_id}")
            if view.json().get("status") != "succeeded":
                tally.problem(f"run {run_id} ended {view.json().get('status')} after its events stream closed")
                continue
            got = tally.timed(client, "GET", f"{runs}/{run_id}/download", download=True)
            digest = "sha256:" + hashlib.sha256(got.content).hexdigest()
            if got.status_code != 200 or got.headers.get("x-export-digest") != digest:
                tally.problem(f"download of {run_id}: {got.status_code}, digest {digest}")


def verify_timing(url: str, token: str, run_id: str) -> dict[str, float]:
    """``POST /api/v1/verify`` of one run: when its first check line and its result line arrive (streamed), and how
    long the one-document form takes; fails the benchmark if the run does not verify."""
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=auth, timeout=600) as client:
        start = time.perf_counter()
        first = last = 0.0
        checks = 0
        with client.stream("POST", f"{url}/api/v1/verify", json={"run": run_id}) as response:
            for line in response.iter_lines():
                item = json.loads(line)
                if item["type"] == "check":
                    checks += 1
                    first = first or (time.perf_counter() - start) * 1000
                else:
                    last = (time.perf_counter() - start) * 1000
                    if not item.get("verified"):
                        raise SystemExit(f"run {run_id} did not verify: {item}")
        start = time.perf_counter()
        whole = client.post(f"{url}/api/v1/verify", json={"run": run_id}, headers={"Accept": "application/json"})
        document = (time.perf_counter() - start) * 1000
        if whole.status_code != 200 or not whole.json().get("verified"):
            raise SystemExit(f"run {run_id} did not verify as one document: {whole.text[:300]}")
    return {"first": first, "last": last, "checks": checks, "document": document}


def download_client(url: str, token: str, run_id: str, digest: str, deadline: float, tally: Tally) -> None:
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=300) as client:
        while time.monotonic() < deadline:
            got = tally.timed(client, "GET", f"{url}/api/v1/export/runs/{run_id}/download", download=True)
            if got.status_code != 200 or got.headers.get("x-export-digest") != digest:
                tally.problem(f"download of {run_id}: {got.status_code} {got.headers.get('x-export-digest')}")
                return
            if "sha256:" + hashlib.sha256(got.content).hexdigest() != digest:
                tally.problem(f"download of {run_id}: the bytes are not {digest}")
                return


def static_client(url: str, digest: str, deadline: float, tally: Tally) -> None:
    with httpx.Client(timeout=300) as client:
        while time.monotonic() < deadline:
            got = tally.timed(client, "GET", f"{url}/bundle", download=True)
            if got.status_code != 200 or "sha256:" + hashlib.sha256(got.content).hexdigest() != digest:
                tally.problem(f"static GET: {got.status_code}, or the bytes are not {digest}")
                return


def drive(clients: int, seconds: float, target: Any, *args: Any) -> tuple[Tally, float]:
    tally = Tally()
    start = time.monotonic()
    threads = [threading.Thread(target=target, args=(*args, start + seconds, tally)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally, time.monotonic() - start


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def row(name: str, tally: Tally, wall: float) -> dict[str, float]:
    figures = {
        "rps": tally.requests / wall,
        "p50": pct(tally.latencies, 50),
        "p95": pct(tally.latencies, 95),
        "dl50": pct(tally.downloads, 50),
        "dl95": pct(tally.downloads, 95),
    }
    print(
        f"{name:<30} {tally.requests:>6} req in {wall:5.1f} s  {figures['rps']:8.1f} req/s"
        f"  p50 {figures['p50']:7.1f} ms  p95 {figures['p95']:7.1f} ms"
        f"  (downloads p50 {figures['dl50']:6.1f} ms, p95 {figures['dl95']:6.1f} ms)"
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 clients for 6 s")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-rss-mb", type=float, default=1024.0, help="the server's memory bound (default 1024)")
    parser.add_argument("--profile", type=Path, metavar="FILE", help="record the API server with py-spy into FILE")
    parser.add_argument(
        "--corpus", type=Path, metavar="ZIP", help="import this (e.g. .bench/osv-all-20000.zip) instead of samples/"
    )
    args = parser.parse_args()
    if args.quick:
        args.clients, args.seconds = 4, 6.0
    if not 1 <= args.clients <= 32 or not 0 < args.seconds <= 120:
        parser.error("--clients is 1 to 32 and --seconds at most 120")

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        home = Path(tmp) / "home"
        sources = (
            [str(args.corpus)] if args.corpus else [str(p) for p in sorted((ROOT / "samples").iterdir()) if p.is_dir()]
        )
        cli(home, "import", "--quiet", "--tenant", TENANT, *sources)
        cli(home, "keys", "generate", "k")
        token = cli(home, "token", "create", "--tenant", TENANT, "--scope", "export:run", "--scope", "export:read",
                    "--scope", "export:download", "--ttl", "1h").strip().splitlines()[-1]  # fmt: skip
        env = dict(
            os.environ,
            STELLA_HOME=str(home),
            STELLA_MAX_ACTIVE_RUNS=str(args.clients),
            STELLA_MAX_TENANT_BYTES=str(1 << 40),
        )
        print(
            f"{args.clients} clients, {args.seconds:g} s a phase, loopback; load average"
            f" {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
        )
        serve = [sys.executable, "-c", MAIN, "serve", "--port", "0", "--schedule-interval", "0"]
        if args.profile is not None:
            spy = Path(sys.executable).parent / "py-spy"
            serve = [str(spy), "record", "--format", "speedscope", "-o", str(args.profile), "--", *serve]
        server = Served(serve, env)
        try:
            work, work_wall = drive(args.clients, args.seconds, api_client, server.url, token)
            with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
                listed = client.get(f"{server.url}/api/v1/export/runs", params={"limit": 500}).json()["runs"]
                done = next(r for r in listed if r["status"] == "succeeded")
                digest = "sha256:" + done["artifact"]["sha256"]
            reads, reads_wall = drive(
                args.clients, args.seconds, download_client, server.url, token, done["id"], digest
            )
            verified = verify_timing(server.url, token, done["id"])
            rss = server.peak_rss_mb()
        finally:
            server.stop()
        states = {r["id"]: r["status"] for r in listed}
        lost = [r for r in work.created if r not in states]
        unfinished = [r for r in work.created if states.get(r) not in (None, "succeeded")]
        bundle = next(p for p in sorted((home / "exports").rglob("*.tar.zst")) if "sha256:" + sha256_file(p) == digest)

        static = Served([sys.executable, "-c", STATIC_APP, str(bundle)], dict(os.environ))
        try:
            base_tally, base_wall = drive(args.clients, args.seconds, static_client, static.url, digest)
            base_rss = static.peak_rss_mb()
        finally:
            static.stop()

        print(f"bundle {bundle.stat().st_size} bytes")
        api = row("stella serve: downloads", reads, reads_wall)
        flow = row("stella serve: workflow", work, work_wall)
        base = row("static FileResponse", base_tally, base_wall)
        print(f"peak RSS: stella serve {rss:.1f} MB, static {base_rss:.1f} MB ({rss / base_rss:.2f}x)")
        print(
            f"ratio stella/static, downloads: req/s {api['rps'] / base['rps']:.3f},"
            f" p50 {api['p50'] / base['p50']:.2f}x, p95 {api['p95'] / base['p95']:.2f}x"
        )
        print(
            f"ratio stella/static, workflow: req/s {flow['rps'] / base['rps']:.3f} (bounded by builds,"
            f" {len(work.created) / work_wall:.2f} runs/s built one at a time)"
        )
        print(
            f"runs created {len(work.created)}, listed {len(states)}, succeeded"
            f" {sum(1 for r in work.created if states.get(r) == 'succeeded')}, not succeeded {len(unfinished)}"
        )
        print(
            f"verify one run: streamed, first check line after {verified['first']:.1f} ms, result after"
            f" {verified['last']:.1f} ms ({verified['checks']} checks); one JSON document {verified['document']:.1f} ms"
        )
        print(f"runs lost: {len(lost)}")
        within = rss <= args.max_rss_mb
        verdict = f"<= {args.max_rss_mb:g} MB: ok" if within else f"> {args.max_rss_mb:g} MB: OVER"
        print(f"memory bound: peak RSS {rss:.1f} MB {verdict}")

        failures = work.problems + reads.problems + base_tally.problems
        if lost or unfinished or not work.created:
            failures.append(f"{len(lost)} runs lost, {len(unfinished)} did not succeed, {len(work.created)} created")
        if not within:
            failures.append(f"the server's peak RSS {rss:.1f} MB is over {args.max_rss_mb:g} MB")
        for failure in failures:
            print(f"FAIL: {failure}", file=sys.stderr)
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
