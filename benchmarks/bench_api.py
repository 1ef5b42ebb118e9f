"""Local API load benchmark: N concurrent clients against `stella serve`, and a static-file baseline, on loopback.

Setup: a fresh home with the samples imported into one tenant, a signing key, a token minted by `stella token
create`. Then, each server a child process so its peak RSS (VmHWM) is its own:

- ``stella serve --port 0``: each client loops until the time is up: ``POST /api/v1/export/runs`` (json:raw), reads
  the run's ``/events`` stream to its end, ``GET`` the run (it must have ended), downloads the bundle and checks its
  sha256 against ``X-Export-Digest``. A client that is mid-run when the time is up finishes that run. At the end
  every run created must be listed by the API as ended, succeeded, and none may be missing.
- the same-run baseline: uvicorn serving the same bundle file through a bare Starlette ``FileResponse`` (no tokens,
  no store, no app logic), the same clients downloading it for the same time.

Figures: requests/s, p50/p95 latency (the SSE streams are counted as requests but not in the latencies, as a stream
lasts as long as its run's build), the download latencies on their own (like for like with the baseline), and each
server's peak RSS; then the API's figures as ratios of the baseline's. Builds run one at a time in the server's one
worker, so runs created per second is bounded by the build time, whatever N.

    python benchmarks/bench_api.py [--quick] [--clients 8] [--seconds 20] [--max-rss-mb 1024]

Loopback only; at most 32 clients and 120 s. ``--quick`` is 4 clients for 6 s. Exit status 1 when a run is lost,
did not succeed, a digest differs, or the server's peak RSS is over ``--max-rss-mb``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
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
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip().rstrip("/")
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

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise SystemExit("no VmHWM in /proc: peak RSS is measured on Linux only")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


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


def static_client(url: str, deadline: float, tally: Tally) -> None:
    with httpx.Client(timeout=300) as client:
        while time.monotonic() < deadline:
            got = tally.timed(client, "GET", f"{url}/bundle", download=True)
            if got.status_code != 200:
                tally.problem(f"static GET: {got.status_code}")
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


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def row(name: str, tally: Tally, wall: float, rss: float) -> dict[str, float]:
    figures = {
        "rps": tally.requests / wall,
        "p50": pct(tally.latencies, 50),
        "p95": pct(tally.latencies, 95),
        "dl50": pct(tally.downloads, 50),
        "dl95": pct(tally.downloads, 95),
        "rss": rss,
    }
    print(
        f"{name:<22} {tally.requests:>6} req in {wall:5.1f} s  {figures['rps']:8.1f} req/s"
        f"  p50 {figures['p50']:7.1f} ms  p95 {figures['p95']:7.1f} ms"
        f"  download p50 {figures['dl50']:7.1f} ms  p95 {figures['dl95']:7.1f} ms  peak RSS {rss:6.1f} MB"
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 clients for 6 s")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-rss-mb", type=float, default=1024.0, help="the server's memory bound (default 1024)")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.seconds = 4, 6.0
    if not 1 <= args.clients <= 32 or not 0 < args.seconds <= 120:
        parser.error("--clients is 1 to 32 and --seconds at most 120")

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        home = Path(tmp) / "home"
        cli(
            home,
            "import",
            "--quiet",
            "--tenant",
            TENANT,
            *[str(p) for p in sorted((ROOT / "samples").iterdir()) if p.is_dir()],
        )
        cli(home, "keys", "generate", "k")
        token = cli(home, "token", "create", "--tenant", TENANT, "--scope", "export:run", "--scope", "export:read",
                    "--scope", "export:download", "--ttl", "1h").strip().splitlines()[-1]  # fmt: skip
        env = dict(
            os.environ,
            STELLA_HOME=str(home),
            STELLA_MAX_ACTIVE_RUNS=str(args.clients),
            STELLA_MAX_TENANT_BYTES=str(1 << 40),
        )
        print(f"{args.clients} clients for {args.seconds:g} s each, loopback; builds run one at a time in the server")

        server = Served([sys.executable, "-c", MAIN, "serve", "--port", "0", "--schedule-interval", "0"], env)
        try:
            tally, wall = drive(args.clients, args.seconds, api_client, server.url, token)
            with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
                listed = client.get(f"{server.url}/api/v1/export/runs", params={"limit": 500}).json()["runs"]
            rss = server.peak_rss_mb()
        finally:
            server.stop()
        api = row("stella serve", tally, wall, rss)
        states = {r["id"]: r["status"] for r in listed}
        lost = [r for r in tally.created if r not in states]
        unfinished = [r for r in tally.created if states.get(r) not in (None, "succeeded")]
        print(
            f"runs created {len(tally.created)}, listed {len(states)}, succeeded"
            f" {sum(1 for r in tally.created if states.get(r) == 'succeeded')}, lost {len(lost)},"
            f" not succeeded {len(unfinished)}"
        )

        bundles = sorted((home / "exports").glob("*.tar.zst"))
        if not bundles:
            print("no bundle was built: no baseline", file=sys.stderr)
            return 1
        static = Served([sys.executable, "-c", STATIC_APP, str(bundles[0])], dict(os.environ))
        try:
            base_tally, base_wall = drive(args.clients, args.seconds, static_client, static.url)
            base_rss = static.peak_rss_mb()
        finally:
            static.stop()
        base = row("static FileResponse", base_tally, base_wall, base_rss)
        print(f"bundle {bundles[0].stat().st_size} bytes")
        print(
            f"ratio api/static: req/s {api['rps'] / base['rps']:.3f}, download p50 {api['dl50'] / base['dl50']:.2f}x,"
            f" download p95 {api['dl95'] / base['dl95']:.2f}x, peak RSS {api['rss'] / base['rss']:.2f}x"
        )

        failures = tally.problems + base_tally.problems
        if lost or unfinished or not tally.created:
            failures.append(f"{len(lost)} runs lost, {len(unfinished)} did not succeed, {len(tally.created)} created")
        if rss > args.max_rss_mb:
            failures.append(f"the server's peak RSS {rss:.1f} MB is over {args.max_rss_mb:g} MB")
        for failure in failures:
            print(f"FAIL: {failure}", file=sys.stderr)
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
