"""The API's app factory: :func:`create_app` wires routes, authentication, problem details and legacy aliases.

Versioned paths live under ``/api/v1``; the seed's un-versioned ``/api/export/...`` and ``/api/verify`` paths are
aliases answered with ``Deprecation``, ``Sunset`` and ``Link`` headers (RFC 9745, RFC 8594), each use logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import __version__
from core.errors import StellaError
from core.home import Home

from . import problems
from .routes import BODY_SCHEMAS, MAX_UPLOAD, authenticate, build_router
from .runs import RunManager
from .store import LINGER, StoreHolder

log = logging.getLogger("stella.api")

API_PREFIX = "/api/v1"
#: Seed paths answered as aliases of their ``/api/v1`` twins until :data:`SUNSET`.
LEGACY_PREFIXES = ("/api/export/", "/api/verify", "/evidence/", "/timeline")
DEPRECATED_AT = 1796083200  # 2026-12-01T00:00:00Z, as an RFC 9651 Date
SUNSET = "Wed, 30 Jun 2027 23:59:59 GMT"
DEPRECATION_DOC = "https://stella.invalid/docs/api#legacy-paths"


#: How a client authenticates (docs/api-auth.md): a token of `stella token create`, as a bearer token, or
#: DPoP-bound (RFC 9449) with a proof of possession of its key on each request.
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "`Authorization: Bearer TOKEN`, a token minted by `stella token create` (scopes, tenant).",
    },
    "dpop": {
        "type": "http",
        "scheme": "DPoP",
        "description": "`Authorization: DPoP TOKEN` for a token bound to a key (`stella token create --dpop-jkt`); "
        "it goes with a `DPoP` proof header (RFC 9449).",
    },
    "dpopProof": {
        "type": "apiKey",
        "in": "header",
        "name": "DPoP",
        "description": "A DPoP proof JWT (RFC 9449) for this request's method and URL, carrying `ath`, the "
        "hash of the token; exactly one per request (two are refused with 401).",
    },
}


class LegacyPaths:
    """ASGI middleware: ``/api/export/...`` is served as ``/api/v1/export/...`` with deprecation headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not any(path == p.rstrip("/") or path.startswith(p) for p in LEGACY_PREFIXES):
            await self.app(scope, receive, send)
            return
        successor = API_PREFIX + path.removeprefix("/api")
        log.warning("deprecated API path %s used; use %s (sunset %s)", path, successor, SUNSET)
        scope = dict(scope, path=successor, raw_path=successor.encode())
        scope.setdefault("state", {})
        scope["state"] = dict(scope["state"], legacy_path=path)  # a DPoP proof names the URL the client used
        extra = [
            (b"deprecation", f"@{DEPRECATED_AT}".encode()),
            (b"sunset", SUNSET.encode()),
            (
                b"link",
                f'<{DEPRECATION_DOC}>; rel="deprecation"; type="text/html", '
                f'<{successor}>; rel="successor-version"'.encode(),
            ),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message, headers=[*message.get("headers", []), *extra])
            await send(message)

        await self.app(scope, receive, send_with_headers)


class VersionHeader:
    """ASGI middleware: every answer says ``X-Stella-Version`` (unless the route set it). Plain ASGI, not
    ``@app.middleware("http")``, whose per-request task and body relay cost more than the rest of a small request
    and hold a streamed answer back in a memory stream."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (b"x-stella-version", __version__.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-stella-version" for name, _ in headers):
                    message = dict(message, headers=[*headers, self.header])
            await send(message)

        await self.app(scope, receive, send_with_version)


def create_app(
    home: Home,
    *,
    keepalive: float = 15.0,
    max_upload: int = MAX_UPLOAD,
    store_linger: float = LINGER,
    distribute_dirs: Sequence[Path] | None = None,
) -> FastAPI:
    """The API of ``home``: every route calls the services the CLI calls; ``keepalive`` spaces SSE comments,
    ``max_upload`` bounds a bundle uploaded to ``POST /api/v1/verify``, ``store_linger`` is how long the store stays
    open after its last use (:mod:`app.api.store`); ``distribute_dirs``, when given, are the only directories (and
    their subdirectories) a distribution may copy a bundle into (:mod:`app.api.distributions`)."""
    holder = StoreHolder(home, linger=store_linger)
    runs = RunManager(holder)
    app = FastAPI(
        title="stella local API",
        version=__version__,
        summary="Exports, downloads, verification, evidence and timeline of one stella home, over HTTP.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.home = home
    app.state.holder = holder
    app.state.runs = runs
    app.state.keepalive = keepalive
    router = build_router(
        home, holder, runs, keepalive=keepalive, max_upload=max_upload, distribute_dirs=distribute_dirs
    )
    app.include_router(router)
    app.state.routes = list(router.routes)  # for the Allow header of a 405
    app.add_exception_handler(StellaError, problems.stella_error_handler)
    app.add_exception_handler(RequestValidationError, validation_after_authentication)
    app.add_exception_handler(StarletteHTTPException, problems.http_handler)
    app.add_exception_handler(Exception, problems.internal_handler)

    spec_cache: dict[str, tuple[bytes, str]] = {}

    def spec() -> tuple[bytes, str]:
        if "spec" not in spec_cache:
            body = json.dumps(openapi_document(app), sort_keys=True, separators=(",", ":")).encode()
            spec_cache["spec"] = (body, '"' + hashlib.sha256(body).hexdigest() + '"')
        return spec_cache["spec"]

    @app.get("/.well-known/openapi", include_in_schema=False)
    def well_known_openapi(request: Request) -> Response:
        body, etag = spec()
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        inm = request.headers.get("if-none-match", "")
        if etag in [t.strip().removeprefix("W/") for t in inm.split(",")] or inm.strip() == "*":
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    app.add_middleware(VersionHeader)
    app.add_middleware(LegacyPaths)
    return app


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI 3.1 document, with error responses filed under ``application/problem+json``."""
    doc = app.openapi()
    doc.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for name, model in BODY_SCHEMAS.items():
        doc["components"].setdefault("schemas", {})[name] = model.model_json_schema()
    for path in doc.get("paths", {}).values():
        for op in path.values():
            if not op.get("tags") or op["tags"][0] != "health":
                op["security"] = [{"bearer": []}, {"dpop": [], "dpopProof": []}]
            for status, response in op.get("responses", {}).items():
                content = response.get("content", {})
                if status[:1] in "45" and "application/json" in content:
                    content[problems.PROBLEM_MEDIA_TYPE] = content.pop("application/json")
                for media in content.values():  # OpenAPI 3.2's itemSchema is not valid in a 3.1 document
                    if "itemSchema" in media:
                        media["x-itemSchema"] = media.pop("itemSchema")
    return doc


async def validation_after_authentication(request: Request, exc: Exception) -> JSONResponse:
    """A request without a valid credential is answered 401, whatever its body: FastAPI parses a body before the
    route's dependencies run, so a malformed one would otherwise say 422 before the token is looked at."""
    if not request.url.path.startswith("/health/") and getattr(request.state, "principal", None) is None:
        try:
            await run_in_threadpool(authenticate, request.app.state.home, request)
        except StellaError as error:
            return problems.from_error(error, request)
    return await problems.validation_handler(request, exc)


def json_error(exc: StellaError) -> JSONResponse:
    return problems.from_error(exc)
