"""RFC 9457 problem details: every error the API answers, with the CLI's stable error code and exit code."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import (
    AuthenticationError,
    Cancelled,
    EnvironmentFailure,
    ExitCode,
    NotFoundError,
    PermissionDenied,
    StellaError,
    StoreLockedError,
    UsageError,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: Problem ``type`` URIs: the error code under one documented base (docs/api.md lists them).
TYPE_BASE = "https://stella.invalid/problems/"

_STATUS_OF_EXIT: dict[ExitCode, int] = {
    ExitCode.USAGE: 400,
    ExitCode.BAD_INPUT: 422,
    ExitCode.INTEGRITY: 422,
    ExitCode.SIGNATURE: 422,
    ExitCode.TRUST: 422,
    ExitCode.POLICY: 409,
    ExitCode.ENVIRONMENT: 500,
    ExitCode.CANCELLED: 409,
}

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    exit_code: int | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response; ``code`` is the CLI's error code, ``exit_code`` the exit code it means."""
    body = problem_body(status, code, detail, exit_code=exit_code, **extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def problem_body(status: int, code: str, detail: str, *, exit_code: int | None = None, **extra: Any) -> dict[str, Any]:
    """The RFC 9457 object of :func:`problem` (also the last line of a stream that failed after it started)."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if exit_code is not None:
        body["exitCode"] = exit_code
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def status_of(exc: StellaError) -> int:
    """The HTTP status of a stella error."""
    explicit = getattr(exc, "http_status", None)
    if isinstance(explicit, int):
        return explicit
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, StoreLockedError):
        return 503
    if isinstance(exc, UsageError):
        return 400
    if isinstance(exc, Cancelled):
        return 409
    if isinstance(exc, EnvironmentFailure):
        return 500
    return _STATUS_OF_EXIT.get(exc.exit_code, 500)


def from_error(exc: StellaError, request: Request | None = None) -> JSONResponse:
    """The problem for ``exc``; paths on this machine are not sent to clients."""
    status = status_of(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, AuthenticationError | PermissionDenied):
        headers["WWW-Authenticate"] = exc.www_authenticate
    if isinstance(exc, StoreLockedError):
        headers["Retry-After"] = "1"
    return problem(
        status,
        exc.code,
        detail_of(exc),
        exit_code=int(exc.exit_code),
        headers=headers or None,
        pointer=exc.pointer,
        instance=None if request is None else request.url.path,
        scope=getattr(exc, "scope", None),
    )


def detail_of(exc: StellaError) -> str:
    """A problem's ``detail`` for ``exc``: its message and hint (a not-found says nothing more)."""
    return exc.message + (f" ({exc.hint})" if exc.hint and not isinstance(exc, NotFoundError) else "")


async def stella_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StellaError)
    return from_error(exc, request)


async def validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"location": "/".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg", ""))} for e in exc.errors()
    ]
    first = errors[0] if errors else {"location": "", "message": "invalid request"}
    return problem(
        422 if errors and errors[0]["location"].startswith("body") else 400,
        "usage",
        f"{first['location']}: {first['message']}",
        exit_code=int(ExitCode.USAGE),
        instance=request.url.path,
        errors=errors,
    )


async def http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not-found", 405: "method-not-allowed", 400: "usage"}.get(exc.status_code, "http-error")
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:  # Starlette names one route's methods; a path may have several routes
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem(
        exc.status_code,
        code,
        str(exc.detail),
        exit_code=int(ExitCode.USAGE) if exc.status_code < 500 else None,
        headers=headers or None,
        instance=request.url.path,
    )


async def internal_handler(request: Request, exc: Exception) -> JSONResponse:
    return problem(500, "internal", f"internal error: {type(exc).__name__}", instance=request.url.path)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at the request's path."""
    from starlette.routing import Match, Route

    methods: set[str] = set()
    for route in getattr(request.app.state, "routes", ()):
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches({**request.scope, "method": next(iter(route.methods))})
            if match == Match.FULL:
                methods |= route.methods
    return sorted(methods)
