"""`stella serve`: the local HTTP API (FastAPI on uvicorn), on 127.0.0.1 unless told otherwise, and then over TLS.

FastAPI and uvicorn are imported only here (and by :mod:`app.api`), only when the server starts, so the start-up
of every other command does not pay for them.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from core.errors import BadInputError, UsageError
from core.home import resolve_home

HELP = "serve the local HTTP API (tokens from `stella token create`) on 127.0.0.1, or over TLS elsewhere"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "serve",
        parents=[common],
        help=HELP,
        description="Serve the local HTTP API of this home: export profiles and runs, downloads with Range, "
        "verification, the OpenAPI document at /.well-known/openapi, /health/ready and /metrics. Every request but "
        "health and the OpenAPI document needs a token from `stella token create`. It listens on 127.0.0.1 by "
        "default; any other address needs --tls-cert and --tls-key. The first line on stdout is the URL it "
        "listens on. Ctrl-C stops it. Exit codes: 2 bad address or missing TLS, 3 unreadable TLS files, "
        "8 the port cannot be bound or a --distribute-dir is not a directory.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8470, help="port (0: any free port; default 8470)")
    p.add_argument("--tls-cert", type=Path, metavar="FILE", help="PEM certificate chain (required off loopback)")
    p.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM private key of --tls-cert")
    p.add_argument(
        "--schedule-interval",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how often the server fires due schedules, as `stella schedule run-due` does (0: never; default 60)",
    )
    p.add_argument(
        "--distribute-dir",
        type=Path,
        action="append",
        default=None,
        metavar="DIR",
        help="the only directory (with its subdirectories) an API distribution may copy a bundle into; repeat for "
        "more (default: any absolute directory outside the home)",
    )
    p.set_defaults(handler=run)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_tls(host: str, cert: Path | None, key: Path | None) -> tuple[Path, Path] | None:
    """The TLS files to serve with; refuses a non-loopback address without them (exit 2)."""
    if (cert is None) != (key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    if cert is None or key is None:
        if not is_loopback(host):
            raise UsageError(
                f"refusing to listen on {host} without TLS: the API is plain HTTP only on loopback",
                hint="give --tls-cert FILE --tls-key FILE, or listen on 127.0.0.1",
            )
        return None
    for path in (cert, key):
        if not path.is_file():
            raise BadInputError("TLS file not found or not a regular file", path=str(path))
    return cert, key


def _distribute_dirs(given: list[Path] | None) -> list[Path] | None:
    """The ``--distribute-dir`` directories, absolute and resolved; each must exist (exit 8 otherwise)."""
    if not given:
        return None
    from core.errors import EnvironmentFailure

    dirs = []
    for path in given:
        resolved = path.expanduser().resolve()
        if not resolved.is_dir():
            raise EnvironmentFailure("--distribute-dir is not a directory", path=str(path))
        dirs.append(resolved)
    return dirs


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        from core.errors import EnvironmentFailure

        raise EnvironmentFailure(f"cannot listen on {host}:{port}: {exc.strerror}", hint="try --port 0") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def run(args: argparse.Namespace) -> int:
    tls = check_tls(args.host, args.tls_cert, args.tls_key)
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a port number")
    if not 0 <= args.schedule_interval <= 86400:
        raise UsageError(f"--schedule-interval {args.schedule_interval} is not between 0 and 86400 seconds")
    home = resolve_home(args.home)
    distribute_dirs = _distribute_dirs(args.distribute_dir)
    import uvicorn

    from app.api.server import create_app

    app = create_app(home, distribute_dirs=distribute_dirs)
    sock = _listen(args.host, args.port)
    port = sock.getsockname()[1]
    scheme = "https" if tls else "http"
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"{scheme}://{shown}:{port}/", flush=True)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    api_log = logging.getLogger("stella.api")
    api_log.addHandler(handler)
    api_log.setLevel(logging.INFO)
    config = uvicorn.Config(
        app,
        http="h11",
        loop="asyncio",
        lifespan="off",
        log_level="warning",
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    stop = threading.Event()
    if args.schedule_interval > 0:
        ticker = threading.Thread(
            target=_fire_schedules, args=(app, args.schedule_interval, stop), name="stella-schedules", daemon=True
        )
        ticker.start()
    try:
        server.run(sockets=[sock])
    finally:
        stop.set()
        sock.close()
    return 0


def _fire_schedules(app: Any, interval: float, stop: threading.Event) -> None:
    """Every ``interval`` seconds, the due schedules are fired in the server's build worker (one build at a time)."""
    while not stop.wait(interval):
        app.state.runs.fire_schedules()
