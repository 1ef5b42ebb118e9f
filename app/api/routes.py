"""The API's routes. Each authenticates, checks one scope, scopes every query to the token's tenant, and calls the
same services (or the same store-level functions they are made of) as the CLI."""

import asyncio
import base64
import functools
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.contract.api import (
    SCOPE_EVIDENCE_HOLD,
    SCOPE_EVIDENCE_READ,
    SCOPE_EXPORT_DOWNLOAD,
    SCOPE_EXPORT_READ,
    SCOPE_EXPORT_RUN,
    SCOPE_PROFILE_MANAGE,
    SCOPE_TIMELINE_READ,
)
from core.contract.bundle import MANIFEST, PROVENANCE
from core.contract.profiles import BOOTSTRAP_PACK, JSON_RAW
from core.errors import BadInputError, ExitCode, NotFoundError, PolicyRefusal, StellaError
from core.home import Home
from core.profiles import ProfileStore, parse_overrides, parse_profile_ref
from core.progress import Observer
from core.runs import ExportRun, RunEngine, RunState
from services import tokens
from services.distribute import distribute_run
from services.export import check_selectors, download_run, provenance_summary
from services.tokens import Principal

from . import distributions, models, problems, verify_stream
from .distributions import DistributionCreate
from .runs import RunManager
from .store import StoreHolder

V1 = "/api/v1"
_RUN_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_MAX_MEMBER = 64 * 1024 * 1024
#: The largest bundle ``POST /api/v1/verify`` accepts as an upload (``create_app(max_upload=...)``).
MAX_UPLOAD = 4 * 1024 * 1024 * 1024


class UnsupportedMedia(StellaError):
    """A request body in a media type the operation does not take (415)."""

    code = "unsupported-media-type"
    exit_code = ExitCode.USAGE
    http_status = 415

    def __init__(self, media: str) -> None:
        super().__init__(
            f"a body of type {media or '(none)'!r} is not taken here",
            hint="send application/json or application/octet-stream",
        )


class UploadTooLarge(StellaError):
    """An uploaded body larger than the server accepts (413)."""

    code = "payload-too-large"
    exit_code = ExitCode.BAD_INPUT
    http_status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"the upload is larger than the {limit} bytes this server accepts", hint="verify it locally")


# -- request and response bodies ---------------------------------------------------------------------------------
class ProfileCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=128, examples=["nightly-osv"])
    base: str = Field(min_length=1, max_length=128, examples=[JSON_RAW])
    settings: dict[str, str] = Field(default_factory=dict, examples=[{"compression": "zstd"}])


class ProfilePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    settings: dict[str, str] = Field(min_length=1, examples=[{"compression": "gzip"}])


class RunOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str | None = Field(default=None, max_length=128, description="signing key name (default: the profile's)")


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    profile: str = Field(min_length=1, max_length=200, examples=[JSON_RAW])
    selectors: dict[str, str | list[str]] = Field(default_factory=dict, examples=[{"format": "osv"}])
    options: RunOptions = Field(default_factory=RunOptions)


class VerifyRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run: str = Field(min_length=1, max_length=128, description="the id of a succeeded run of the token's tenant")


#: Request bodies a route reads itself (by media type), filed in the document's components for its ``$ref``.
BODY_SCHEMAS: dict[str, type[BaseModel]] = {"VerifyRun": VerifyRun}


class KitVerify(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dirs: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        min_length=1,
        max_length=64,
        description="absolute paths on the server host: kit volume directories or a kit directory (its vol-NN)",
        examples=[["/media/kit/vol-01"]],
    )


class BootstrapPush(BaseModel):
    model_config = ConfigDict(extra="forbid")
    registry: str = Field(
        min_length=1,
        max_length=2048,
        description="HOST[/PREFIX] (or oci://HOST[/PREFIX]): where every image and chart of the pack goes, by digest",
        examples=["127.0.0.1:5000/mirror"],
    )
    plainHttp: bool = Field(
        default=False, description="HTTP without TLS, only for a registry on 127.0.0.1/::1/localhost"
    )


class EvidenceVerify(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200, description="a sealed evidence bundle's id or digest")


class SnapshotCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["run", "policy", "job"] = Field(examples=["run"])
    ref: str = Field(min_length=1, max_length=200, description="a run id (or unique prefix), policy or job id")
    key: str = Field(min_length=1, max_length=128, description="the signing key that seals it", examples=["api-key"])
    reason: str = Field(default="", max_length=1000)


class HoldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bundle: str = Field(min_length=1, max_length=200, description="the sealed evidence bundle to hold")
    reason: str = Field(min_length=1, max_length=1000)


_PROBLEM = {"description": "RFC 9457 problem details", "content": {"application/problem+json": {}}}
_ERRORS: dict[int | str, dict[str, Any]] = {s: _PROBLEM for s in (400, 401, 403, 404, 422)}
_SSE_EXAMPLE = (
    'retry: 1000\n\nid: 1\nevent: state\ndata: {"seq":1,"type":"state","state":"running"}\n\nevent: end\ndata: {}\n\n'
)
_ATTESTATION = {
    "description": "DSSE envelopes, one a line",
    "content": {
        "application/jsonl": {
            "example": '{"payloadType":"application/vnd.in-toto+json","payload":"eyJfdHlwZSI6...",'
            '"signatures":[{"keyid":"api-key","sig":"MEUCIQ..."}]}\n'
        }
    },
}
_METRICS = {
    "description": "Prometheus text format",
    "content": {
        "text/plain": {
            "example": '# TYPE exporter_runs_total counter\nexporter_runs_total{tenant="default",state="succeeded"} 3\n'
        }
    },
}


def _binary(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}, "example": "(bytes)"}
        },
    }


def _json_bytes(description: str) -> dict[str, Any]:
    return {
        "description": description + ", byte for byte",
        "content": {"application/json": {"schema": {"type": "object"}, "example": {"_type": "..."}}},
    }


def _selector_words(selectors: dict[str, str | list[str]]) -> list[str]:
    words: list[str] = []
    for key, value in selectors.items():
        for v in [value] if isinstance(value, str) else value:
            words.append(f"{key}={v}")
    return words


def _run_view(run: ExportRun, progress: dict[str, Any] | None) -> dict[str, Any]:
    view = run.to_dict()
    if view.get("artifact"):
        view["artifact"].pop("path", None)  # where the bundle lies on this machine is not the client's business
    view["id"] = run.run_id
    view["status"] = str(run.state)
    view["progress"] = progress
    return view


def build_router(
    home: Home,
    holder: StoreHolder,
    runs: RunManager,
    *,
    keepalive: float,
    max_upload: int = MAX_UPLOAD,
    distribute_dirs: Sequence[Path] | None = None,
) -> APIRouter:
    router = APIRouter()

    def need(scope: str) -> Callable[[Request], Principal]:
        def check(request: Request) -> Principal:
            principal = authenticate(home, request)
            tokens.require_scope(principal, scope)
            return principal

        return check

    Reader = Annotated[Principal, Depends(need(SCOPE_EXPORT_READ))]
    Runner = Annotated[Principal, Depends(need(SCOPE_EXPORT_RUN))]
    Downloader = Annotated[Principal, Depends(need(SCOPE_EXPORT_DOWNLOAD))]
    Manager = Annotated[Principal, Depends(need(SCOPE_PROFILE_MANAGE))]

    def tenant_run(principal: Principal, run_id: str) -> ExportRun:
        if not _RUN_ID.match(run_id):
            raise NotFoundError(f"no export run {run_id!r}")
        try:
            return runs.get(principal.tenant, run_id)
        except NotFoundError:
            raise NotFoundError(f"no export run {run_id!r}") from None  # never says whose it is

    # -- health -------------------------------------------------------------------------------------------------
    @router.get("/health/ready", tags=["health"], operation_id="getReadiness", response_model=models.Readiness)
    def ready() -> JSONResponse:
        """Whether the store opens, a signing key exists and the adapter registry is loaded (no credential)."""
        from adapters.profiles.registry import PROFILES
        from services.keys import list_keys

        checks: dict[str, dict[str, Any]] = {}
        try:
            with holder.use() as store:
                checks["store"] = {"ok": True, "schemaVersion": store.schema_version()}
        except StellaError as exc:
            checks["store"] = {"ok": False, "error": exc.code, "detail": exc.message}
        try:
            keys = list_keys(home)
            checks["signer"] = {"ok": bool(keys), "keys": len(keys)}
        except StellaError as exc:
            checks["signer"] = {"ok": False, "error": exc.code, "detail": exc.message}
        checks["adapters"] = {"ok": bool(PROFILES), "profiles": sorted(PROFILES)}
        ok = all(c["ok"] for c in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not-ready", "checks": checks}, status_code=200 if ok else 503
        )

    # -- profiles -----------------------------------------------------------------------------------------------
    @router.get(
        f"{V1}/export/profiles",
        tags=["profiles"],
        responses=_ERRORS,
        operation_id="listProfiles",
        response_model=models.ProfileList,
    )
    def list_profiles(principal: Reader) -> dict[str, Any]:
        """The tenant's profiles, the current revision of each."""
        with holder.use() as store:
            found = ProfileStore(store).list(principal.tenant)
        return {"tenant": principal.tenant, "profiles": [p.to_dict() for p in found]}

    @router.get(
        f"{V1}/export/profiles/{{profile_id}}",
        tags=["profiles"],
        responses=_ERRORS,
        operation_id="getProfile",
        response_model=models.Profile,
    )
    def get_profile(profile_id: str, principal: Reader) -> dict[str, Any]:
        """One profile by ``ID`` or ``ID@REVISION``."""
        name, revision = parse_profile_ref(profile_id)
        with holder.use() as store:
            return ProfileStore(store).get(principal.tenant, name, revision).to_dict()

    @router.post(
        f"{V1}/export/profiles",
        tags=["profiles"],
        status_code=201,
        responses=_ERRORS,
        operation_id="createProfile",
        response_model=models.Profile,
    )
    def create_profile(body: ProfileCreate, principal: Manager) -> dict[str, Any]:
        """A custom profile varying a builtin by ``settings``; revision 1 (as `stella export profile create`)."""
        overrides = parse_overrides([f"{k}={v}" for k, v in body.settings.items()])
        with holder.use() as store:
            return ProfileStore(store).create(principal.tenant, body.id, body.base, overrides).to_dict()

    @router.patch(
        f"{V1}/export/profiles/{{profile_id}}",
        tags=["profiles"],
        responses=_ERRORS,
        operation_id="updateProfile",
        response_model=models.ProfileUpdate,
    )
    def update_profile(profile_id: str, body: ProfilePatch, principal: Manager) -> dict[str, Any]:
        """Change a custom profile: a new revision when its config changes (``changed``), as the CLI does."""
        overrides = parse_overrides([f"{k}={v}" for k, v in body.settings.items()])
        with holder.use() as store:
            return ProfileStore(store).update(principal.tenant, profile_id, overrides).to_dict()

    # -- runs ----------------------------------------------------------------------------------------------------
    @router.post(
        f"{V1}/export/runs",
        tags=["runs"],
        status_code=202,
        responses={
            **_ERRORS,
            200: {"model": models.Run, "description": "a retry: the same run"},
            409: _PROBLEM,
            429: _PROBLEM,
        },
        operation_id="createRun",
        response_model=models.Run,
    )
    async def create_run(
        request: Request,
        body: RunCreate,
        principal: Runner,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> JSONResponse:
        """Plan a run and build it in the background; answers its ``id`` and ``status`` at once.

        With ``Idempotency-Key``, a retried request answers the same run (200); the same key with a different
        body is refused (422 ``idempotency-key-reused``)."""
        raw = await request.body()
        digest = hashlib.sha256(json.dumps(json.loads(raw or b"{}"), sort_keys=True).encode()).hexdigest()
        selectors = check_selectors(_selector_words(body.selectors))

        def create() -> tuple[ExportRun, bool]:
            return runs.create(
                principal.tenant,
                body.profile,
                selectors,
                body.options.key,
                idempotency_key=idempotency_key,
                body_digest=digest,
            )

        try:
            run, new = await run_in_threadpool(create)
        except StellaError as exc:
            response = problems.from_error(exc, request)
            quota = await run_in_threadpool(runs.quota, principal.tenant)
            response.headers.update(quota.headers())
            return response
        quota = await run_in_threadpool(runs.quota, principal.tenant)
        headers = {"Location": f"{V1}/export/runs/{run.run_id}", **quota.headers()}
        return JSONResponse(_run_view(run, runs.progress(run.run_id)), status_code=202 if new else 200, headers=headers)

    @router.get(
        f"{V1}/export/runs", tags=["runs"], responses=_ERRORS, operation_id="listRuns", response_model=models.RunList
    )
    def list_runs(principal: Reader, limit: int = 20) -> dict[str, Any]:
        """The tenant's latest runs, newest first."""
        with holder.use() as store:
            found = RunEngine(store).list_runs(principal.tenant, limit=max(1, min(limit, 500)))
        return {"tenant": principal.tenant, "runs": [_run_view(r, runs.progress(r.run_id)) for r in found]}

    @router.get(
        f"{V1}/export/runs/{{run_id}}",
        tags=["runs"],
        responses=_ERRORS,
        operation_id="getRun",
        response_model=models.Run,
    )
    def get_run(run_id: str, principal: Reader) -> dict[str, Any]:
        """A run: status, progress counters while it builds, the bundle's digest and size and its provenance."""
        run = tenant_run(principal, run_id)
        view = _run_view(run, runs.progress(run.run_id))
        if run.state == RunState.SUCCEEDED and run.artifact_path is not None and run.artifact_path.is_file():
            view["provenance"] = provenance_summary(run.artifact_path)
        return view

    @router.post(
        f"{V1}/export/runs/{{run_id}}/cancel",
        tags=["runs"],
        status_code=202,
        responses={**_ERRORS, 409: _PROBLEM},
        operation_id="cancelRun",
        response_model=models.Run,
    )
    def cancel_run(run_id: str, principal: Runner) -> dict[str, Any]:
        """Abort a pending run, or ask a running one to stop at its next unit of work."""
        tenant_run(principal, run_id)
        run = runs.cancel(principal.tenant, run_id, principal.subject)
        return _run_view(run, runs.progress(run.run_id))

    @router.get(
        f"{V1}/export/runs/{{run_id}}/events",
        tags=["runs"],
        responses={
            **_ERRORS,
            200: {"content": {"text/event-stream": {"example": _SSE_EXAMPLE}}, "description": "server-sent events"},
        },
        response_class=StreamingResponse,
        operation_id="getRunEvents",
    )
    async def run_events(
        run_id: str,
        principal: Reader,
        last_event_id: Annotated[str | None, Header(max_length=32)] = None,
    ) -> StreamingResponse:
        """The run's events as server-sent events (``id`` = the event's sequence number), from after
        ``Last-Event-ID``; a ``: keep-alive`` comment when nothing happens; the stream ends after the run ends."""
        await run_in_threadpool(tenant_run, principal, run_id)
        after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0

        def poll(seen: int) -> tuple[list[dict[str, Any]], bool]:
            # Read whether this server still builds the run BEFORE the events: a build records events (attestation,
            # evidence) after the run's last transition, so the stream ends only once the build thread is done.
            building = runs.progress(run_id) is not None
            with holder.use() as store:
                engine = RunEngine(store)
                events = [e.to_dict() for e in engine.events(run_id) if e.seq > seen]
                done = engine.get_run(run_id).state.terminal and not building
            return events, done

        async def stream() -> AsyncIterator[bytes]:
            seen = after
            quiet = time.monotonic()
            yield b"retry: 1000\n\n"
            while True:
                events, done = await run_in_threadpool(poll, seen)
                for event in events:
                    seen = int(event["seq"])
                    data = json.dumps(event, separators=(",", ":"))
                    yield f"id: {seen}\nevent: {event['type']}\ndata: {data}\n\n".encode()
                    quiet = time.monotonic()
                if done and not events:
                    yield b"event: end\ndata: {}\n\n"
                    return
                if time.monotonic() - quiet >= keepalive:
                    yield b": keep-alive\n\n"
                    quiet = time.monotonic()
                await asyncio.sleep(min(0.25, keepalive))

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    # -- distributions -------------------------------------------------------------------------------------------
    @router.post(
        f"{V1}/export/runs/{{run_id}}/distributions",
        tags=["distributions"],
        status_code=201,
        responses={
            **_ERRORS,
            200: {"model": models.Distributed, "description": "already distributed there: the same record"},
            409: _PROBLEM,
            500: _PROBLEM,
            503: _PROBLEM,
        },
        operation_id="createDistribution",
        response_model=models.Distributed,
    )
    def create_distribution(run_id: str, body: DistributionCreate, principal: Runner) -> JSONResponse:
        """Hand a succeeded run's bundle to a registry (``oci://``), a bucket (``s3://``) or a directory on the
        server host, as `stella distribute RUN --to URL` and `stella export download RUN --to DIR` do; answers what
        they print with ``--json`` (201: recorded now; 200: the run was already there, the same record). Scope
        ``export:run``: it acts on the run and records its distribution and a timeline event."""
        run = tenant_run(principal, run_id)
        target = distributions.target_of(body, home, distribute_dirs)
        with holder.use() as store:
            before = {d.distribution_id for d in RunEngine(store).distributions(run.run_id)}
        with holder.alone():
            if target.directory is not None:
                answer = distributions.file_answer(download_run(home, run.run_id, target.directory))
            else:
                assert target.url is not None
                done = distribute_run(
                    home, run.run_id, target.url, distributions.access(body), s3=distributions.s3_options(body)
                )
                answer = {"type": "oci", **done.to_dict()}  # an S3 answer names its own type
        new = answer["distribution"]["distributionId"] not in before
        return JSONResponse(answer, status_code=201 if new else 200)

    @router.get(
        f"{V1}/export/runs/{{run_id}}/distributions",
        tags=["distributions"],
        responses=_ERRORS,
        operation_id="listDistributions",
        response_model=models.DistributionList,
    )
    def list_distributions(run_id: str, principal: Reader) -> dict[str, Any]:
        """Where the run's bundle has been handed (``export_distributions``), oldest first."""
        run = tenant_run(principal, run_id)
        with holder.use() as store:
            found = RunEngine(store).distributions(run.run_id)
        return {"run": run.run_id, "distributions": [d.to_dict() for d in found]}

    # -- downloads -----------------------------------------------------------------------------------------------
    def bundle_of(principal: Principal, run_id: str) -> tuple[ExportRun, Path]:
        run = tenant_run(principal, run_id)
        if run.state != RunState.SUCCEEDED or run.artifact_path is None:
            raise PolicyRefusal(f"run {run_id} is {run.state}; it has no bundle", hint="wait for it to succeed")
        if not run.artifact_path.is_file():
            raise NotFoundError(f"the bundle of run {run_id} was deleted (retention or by hand)")
        return run, run.artifact_path

    @router.get(
        f"{V1}/export/runs/{{run_id}}/download",
        tags=["downloads"],
        responses={
            **_ERRORS,
            200: _binary("the bundle"),
            206: _binary("part of the bundle"),
            304: {"description": "the bundle is the one named by If-None-Match"},
            409: _PROBLEM,
            416: _PROBLEM,
        },
        response_class=FileResponse,
        operation_id="downloadRun",
    )
    def download(run_id: str, request: Request, principal: Downloader) -> Response:
        """The bundle, with Range (206), ``If-Range`` and ``If-None-Match``; ``X-Export-Digest``,
        ``X-Export-Length``, a strong ETag and ``Repr-Digest`` describe the whole bundle before its first byte."""
        run, path = bundle_of(principal, run_id)
        size = int(run.artifact_size or path.stat().st_size)
        hexdigest = str(run.artifact_sha256)
        etag = f'"{hexdigest}"'
        headers = {
            "ETag": etag,
            "X-Export-Digest": f"sha256:{hexdigest}",
            "X-Export-Length": str(size),
            "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(hexdigest)).decode()}:",
            "Cache-Control": "private, no-cache",
        }
        inm = request.headers.get("if-none-match")
        if inm is not None and etag in [t.strip().removeprefix("W/") for t in inm.split(",")]:
            return Response(status_code=304, headers=headers)
        wanted = request.headers.get("range")
        if_range = request.headers.get("if-range")
        if wanted is not None and (if_range is None or if_range.strip() == etag):
            refusal = _range_refusal(wanted, size)
            if refusal is not None:
                return problems.problem(
                    416,
                    "range-not-satisfiable",
                    refusal,
                    headers={"Content-Range": f"bytes */{size}", **headers},
                )
        return FileResponse(
            path, media_type="application/octet-stream", filename=path.name, headers=headers, stat_result=path.stat()
        )

    @router.get(
        f"{V1}/export/runs/{{run_id}}/manifest",
        tags=["downloads"],
        responses={**_ERRORS, 200: _json_bytes("the signed export.json"), 409: _PROBLEM},
        operation_id="getManifest",
    )
    def manifest(run_id: str, principal: Downloader) -> Response:
        """The bundle's signed manifest (``export.json``), byte for byte."""
        _, path = bundle_of(principal, run_id)
        return Response(_member(path, MANIFEST), media_type="application/json")

    @router.get(
        f"{V1}/export/runs/{{run_id}}/provenance",
        tags=["downloads"],
        responses={**_ERRORS, 200: _json_bytes("the in-toto provenance statement"), 409: _PROBLEM},
        operation_id="getProvenance",
    )
    def provenance(run_id: str, principal: Downloader) -> Response:
        """The bundle's in-toto provenance statement, byte for byte."""
        _, path = bundle_of(principal, run_id)
        return Response(_member(path, PROVENANCE), media_type="application/json")

    @router.get(
        f"{V1}/export/runs/{{run_id}}/attestation",
        tags=["downloads"],
        responses={**_ERRORS, 200: _ATTESTATION, 409: _PROBLEM},
        operation_id="getAttestation",
    )
    def attestation(run_id: str, principal: Downloader) -> Response:
        """The run's signed in-toto Release attestation (``BUNDLE.intoto.jsonl``, DSSE envelopes, one a line)."""
        from core.export_attestation import attestation_path

        _, path = bundle_of(principal, run_id)
        found = attestation_path(path)
        if not found.is_file():
            raise NotFoundError(f"run {run_id} has no attestation")
        return FileResponse(found, media_type="application/jsonl", filename=found.name)

    # -- verification --------------------------------------------------------------------------------------------
    def verify_run_job(run: ExportRun) -> verify_stream.Job:
        def job(observer: Observer) -> dict[str, Any]:
            from services.export import verify_built

            checked = verify_built(home, run, observer=observer)
            return verify_stream.report_document(checked.report, run=run.run_id, provenance=checked.provenance)

        return job

    def verify_upload_job(path: Path, tenant: str) -> verify_stream.Job:
        def job(observer: Observer) -> dict[str, Any]:
            from services.receive import ReceiveRequest, verify_received

            report = verify_received(home, ReceiveRequest(path), observer).report
            theirs = report.manifest.tenant
            if report.ok and theirs is not None and theirs != tenant:
                # The unverified manifest was checked before any check ran; the verified one decides.
                raise verify_stream.CrossTenantBundle(theirs, tenant)
            return verify_stream.report_document(report, run=None)

        return job

    @router.post(
        f"{V1}/verify",
        tags=["verify"],
        responses={
            **_ERRORS,
            200: {
                "description": "the report: streamed as JSON lines (the default), or one document for a client whose "
                "`Accept` prefers application/json",
                "content": verify_stream.STREAM_CONTENT,
            },
            403: _PROBLEM,
            409: _PROBLEM,
            413: _PROBLEM,
            415: _PROBLEM,
        },
        operation_id="verifyBundle",
        response_model=models.VerifyReport,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/VerifyRun"},
                        "example": {"run": "01JEXAMPLE0000000000000000"},
                    },
                    "application/octet-stream": {
                        "schema": {"type": "string", "format": "binary"},
                        "example": "(the bundle's bytes)",
                    },
                },
            }
        },
    )
    async def verify_bundle(request: Request, principal: Reader) -> Response:
        """Verify a bundle check by check as `stella verify` does: a run's (JSON ``{"run": ID}``, against its
        signing key) or one uploaded as ``application/octet-stream`` (against the home's trust store; at most
        ``max_upload`` bytes, else 413; a bundle of another tenant is refused, 403 ``cross-tenant``).

        The report streams as ``application/x-ndjson``: a ``check`` line as each check completes, then one
        ``result`` line (``verified``, ``exitCode``, ``exitMeaning``, ``code``) or, if the verification could not
        finish, a ``problem`` line. With ``Accept: application/json``, the report is one document at the end
        (``verified``, ``exitCode``, ``checks``, ``manifest``). A bundle that does not verify is a 200 answer whose
        report says why; errors before the first check are problem+json."""
        media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        cleanup: Callable[[], None] | None = None
        if media == "application/json":
            raw = await _bounded_body(request, 64 * 1024)
            try:
                body = VerifyRun.model_validate_json(raw)
            except ValidationError as exc:
                raise RequestValidationError(
                    [dict(e, loc=("body", *e["loc"])) for e in exc.errors(include_url=False)]
                ) from None
            run = await run_in_threadpool(tenant_run, principal, body.run)
            if run.state != RunState.SUCCEEDED:
                raise PolicyRefusal(f"run {body.run} is {run.state}; it has no bundle to verify")
            job, bundle = verify_run_job(run), run.artifact_path
        elif media == "application/octet-stream":
            path = await _receive_upload(request, home, max_upload)
            try:
                await run_in_threadpool(_refuse_other_tenant, path, principal.tenant)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            job, bundle = verify_upload_job(path, principal.tenant), path
            cleanup = functools.partial(path.unlink, missing_ok=True)
        else:
            raise UnsupportedMedia(media)
        stream = verify_stream.ReportStream(job, bundle, cleanup)
        if verify_stream.prefers_document(request.headers.get("accept")):
            return JSONResponse(await stream.document(), headers={"Vary": "Accept"})
        return await stream.response()

    # -- timeline and evidence (services that open the store themselves: run when no build holds it) -----------------
    @router.post(
        f"{V1}/kit/verify",
        tags=["kit"],
        responses=_ERRORS,
        operation_id="verifyKit",
        response_model=models.KitReport,
    )
    def kit_verify(body: KitVerify, principal: Reader) -> dict[str, Any]:
        """Verify Offline Kit volumes on the server host, each alone, then together (`stella kit verify DIR...`,
        against the home's trust store): the report `--json` prints, check by check per volume. A kit that does not
        verify is still a 200, with ``verified`` false and the ``exitCode`` the CLI would end with."""
        from services.kit import verify_kit

        dirs = [distributions.server_directory(d, home, None, pointer=f"/dirs/{i}") for i, d in enumerate(body.dirs)]
        return verify_kit(home, dirs).to_dict()

    # -- bootstrap packs (`stella bootstrap list|push` of a run's pack) ----------------------------------------------
    def pack_of(principal: Principal, run_id: str) -> Path:
        run, bundle = bundle_of(principal, run_id)
        if run.profile_id != BOOTSTRAP_PACK:
            raise PolicyRefusal(f"run {run_id} built {run.profile_id}, not a bootstrap pack")
        return bundle

    @router.get(
        f"{V1}/export/runs/{{run_id}}/bootstrap",
        tags=["bootstrap"],
        responses={**_ERRORS, 409: _PROBLEM},
        operation_id="listBootstrapPack",
        response_model=models.BootstrapPack,
    )
    def bootstrap_list(run_id: str, principal: Reader) -> dict[str, Any]:
        """Verify a bootstrap pack run's bundle against the home's trust store, then list its images and charts
        (`stella bootstrap list PACK --json`). A pack that does not verify is the CLI's problem and exit code."""
        from services.bootstrap import verified_pack

        bundle = pack_of(principal, run_id)
        with holder.alone():
            return verified_pack(home, bundle).to_dict()

    @router.post(
        f"{V1}/export/runs/{{run_id}}/bootstrap/push",
        tags=["bootstrap"],
        responses={**_ERRORS, 409: _PROBLEM, 500: _PROBLEM, 503: _PROBLEM},
        operation_id="pushBootstrapPack",
        response_model=models.BootstrapPushed,
    )
    def bootstrap_push(run_id: str, body: BootstrapPush, principal: Runner) -> dict[str, Any]:
        """Verify a bootstrap pack run's bundle, then push every image and chart by digest to ``registry``
        (`stella bootstrap push PACK --registry HOST[/PREFIX] --json`), with no credentials (a registry that admits
        the push anonymously, as the distributions endpoint pushes). Scope ``export:run``."""
        from services.bootstrap import push_pack
        from services.distribute import Access

        bundle = pack_of(principal, run_id)
        with holder.alone():
            pushed = push_pack(home, bundle, body.registry, Access(plain_http=body.plainHttp))
        return {"run": run_id, "pushed": [p.to_dict() for p in pushed]}

    TimelineReader = Annotated[Principal, Depends(need(SCOPE_TIMELINE_READ))]
    EvidenceReader = Annotated[Principal, Depends(need(SCOPE_EVIDENCE_READ))]
    EvidenceHolder = Annotated[Principal, Depends(need(SCOPE_EVIDENCE_HOLD))]

    @router.get(
        f"{V1}/timeline",
        tags=["timeline"],
        responses={**_ERRORS, 503: _PROBLEM},
        operation_id="listTimeline",
        response_model=models.TimelinePage,
    )
    def timeline_list(
        principal: TimelineReader,
        type: Annotated[list[str] | None, Query(max_length=20)] = None,
        run: str | None = None,
        case: str | None = None,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        """The tenant's events, oldest first, ``limit`` at a time after cursor ``after`` (`stella timeline list`)."""
        from core.timeline import EventFilter
        from services.timeline import list_timeline

        where = EventFilter(types=tuple(type or ()), run_id=run, case_id=case)
        with holder.alone():
            return list_timeline(home, principal.tenant, where, after=after, limit=limit).to_dict()

    @router.get(
        f"{V1}/timeline/{{event_id}}",
        tags=["timeline"],
        responses={**_ERRORS, 503: _PROBLEM},
        operation_id="getTimelineEvent",
        response_model=models.TimelineEvent,
    )
    def timeline_event(event_id: str, principal: TimelineReader) -> dict[str, Any]:
        """One event of the tenant (`stella timeline show`)."""
        from services.timeline import show_event

        with holder.alone():
            return show_event(home, principal.tenant, event_id).to_dict()

    @router.get(
        f"{V1}/timeline/{{event_id}}/evidence",
        tags=["timeline"],
        responses={**_ERRORS, 503: _PROBLEM},
        operation_id="getTimelineEvidence",
        response_model=models.EventEvidence,
    )
    def timeline_evidence(event_id: str, principal: TimelineReader) -> dict[str, Any]:
        """The signed references an event carries (`stella timeline evidence`)."""
        from services.timeline import event_evidence

        with holder.alone():
            return event_evidence(home, principal.tenant, event_id).to_dict()

    @router.get(
        f"{V1}/evidence/{{evidence_id}}",
        tags=["evidence"],
        responses={**_ERRORS, 503: _PROBLEM},
        operation_id="getEvidence",
        response_model=models.Evidence,
    )
    def evidence_show(evidence_id: str, principal: EvidenceReader) -> dict[str, Any]:
        """A sealed evidence bundle of the tenant, its holds and custody (`stella evidence show`)."""
        from services.evidence import show_evidence

        with holder.alone():
            return show_evidence(home, principal.tenant, evidence_id, why="api").to_dict()

    @router.post(
        f"{V1}/evidence/verify",
        tags=["evidence"],
        responses={**_ERRORS, 503: _PROBLEM},
        operation_id="verifyEvidence",
        response_model=models.EvidenceCheck,
    )
    def evidence_verify(body: EvidenceVerify, principal: EvidenceReader) -> dict[str, Any]:
        """Verify the locker's archive of a sealed bundle check by check (`stella evidence verify ID`)."""
        from services.evidence import verify_stored_evidence

        with holder.alone():
            bundle, report = verify_stored_evidence(home, principal.tenant, body.id)
        checks = report.to_dict()
        checks.pop("bundle", None)  # its path on this machine
        return {"id": bundle.evidence_id, **checks}

    @router.post(
        f"{V1}/evidence/snapshot",
        tags=["evidence"],
        status_code=201,
        responses={**_ERRORS, 503: _PROBLEM},
        operation_id="snapshotEvidence",
        response_model=models.Evidence,
    )
    def evidence_snapshot(body: SnapshotCreate, principal: EvidenceHolder) -> dict[str, Any]:
        """Seal a snapshot of a run, policy evaluation or job into the locker (`stella evidence snapshot KIND REF
        --key KEY`); scope ``evidence:hold``, the scope that writes to the locker."""
        from services.evidence import SnapshotRequest, snapshot

        request = SnapshotRequest(
            tenant=principal.tenant,
            kind=body.kind,
            ref=body.ref,
            key=body.key,
            reason=body.reason or f"api snapshot by {principal.subject}",
        )
        with holder.alone():
            return snapshot(home, request).to_dict()

    @router.post(
        f"{V1}/evidence/hold/{{case_id}}",
        tags=["evidence"],
        responses={**_ERRORS, 201: {"model": models.Hold, "description": "a new hold"}, 503: _PROBLEM},
        operation_id="holdEvidence",
        response_model=models.Hold,
    )
    def evidence_hold(case_id: str, body: HoldRequest, principal: EvidenceHolder) -> JSONResponse:
        """Place a legal hold on a sealed bundle under ``case_id`` (`stella evidence hold`); 201 when new."""
        from services.evidence import place_hold

        with holder.alone():
            hold, new = place_hold(home, principal.tenant, case_id, body.bundle, body.reason)
        return JSONResponse({"new": new, **hold.to_dict()}, status_code=201 if new else 200)

    # -- metrics -------------------------------------------------------------------------------------------------
    @router.get(
        "/metrics",
        tags=["metrics"],
        responses={**_ERRORS, 200: _METRICS},
        response_class=Response,
        operation_id="getMetrics",
    )
    def metrics(principal: Reader) -> Response:
        """The same metrics text as `stella export metrics` (Prometheus text format)."""
        from services.metrics import read_snapshot, render

        with holder.use() as store:
            body = render(read_snapshot(store))
        mine = f'tenant="{principal.tenant}"'.encode()
        lines = [
            line
            for line in body.split(b"\n")
            if line.startswith(b"#") or b'tenant="' not in line or mine in line  # another tenant's series: dropped
        ]
        return Response(b"\n".join(lines), media_type="text/plain; version=0.0.4; charset=utf-8")

    return router


async def _bounded_body(request: Request, limit: int) -> bytes:
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise UploadTooLarge(limit)
    return bytes(data)


async def _receive_upload(request: Request, home: Home, limit: int) -> Path:
    """The request body streamed into a private file under the home (removed on any failure); 413 past ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UploadTooLarge(limit)  # refused before reading a byte
    spool = home.root / "tmp"
    await run_in_threadpool(lambda: spool.mkdir(parents=True, exist_ok=True, mode=0o700))
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=".bundle", dir=spool)
    path = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise UploadTooLarge(limit)
                await run_in_threadpool(out.write, chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


_RANGE = re.compile(r"^\s*bytes\s*=\s*(.+)$")


def _range_refusal(header: str, size: int) -> str | None:
    """Why ``Range: header`` cannot be satisfied for ``size`` bytes, or None (including a header to ignore)."""
    found = _RANGE.match(header)
    if found is None:
        return None  # not a byte range: ignored, the whole bundle is sent (RFC 9110 §14.2)
    parts = [p.strip() for p in found.group(1).split(",")]
    if len(parts) > 16:
        return "too many ranges"
    for part in parts:
        start, dash, end = part.partition("-")
        if not dash or not (start.isdigit() or end.isdigit()) or (start and not start.isdigit()):
            return f"malformed range {part!r}"
        if end and not end.isdigit():
            return f"malformed range {part!r}"
        if start.isdigit() and end.isdigit() and int(end) < int(start):
            return f"range {part!r} ends before it starts"
        if start.isdigit() and int(start) >= size:
            return f"range {part!r} starts at or past the end of the {size}-byte bundle"
        if not start and int(end) == 0:
            return "an empty suffix range"
    return None


def authenticate(home: Home, request: Request) -> Principal:
    """The request's principal (noted on ``request.state``); every ``Authorization`` and ``DPoP`` value is passed on,
    so that two proofs are refused rather than the second one ignored."""
    principal = tokens.authenticate(
        home,
        authorization=_joined(request, "authorization"),
        dpop=_joined(request, "dpop"),
        method=request.method,
        url=str(_client_url(request)),
    )
    request.state.principal = principal
    return principal


def _joined(request: Request, name: str) -> str | None:
    """Every value of header ``name``, comma-joined (services.tokens refuses a joined credential), or None."""
    return ", ".join(request.headers.getlist(name)) or None


def _refuse_other_tenant(path: Path, tenant: str) -> None:
    """Refuse an uploaded bundle whose manifest names another tenant before verifying it (403 ``cross-tenant``).

    The manifest is the archive's first member, not yet verified: it can only refuse here. A bundle that cannot be
    read this way is left to the verifier, whose report says why; and whether the *verified* manifest is the
    tenant's is checked again once it verified."""
    try:
        manifest = json.loads(_member(path, MANIFEST))
    except (StellaError, ValueError):
        return
    theirs = manifest.get("tenant") if isinstance(manifest, dict) else None
    if isinstance(theirs, str) and theirs != tenant:
        raise verify_stream.CrossTenantBundle(theirs, tenant)


def _member(path: Path, name: str) -> bytes:
    """Member ``name`` of the bundle archive at ``path`` (at most 64 MiB)."""
    with SafeArchiveReader(path, ReaderLimits()) as reader:
        for entry in reader:
            if entry.name == name:
                with entry.stream() as src:
                    data: bytes = src.read(_MAX_MEMBER + 1)
                if len(data) > _MAX_MEMBER:
                    raise BadInputError(f"{name} in the bundle is larger than {_MAX_MEMBER} bytes")
                return data
    raise NotFoundError(f"the bundle has no {name}")


def _client_url(request: Request) -> Any:
    """The URL the client asked for (a legacy alias is served under its ``/api/v1`` path)."""
    legacy = getattr(request.state, "legacy_path", None)
    return request.url if legacy is None else request.url.replace(path=legacy)
