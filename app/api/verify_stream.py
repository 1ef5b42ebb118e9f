"""``POST /api/v1/verify``'s report, streamed as the checks run: one JSON line per check, then a summary line.

The wire format is NDJSON (``application/x-ndjson``), one object a line, each with a ``type``:

- ``{"type": "check", "check": NAME, "ok": BOOL, "detail": TEXT[, "path": MEMBER]}``: one per check, sent as the
  verifier completes it (the observer of :func:`services.export.verify_built` / :func:`services.receive.
  verify_received`, the same services and checks as `stella verify`);
- then exactly one last line, either ``{"type": "result", ...}``: the report without its checks (``verified``,
  ``exitCode`` and its meaning ``exitMeaning``, ``code`` the stable error code or null, ``checkCount``,
  ``manifest``, ``error``...), or ``{"type": "problem", "problem": {RFC 9457 body}}`` when the verification could
  not finish (cancelled, an I/O failure, a refusal) after the first line was sent.

The HTTP status is chosen before the first line: until the verifier has reported its first check, a failure is an
ordinary problem+json answer. A client that prefers ``application/json`` (``Accept``) gets the whole report as one
document when the verification ends (the form before streaming; the generated SDK asks for it).

The verification runs in the server's thread pool; its checks cross to the event loop through an unbounded queue
(a report has tens of checks). When the client goes away mid-stream, the verification is cancelled at its next
archive read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from core.contract.media_types import NDJSON
from core.errors import ExitCode, IntegrityError, PolicyRefusal, StellaError
from core.progress import CancelToken, Check, CheckObserver, Observer

from . import problems

if TYPE_CHECKING:
    from verify.bundle import VerifyReport

log = logging.getLogger("stella.api")

JSON = "application/json"

#: What each exit code means (the table of docs/architecture.md), sent beside ``exitCode``.
EXIT_MEANINGS: dict[int, str] = {
    ExitCode.OK: "success",
    ExitCode.USAGE: "usage error",
    ExitCode.BAD_INPUT: "bad input: malformed document, bundle or argument value",
    ExitCode.INTEGRITY: "integrity failure: digest, size, missing or unlisted file, unsafe path",
    ExitCode.SIGNATURE: "signature failure: bad signature, or no trusted signer",
    ExitCode.TRUST: "trust metadata failure: threshold, rollback, expiry, wrong delta base",
    ExitCode.POLICY: "refused by policy: cross-tenant, stale feed, quota",
    ExitCode.ENVIRONMENT: "environment: I/O, disk full, permission, store locked",
    ExitCode.CANCELLED: "cancelled",
}


class CrossTenantBundle(PolicyRefusal):
    """An uploaded bundle of another tenant than the token's (403, exit 7)."""

    code = "cross-tenant"
    http_status = 403

    def __init__(self, bundle_tenant: str, tenant: str) -> None:
        super().__init__(
            f"the bundle belongs to tenant {bundle_tenant!r}, not to this token's tenant {tenant!r}",
            hint="verify it with a token of the bundle's tenant, or locally with `stella verify`",
        )


# -- the lines, as the OpenAPI document describes them -------------------------------------------------------------
class VerifyCheckLine(BaseModel):
    """One check of the streamed report, sent as soon as the verifier completed it."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"type": "check", "check": "signer scope", "ok": True, "detail": "key 'k' may sign json:raw"}]
        },
    )
    type: Literal["check"]
    check: str
    ok: bool
    detail: str
    path: str | None = None


class VerifyResultLine(BaseModel):
    """The last line of a report that finished: the report's fields but its checks (already sent, ``checkCount``)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "result",
                    "run": "01JEXAMPLE0000000000000000",
                    "verified": False,
                    "exitCode": 4,
                    "exitMeaning": EXIT_MEANINGS[ExitCode.INTEGRITY],
                    "code": "integrity",
                    "checkCount": 5,
                    "error": {"error": "integrity", "message": "sha256 mismatch", "exitCode": 4},
                }
            ]
        },
    )
    type: Literal["result"]
    verified: bool
    exitCode: int
    exitMeaning: str
    code: str | None = Field(description="the stable error code (`--json`'s `error.error`), null when verified")
    checkCount: int


class VerifyProblemLine(BaseModel):
    """The last line of a report that could not finish after its first line was sent: an RFC 9457 problem."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "problem",
                    "problem": {
                        "type": "https://stella.invalid/problems/environment",
                        "title": "Internal Server Error",
                        "status": 500,
                        "detail": "cannot read the bundle: No space left on device",
                        "code": "environment",
                        "exitCode": 8,
                    },
                }
            ]
        },
    )
    type: Literal["problem"]
    problem: dict[str, Any]


#: The lines, for the streamed media type's ``itemSchema`` (inline: a validator follows no ``$ref`` in it).
LINE_SCHEMAS: tuple[type[BaseModel], ...] = (VerifyCheckLine, VerifyResultLine, VerifyProblemLine)

STREAM_EXAMPLE = (
    '{"type":"check","check":"signature","ok":true,"detail":"export.json verified with trusted key \'k\'",'
    '"path":"export.json"}\n'
    '{"type":"check","check":"checksums","ok":true,"detail":"checksums.txt lists every file"}\n'
    '{"type":"result","run":"01JEXAMPLE0000000000000000","verified":true,"exitCode":0,"exitMeaning":"success",'
    '"code":null,"checkCount":2}\n'
)

STREAM_CONTENT: dict[str, Any] = {
    NDJSON: {
        "schema": {"type": "string", "description": "JSON lines: checks as they complete, then a result or problem"},
        "itemSchema": {"oneOf": [model.model_json_schema() for model in LINE_SCHEMAS]},
        "example": STREAM_EXAMPLE,
    }
}


# -- the report ----------------------------------------------------------------------------------------------------
def report_document(report: VerifyReport, **extra: Any) -> dict[str, Any]:
    """The whole report as one JSON document: `stella verify --json`'s form (without the bundle's path on this
    machine), with ``exitMeaning`` and ``code``, and ``extra`` (``run``, ``provenance``)."""
    body = report.to_dict()
    hidden = body.pop("bundle", None)
    body["checks"] = [_unplaced(c, hidden) for c in body["checks"]]
    if isinstance(body.get("error"), dict):
        body["error"] = _unplaced(body["error"], hidden)
    exit_code = int(body["exitCode"])
    code = None if report.ok else (report.error.code if report.error is not None else IntegrityError.code)
    head = {k: v for k, v in extra.items() if k != "provenance"}
    tail = {"provenance": extra["provenance"]} if "provenance" in extra else {}
    return {**head, **body, "exitMeaning": EXIT_MEANINGS.get(exit_code, "error"), "code": code, **tail}


def check_line(check: Check, bundle: str | None) -> dict[str, Any]:
    """The line of one check, as soon as it completed."""
    return {"type": "check", **_unplaced(check.to_dict(), bundle)}


def _unplaced(item: dict[str, Any], bundle: str | None) -> dict[str, Any]:
    """``item`` without a ``path`` that is the bundle's own on this machine (an upload's spool file, a run's
    bundle under the home): where a file lies here is not the client's business; a member's path stays."""
    return {k: v for k, v in item.items() if not (k == "path" and v == bundle)}


def result_line(document: dict[str, Any]) -> dict[str, Any]:
    """The summary line of a finished report: the document without its checks (streamed before it)."""
    rest = {k: v for k, v in document.items() if k != "checks"}
    return {"type": "result", **rest, "checkCount": len(document["checks"])}


def problem_line(exc: BaseException) -> dict[str, Any]:
    """The last line of a stream whose verification failed: the problem its error answers before streaming."""
    if isinstance(exc, StellaError):
        status = problems.status_of(exc)
        body = problems.problem_body(status, exc.code, problems.detail_of(exc), exit_code=int(exc.exit_code))
    else:
        body = problems.problem_body(500, "internal", f"internal error: {type(exc).__name__}")
    return {"type": "problem", "problem": body}


def prefers_document(accept: str | None) -> bool:
    """Whether ``Accept`` prefers one ``application/json`` document to the ``application/x-ndjson`` stream.

    The most specific range naming a type gives its quality (RFC 9110 §12.5.1); a tie, no ``Accept``, ``*/*`` or
    an ``Accept`` naming neither is the stream."""
    return _quality(accept or "", JSON) > _quality(accept or "", NDJSON)


def _quality(accept: str, media: str) -> float:
    kind, _, _sub = media.partition("/")
    best: tuple[int, float] = (-1, 0.0)
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        found = fields[0].lower()
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        specificity = 2 if found == media else 1 if found == f"{kind}/*" else 0 if found == "*/*" else -1
        if specificity > best[0]:
            best = (specificity, q)
    return best[1]


# -- streaming -----------------------------------------------------------------------------------------------------
Job = Callable[[Observer], dict[str, Any]]
_Item = (
    tuple[Literal["check"], Check] | tuple[Literal["result"], dict[str, Any]] | tuple[Literal["error"], BaseException]
)


class ReportStream:
    """Runs ``job`` (a verification that reports to the observer it is given) in the thread pool, and streams its
    report; ``bundle`` is the file it verifies, whose path on this machine no line names.

    ``cleanup`` runs in the job's thread once the job is over, whatever happened, before the last line is sent (an
    uploaded bundle is removed then, not while it is still being read)."""

    def __init__(self, job: Job, bundle: Path | None, cleanup: Callable[[], None] | None = None) -> None:
        self._job = job
        self._bundle = None if bundle is None else str(bundle)
        self._cleanup = cleanup
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self.cancel = CancelToken()
        # In the server's thread pool, as every blocking call of a route: verifications at once are bounded by it.
        self._task = asyncio.ensure_future(run_in_threadpool(self._work))

    def _put(self, item: _Item) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the event loop is closed: the server stops, nobody reads any more
            self.cancel.cancel()

    def _work(self) -> None:
        end: _Item
        try:
            observer = CheckObserver(lambda check: self._put(("check", check)), cancel=self.cancel)
            end = ("result", self._job(observer))
        except StellaError as exc:
            end = ("error", exc)
        except Exception as exc:
            log.exception("verification: internal error")
            end = ("error", exc)
        finally:
            if self._cleanup is not None:
                self._cleanup()  # before the last line: a client that read it finds nothing left behind
        self._put(end)

    async def document(self) -> dict[str, Any]:
        """The whole report once the job ends (its checks are collected by the report itself); raises its error."""
        try:
            while True:
                item = await self._queue.get()
                if item[0] == "result":
                    return item[1]
                if item[0] == "error":
                    raise item[1]
        finally:
            self.cancel.cancel()  # the client went away: stop at the next read (nothing happens once it ended)

    async def response(self) -> StreamingResponse:
        """The NDJSON answer, started when the first check (or the end) is known: an error before it is raised, so
        it is answered as problem+json with its own status."""
        try:
            first = await self._queue.get()
        except BaseException:
            self.cancel.cancel()
            raise
        if first[0] == "error":
            raise first[1]
        return StreamingResponse(
            self._lines(first),
            media_type=NDJSON,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Vary": "Accept"},
        )

    async def _lines(self, first: _Item) -> AsyncIterator[bytes]:
        item = first
        try:
            while True:
                if item[0] == "check":
                    yield _line(check_line(item[1], self._bundle))
                elif item[0] == "result":
                    yield _line(result_line(item[1]))
                    return
                else:
                    yield _line(problem_line(item[1]))
                    return
                item = await self._queue.get()
        finally:
            self.cancel.cancel()


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
