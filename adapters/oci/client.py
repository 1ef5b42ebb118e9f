"""stella's client of the OCI distribution API (v2), on ``httpx``.

What it does, and why each part is here:

- **Blobs are streamed** in both directions: an upload reads the file in 1 MiB pieces (chunked: ``POST`` then one
  ``PATCH`` per chunk with ``Content-Range``, then ``PUT ?digest=``; a blob that fits one chunk, or a registry that
  refuses ``PATCH``, goes up in one streamed ``PUT``), a download writes to a ``.part`` file.
- **Resume.** After each chunk the upload's location and offset go to a state file (no credentials in it); a push
  started again asks the registry where the upload stands (``GET`` location -> ``Range``) and sends only the rest.
  A download finding a ``.part`` file asks for the rest with ``Range``; the bytes already there are hashed first.
- **Nothing received is trusted**: every manifest and blob body is hashed and compared to the digest that was asked
  for (``Docker-Content-Digest`` is never believed; distribution 2.8 serves altered bytes under the old header).
- **HEAD before push** skips blobs and manifests the repository has; a **cross-repository mount** is tried from the
  repositories the caller names before uploading.
- **Auth**: anonymous, Basic, and Bearer tokens fetched from the ``WWW-Authenticate`` realm per scope (a token for
  ``pull`` is not reused for ``pull,push``); a challenge is answered once per request, a second 401 is a refusal.
- **TLS** with the system store or a CA file; plain HTTP only when the caller says so (the service allows it only
  for a loopback registry).
- **Retries** are bounded (5 attempts, backoff from 0.2 s doubling to 5 s, ``Retry-After`` honoured up to 10 s) on
  429, 5xx and connection errors; 4xx other than 401/429 is never retried.

Errors: a refusal of credentials or permission is :class:`~core.errors.EnvironmentFailure` (exit 8), as is a
registry that cannot be reached or answers with an error; a body that does not match its digest is
:class:`~core.errors.IntegrityError` (exit 4).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from adapters.oci.credentials import Credentials
from adapters.oci.reference import is_loopback
from core.atomic import fsync_dir, write_bytes
from core.contract.media_types import OCI_INDEX, OCI_MANIFEST
from core.contract.oci import REFERRERS_TAG_PREFIX
from core.errors import Cancelled, EnvironmentFailure, IntegrityError
from core.progress import NullObserver, Observer

PIECE = 1 << 20
DEFAULT_CHUNK = 8 << 20
#: The largest manifest the client accepts (distribution's own limit is 4 MiB).
MAX_MANIFEST = 4 << 20
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
ATTEMPTS = 5
_CHALLENGE_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Challenge:
    scheme: str
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """``Bearer realm="...",service="...",scope="..."`` or ``Basic realm="..."``."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return Challenge(scheme.lower(), params)


def merge_scopes(*scopes: str) -> list[str]:
    """``repository:NAME:ACTIONS`` scopes (space-separated in each argument), one per resource with the union of
    its actions, in first-seen order: a token asked for covers what this request needs and what the challenge named."""
    merged: dict[str, list[str]] = {}
    for text in scopes:
        for item in text.split():
            resource, _, actions = item.rpartition(":")
            if not resource:
                continue
            have = merged.setdefault(resource, [])
            have.extend(a for a in actions.split(",") if a and a not in have)
    return [f"{resource}:{','.join(actions)}" for resource, actions in merged.items()]


@dataclass(frozen=True)
class BlobResult:
    """How a blob reached the repository: ``present`` (HEAD found it), ``mounted``, or ``uploaded``."""

    digest: str
    size: int
    how: str
    resumed_from: int = 0


def sha256_file(path: Path) -> tuple[str, int]:
    """``sha256:<hex>`` and size of a file, read in pieces."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while piece := fh.read(PIECE):
            digest.update(piece)
            size += len(piece)
    return f"sha256:{digest.hexdigest()}", size


class RegistryClient:
    """One registry host; use as a context manager."""

    def __init__(
        self,
        host: str,
        *,
        credentials: Credentials | None = None,
        prompt: Callable[[str], Credentials | None] | None = None,
        plain_http: bool = False,
        ca_file: Path | None = None,
        chunk_size: int = DEFAULT_CHUNK,
        timeout: float = 30.0,
        backoff: float = 0.2,
    ) -> None:
        self.host = host
        self._base = f"{'http' if plain_http else 'https'}://{host}"
        self._credentials = credentials
        self._prompt = prompt
        self._chunk = max(chunk_size, 1)
        self._backoff = backoff
        self._basic = False
        self._tokens: dict[str, str] = {}
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            try:
                verify = ssl.create_default_context(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise EnvironmentFailure(f"cannot load the CA file: {exc}", path=str(ca_file)) from exc
        self._http = httpx.Client(verify=verify, timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=False)

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    # -- requests, auth and retries ------------------------------------------------------------------------------
    def _url(self, path_or_url: str) -> str:
        return urllib.parse.urljoin(self._base + "/", path_or_url)

    def _auth_header(self, scope: str) -> str | None:
        token = self._tokens.get(scope)
        if token is not None:
            return f"Bearer {token}"
        if self._basic and self._credentials is not None:
            pair = f"{self._credentials.username}:{self._credentials.password}".encode()
            return f"Basic {base64.b64encode(pair).decode()}"
        return None

    def _creds(self) -> Credentials | None:
        if self._credentials is None and self._prompt is not None:
            self._credentials = self._prompt(self.host)
            self._prompt = None
        return self._credentials

    def _refused(self, what: str) -> EnvironmentFailure:
        creds = self._credentials
        who = f" for user {creds.username!r}" if creds is not None else ""
        hint = (
            "check the user name and password, and that the user may push or pull this repository"
            if creds is not None
            else "give credentials with --registry-config FILE (docker config.json) or --credentials-file FILE"
        )
        return EnvironmentFailure(f"the registry {self.host} refused access{who}: {what}", hint=hint)

    def _authenticate(self, response: httpx.Response, scope: str) -> None:
        challenge = parse_challenge(response.headers.get("www-authenticate", ""))
        if challenge is None:
            raise self._refused("401 without a WWW-Authenticate challenge")
        if challenge.scheme == "basic":
            if self._basic or self._creds() is None:
                raise self._refused(
                    "the credentials were not accepted (Basic)"
                    if self._basic
                    else "it asks for a user name and password (Basic)"
                )
            self._basic = True
            return
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            raise self._refused(f"unsupported authentication scheme {challenge.scheme!r}")
        if scope in self._tokens:
            del self._tokens[scope]
            raise self._refused(f"the token for {scope!r} was not accepted ({challenge.params.get('error', '401')})")
        realm = challenge.params["realm"]
        if not realm.startswith(("https://", "http://")):
            raise self._refused(f"the token realm {realm!r} is not an http(s) URL")
        realm_host = urllib.parse.urlsplit(realm).hostname or ""
        if realm.startswith("http://") and not is_loopback(realm_host):
            raise self._refused(f"the token realm {realm!r} is plain HTTP; stella sends credentials only over TLS")
        wanted = merge_scopes(scope, challenge.params.get("scope", ""))
        params: list[tuple[str, str | int | float | bool | None]] = [("scope", s) for s in wanted]
        if "service" in challenge.params:
            params.insert(0, ("service", challenge.params["service"]))
        creds = self._creds()
        auth = httpx.BasicAuth(creds.username, creds.password) if creds is not None else None
        reply = self._send_retrying(lambda: self._http.build_request("GET", realm, params=params), auth=auth)
        if reply.status_code in (401, 403):
            raise self._refused(f"the token service answered {reply.status_code}")
        if reply.status_code != 200:
            raise EnvironmentFailure(f"the token service of {self.host} answered {reply.status_code}")
        try:
            body = reply.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise EnvironmentFailure(f"the token service of {self.host} gave no token")
        self._tokens[scope] = token

    def _pause(self, attempt: int, response: httpx.Response | None) -> None:
        delay = min(self._backoff * (2**attempt), 5.0)
        if response is not None:
            after = response.headers.get("retry-after", "")
            if after.isdigit():
                delay = min(float(after), 10.0)
        time.sleep(delay)

    def _send_retrying(
        self,
        build: Callable[[], httpx.Request],
        *,
        auth: httpx.Auth | None = None,
        stream: bool = False,
        attempts: int = ATTEMPTS,
    ) -> httpx.Response:
        for attempt in range(attempts):
            try:
                response = self._http.send(build(), auth=auth, stream=stream)
            except httpx.TransportError as exc:
                if attempt + 1 == attempts:
                    raise EnvironmentFailure(f"cannot reach the registry {self.host}: {exc}") from exc
                self._pause(attempt, None)
                continue
            if response.status_code in RETRY_STATUSES and attempt + 1 < attempts:
                response.close()
                self._pause(attempt, response)
                continue
            return response
        raise AssertionError("unreachable")

    def request(
        self,
        method: str,
        url: str,
        *,
        scope: str,
        headers: dict[str, str] | None = None,
        content: Callable[[], bytes | Iterator[bytes]] | None = None,
        stream: bool = False,
        follow: bool = False,
        idempotent: bool = True,
    ) -> httpx.Response:
        """One API call with auth and retries; ``content`` makes the body again for each attempt. A call that is
        not ``idempotent`` (a PATCH of upload bytes) is sent once: its caller asks the registry where it stands."""
        answered = False
        while True:

            def build() -> httpx.Request:
                h = dict(headers or {})
                header = self._auth_header(scope)
                if header is not None:
                    h["Authorization"] = header
                return self._http.build_request(
                    method, self._url(url), headers=h, content=content() if content is not None else None
                )

            response = self._send_retrying(build, stream=stream, attempts=ATTEMPTS if idempotent else 1)
            if follow and response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers:
                response.close()
                target = self._url(response.headers["location"])  # another origin gets no Authorization header
                plain = dict(headers or {})
                response = self._send_retrying(
                    lambda: self._http.build_request(method, target, headers=plain),  # noqa: B023 (used at once)
                    stream=stream,
                )
            if response.status_code == 401:
                response.read()
                response.close()
                if answered:
                    raise self._refused(f"{method} {urllib.parse.urlsplit(url).path} still answers 401")
                self._authenticate(response, scope)
                answered = True
                continue
            if response.status_code == 403:
                response.read()
                raise self._refused(f"{method} {urllib.parse.urlsplit(url).path} is denied (403)")
            return response

    def _fail(self, response: httpx.Response, what: str) -> EnvironmentFailure:
        detail = ""
        with contextlib.suppress(Exception):
            errors = json.loads(response.read()[:65536]).get("errors") or []
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
        return EnvironmentFailure(
            f"the registry {self.host} answered {response.status_code} to {what}" + (f" ({detail})" if detail else "")
        )

    # -- blobs ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _scope(repo: str, actions: str) -> str:
        return f"repository:{repo}:{actions}"

    def blob_exists(self, repo: str, digest: str, *, push: bool = False) -> bool:
        scope = self._scope(repo, "pull,push" if push else "pull")
        response = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=scope)
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._fail(response, f"HEAD blob {digest}")

    def push_blob(
        self,
        repo: str,
        path: Path,
        digest: str,
        size: int,
        *,
        state_file: Path | None = None,
        mount_from: tuple[str, ...] = (),
        observer: Observer | None = None,
    ) -> BlobResult:
        """Put the file at ``path`` (``digest``, ``size``) into ``repo``, skipping, mounting or resuming when it can."""
        sink = observer or NullObserver()
        scope = self._scope(repo, "pull,push")
        if self.blob_exists(repo, digest, push=True):
            return BlobResult(digest, size, "present")
        for source in mount_from:
            mount_scope = f"{scope} {self._scope(source, 'pull')}"
            response = self.request(
                "POST", f"/v2/{repo}/blobs/uploads/?mount={digest}&from={source}", scope=mount_scope
            )
            response.read()
            if response.status_code == 201:
                return BlobResult(digest, size, "mounted")
            if response.status_code == 202:
                self._cancel_upload(response, scope)
        location, offset = self._resume(repo, digest, state_file, scope)
        resumed = offset
        if location is None:
            location, offset = self._start_upload(repo, scope), 0
        if sink.is_cancelled():
            raise Cancelled("push cancelled; run it again to resume the upload")
        sink.start("upload", size)
        sink.advance(offset)
        with path.open("rb") as fh:
            if offset == 0 and size <= self._chunk:
                self._put_whole(repo, location, fh, digest, size, scope)
            else:
                location = self._upload_chunks(repo, location, fh, offset, size, digest, state_file, scope, sink)
                self._finish_upload(location, digest, scope)
        sink.finish("upload")
        if state_file is not None:
            state_file.unlink(missing_ok=True)
        return BlobResult(digest, size, "uploaded", resumed)

    def _cancel_upload(self, response: httpx.Response, scope: str) -> None:
        if "location" in response.headers:
            with contextlib.suppress(EnvironmentFailure):
                self.request("DELETE", response.headers["location"], scope=scope).read()

    def _start_upload(self, repo: str, scope: str) -> str:
        response = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope)
        response.read()
        if response.status_code != 202 or "location" not in response.headers:
            raise self._fail(response, f"starting an upload to {repo}")
        return self._url(response.headers["location"])

    def _upload_offset(self, location: str, scope: str) -> int | None:
        """How many bytes the registry holds of the upload at ``location`` (None: the upload is gone)."""
        response = self.request("GET", location, scope=scope)
        response.read()
        if response.status_code != 204:
            return None
        match = re.fullmatch(r"0-(\d+)", response.headers.get("range", ""))
        if match is None:
            return None
        end = int(match.group(1))
        return end + 1 if end > 0 else None  # "0-0" is both nothing and one byte: start again

    def _resume(self, repo: str, digest: str, state_file: Path | None, scope: str) -> tuple[str | None, int]:
        if state_file is None or not state_file.is_file():
            return None, 0
        try:
            state = json.loads(state_file.read_bytes())
            location = str(state["location"])
            ok = state.get("host") == self.host and state.get("repository") == repo and state.get("digest") == digest
        except (OSError, ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            state_file.unlink(missing_ok=True)
            return None, 0
        offset = self._upload_offset(location, scope)
        if offset is None:
            state_file.unlink(missing_ok=True)
            return None, 0
        return location, offset

    def _save_state(self, state_file: Path | None, repo: str, digest: str, location: str, offset: int) -> None:
        if state_file is None:
            return
        state_file.parent.mkdir(parents=True, exist_ok=True)
        doc = {"host": self.host, "repository": repo, "digest": digest, "location": location, "offset": offset}
        write_bytes(state_file, json.dumps(doc).encode())

    @staticmethod
    def _pieces(fh: Any, start: int, length: int) -> Callable[[], Iterator[bytes]]:
        def make() -> Iterator[bytes]:
            fh.seek(start)
            left = length
            while left > 0:
                piece = fh.read(min(PIECE, left))
                if not piece:
                    raise EnvironmentFailure("the file being pushed got shorter", path=str(getattr(fh, "name", "")))
                left -= len(piece)
                yield piece

        return make

    def _put_whole(self, repo: str, location: str, fh: Any, digest: str, size: int, scope: str) -> None:
        response = self.request(
            "PUT",
            _with_digest(location, digest),
            scope=scope,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            content=self._pieces(fh, 0, size),
        )
        response.read()
        if response.status_code != 201:
            raise self._fail(response, f"PUT blob {digest}")

    def _upload_chunks(
        self,
        repo: str,
        location: str,
        fh: Any,
        offset: int,
        size: int,
        digest: str,
        state_file: Path | None,
        scope: str,
        sink: Observer,
    ) -> str:
        failures = 0
        while offset < size:
            if sink.is_cancelled():
                raise Cancelled("push cancelled; run it again to resume the upload")
            length = min(self._chunk, size - offset)
            try:
                response = self.request(
                    "PATCH",
                    location,
                    scope=scope,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(length),
                        "Content-Range": f"{offset}-{offset + length - 1}",
                    },
                    content=self._pieces(fh, offset, length),
                    idempotent=False,
                )
                response.read()
                if response.status_code in RETRY_STATUSES:
                    raise self._fail(response, f"PATCH of the upload of {digest}")
            except EnvironmentFailure:
                failures += 1
                if failures >= ATTEMPTS:
                    raise
                self._pause(failures, None)
                known = self._upload_offset(location, scope)
                if known is None:  # the upload is gone, or a cut chunk left it inconsistent: the blob starts again
                    location, known = self._start_upload(repo, scope), 0
                    self._save_state(state_file, repo, digest, location, 0)
                sink.advance(max(known - offset, 0))
                offset = known
                continue
            if response.status_code in (405, 501) and offset == 0:  # no chunked uploads: one streamed PUT
                self._put_whole(repo, location, fh, digest, size, scope)
                return ""
            if response.status_code != 202 or "location" not in response.headers:
                raise self._fail(response, f"PATCH of the upload of {digest}")
            location = self._url(response.headers["location"])
            offset += length
            self._save_state(state_file, repo, digest, location, offset)
            sink.advance(length)
        return location

    def _finish_upload(self, location: str, digest: str, scope: str) -> None:
        if not location:
            return  # finished by the monolithic fallback
        response = self.request("PUT", _with_digest(location, digest), scope=scope, headers={"Content-Length": "0"})
        response.read()
        if response.status_code != 201:
            raise self._fail(response, f"closing the upload of {digest}")

    def pull_blob(self, repo: str, digest: str, size: int, dest: Path, *, observer: Observer | None = None) -> int:
        """Download blob ``digest`` of ``size`` bytes to ``dest`` through ``.<name>.part`` (resumed if present);
        returns the bytes found already there. Nothing is left at ``dest`` unless the digest matched."""
        sink = observer or NullObserver()
        part = dest.parent / f".{dest.name}.part"
        digest_hex = digest.removeprefix("sha256:")
        hasher = hashlib.sha256()
        have = 0
        if part.is_file() and not part.is_symlink():
            with part.open("rb") as fh:
                while (piece := fh.read(PIECE)) and have + len(piece) <= size:
                    hasher.update(piece)
                    have += len(piece)
            if have != part.stat().st_size:  # longer than the blob: start again
                hasher, have = hashlib.sha256(), 0
        headers = {"Range": f"bytes={have}-"} if 0 < have < size else {}
        if have == size:
            headers = {}
            hasher, have = hashlib.sha256(), 0
        response = self.request(
            "GET",
            f"/v2/{repo}/blobs/{digest}",
            scope=self._scope(repo, "pull"),
            headers=headers,
            stream=True,
            follow=True,
        )
        try:
            if response.status_code == 200:
                hasher, have = hashlib.sha256(), 0  # the registry ignored Range: the whole blob again
            elif response.status_code != 206 or not headers:
                raise self._fail(response, f"GET blob {digest}")
            elif not response.headers.get("content-range", "").startswith(f"bytes {have}-"):
                raise IntegrityError(
                    f"the registry {self.host} answered a resumed download of {digest} with another range"
                    f" ({response.headers.get('content-range')!r}, asked from byte {have})",
                    path=str(dest),
                )
            resumed = have
            sink.start("download", size)
            sink.advance(have)
            flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_APPEND if have else os.O_TRUNC)
            with os.fdopen(os.open(part, flags, 0o644), "wb") as out:
                for piece in response.iter_bytes():  # as received: what arrived before a cut is kept for the resume
                    if sink.is_cancelled():
                        raise Cancelled("pull cancelled; run it again to resume")
                    have += len(piece)
                    if have > size:
                        break
                    hasher.update(piece)
                    out.write(piece)
                    sink.advance(len(piece))
                out.flush()
                os.fsync(out.fileno())
        except httpx.TransportError as exc:
            raise EnvironmentFailure(
                f"the download of {digest} from {self.host} broke off: {exc}; run it again to resume"
            ) from exc
        finally:
            response.close()
        sink.finish("download")
        if have != size or hasher.hexdigest() != digest_hex:
            part.unlink(missing_ok=True)
            raise IntegrityError(
                f"the registry {self.host} served blob {digest} of {repo} with other bytes"
                f" ({have} bytes, sha256:{hasher.hexdigest() if have == size else '?'}); nothing was written",
                path=str(dest),
                hint="the blob is damaged on the registry or was altered; push it again",
            )
        part.replace(dest)
        fsync_dir(dest.parent)
        return resumed

    # -- manifests -----------------------------------------------------------------------------------------------
    def manifest_exists(self, repo: str, reference: str, *, push: bool = False) -> bool:
        scope = self._scope(repo, "pull,push" if push else "pull")
        response = self.request(
            "HEAD", f"/v2/{repo}/manifests/{reference}", scope=scope, headers={"Accept": f"{OCI_MANIFEST},{OCI_INDEX}"}
        )
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._fail(response, f"HEAD manifest {reference}")

    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> httpx.Response:
        response = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            scope=self._scope(repo, "pull,push"),
            headers={"Content-Type": media_type},
            content=lambda: body,
        )
        response.read()
        if response.status_code != 201:
            raise self._fail(response, f"PUT manifest {reference}")
        return response

    def get_manifest(self, repo: str, reference: str) -> bytes | None:
        """The manifest bytes at ``reference``, checked against it when it is a digest; None when absent."""
        response = self.request(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            scope=self._scope(repo, "pull"),
            headers={"Accept": f"{OCI_MANIFEST},{OCI_INDEX}"},
            stream=True,
        )
        try:
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise self._fail(response, f"GET manifest {reference}")
            body = bytearray()
            for piece in response.iter_bytes(PIECE):
                body += piece
                if len(body) > MAX_MANIFEST:
                    raise IntegrityError(f"the manifest {reference} of {repo} is larger than {MAX_MANIFEST} bytes")
        finally:
            response.close()
        if reference.startswith("sha256:") and f"sha256:{hashlib.sha256(body).hexdigest()}" != reference:
            raise IntegrityError(
                f"the registry {self.host} served manifest {reference} of {repo} with other bytes"
                f" (sha256:{hashlib.sha256(body).hexdigest()})",
                hint="the manifest is damaged on the registry or was altered",
            )
        return bytes(body)

    def push_manifest(self, repo: str, body: bytes, media_type: str, *, tag: str | None = None) -> tuple[str, bool]:
        """Push ``body`` by digest (skipped when present), then tag it; returns the digest and whether the registry
        said it knows the manifest's ``subject`` (an ``OCI-Subject`` header: the referrers API)."""
        digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
        subject_known = False
        if not self.manifest_exists(repo, digest, push=True):
            response = self.put_manifest(repo, digest, body, media_type)
            subject_known = "oci-subject" in response.headers
        if tag is not None:
            self.put_manifest(repo, tag, body, media_type)
        return digest, subject_known

    def delete_manifest(self, repo: str, digest: str) -> str:
        """DELETE the manifest ``digest`` of ``repo`` (the registry drops the tags pointing at it): ``deleted``,
        ``absent`` (404: gone already) or ``unsupported`` (405: the registry does not delete, as distribution
        without ``storage.delete.enabled``); anything else fails."""
        response = self.request("DELETE", f"/v2/{repo}/manifests/{digest}", scope=self._scope(repo, "delete"))
        response.read()
        if response.status_code in (200, 202):
            return "deleted"
        if response.status_code == 404:
            return "absent"
        if response.status_code == 405:
            return "unsupported"
        raise self._fail(response, f"DELETE manifest {digest}")

    def add_referrer(self, repo: str, subject: str, descriptor: dict[str, Any]) -> bool:
        """Record ``descriptor`` as a referrer of ``subject`` in the referrers tag schema (``sha256-<hex>`` index):
        read, add unless present, write. Returns whether the index changed."""
        tag = REFERRERS_TAG_PREFIX + subject.removeprefix("sha256:")
        current = self.get_manifest(repo, tag)
        index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        if current is not None:
            try:
                index = json.loads(current)
            except ValueError as exc:
                raise IntegrityError(f"the referrers index {tag} of {repo} is not JSON") from exc
            if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
                raise IntegrityError(f"the referrers index {tag} of {repo} is not an image index")
        if any(isinstance(m, dict) and m.get("digest") == descriptor["digest"] for m in index["manifests"]):
            return False
        index["manifests"].append(descriptor)
        body = json.dumps(index, separators=(",", ":"), sort_keys=True).encode()
        self.put_manifest(repo, tag, body, OCI_INDEX)
        return True

    def referrers_api(self, repo: str, subject: str) -> bool:
        """Whether the registry answers the referrers API for ``repo`` (distribution 2.8 answers 404)."""
        response = self.request(
            "GET", f"/v2/{repo}/referrers/{subject}", scope=self._scope(repo, "pull"), headers={"Accept": OCI_INDEX}
        )
        response.read()
        return response.status_code == 200 and response.headers.get("content-type", "").startswith(OCI_INDEX)


def _with_digest(location: str, digest: str) -> str:
    """The upload location with ``digest=`` added, keeping its query (distribution's ``_state``)."""
    return location + ("&" if "?" in location else "?") + urllib.parse.urlencode({"digest": digest})
