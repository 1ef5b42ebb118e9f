"""Streaming bundle download with Range resume and a digest check (hand-written; kept across regeneration).

The generated ``download_run`` operation reads the whole bundle into memory. :func:`download_bundle` streams it to
``DEST.part`` instead, resumes an interrupted download with ``Range`` + ``If-Range`` (the strong ETag of the first
response, kept in ``DEST.part.etag``), and moves the file to ``DEST`` only when its SHA-256 and length equal the
``X-Export-Digest`` and ``X-Export-Length`` the server sent. A bundle that changed since the part was written (the
ETag no longer matches) restarts from zero, as RFC 9110 §13.1.5 has the server answer 200.

The signature inside the bundle stays the trust anchor: run ``stella verify DEST`` after downloading.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .client import AuthenticatedClient, Client

DOWNLOAD_PATH = "/api/v1/export/runs/{run_id}/download"
_CHUNK = 1 << 20


class DownloadError(Exception):
    """The server's answer cannot give a complete, correct bundle."""


class DigestMismatch(DownloadError):
    """The downloaded bytes are not the bundle the server described (``X-Export-Digest`` / ``X-Export-Length``)."""


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    sha256: str  # hex
    size: int
    resumed_from: int  # bytes already on disk when this call started (0: a fresh download)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_bundle(
    client: AuthenticatedClient | Client,
    run_id: str,
    dest: str | os.PathLike[str],
    *,
    max_bytes: int | None = None,
) -> DownloadResult:
    """Download run ``run_id``'s bundle to ``dest``, resuming ``dest.part`` if an earlier call was interrupted.

    ``max_bytes`` stops after that many bytes of this response (to simulate an interruption in tests); the part
    file then stays for the next call, which resumes it.
    """
    target = Path(dest)
    part = target.with_name(target.name + ".part")
    etag_file = target.with_name(target.name + ".part.etag")
    have = part.stat().st_size if part.exists() else 0
    etag = etag_file.read_text(encoding="ascii").strip() if etag_file.exists() else None
    headers: dict[str, str] = {}
    if have and etag:
        headers = {"Range": f"bytes={have}-", "If-Range": etag}
    else:
        have = 0
    url = DOWNLOAD_PATH.format(run_id=run_id)
    http = client.get_httpx_client()
    with http.stream("GET", url, headers=headers) as response:
        if response.status_code == 416 and have:
            # Nothing left to fetch: the part may already be whole; the digest check below decides.
            expected_digest = response.headers.get("x-export-digest")
            expected_length = response.headers.get("x-export-length")
            return _finish(part, etag_file, target, expected_digest, expected_length, have)
        if response.status_code not in (200, 206):
            response.read()
            raise DownloadError(f"download of run {run_id} answered {response.status_code}: {response.text[:500]}")
        expected_digest = response.headers.get("x-export-digest")
        expected_length = response.headers.get("x-export-length")
        if not expected_digest or not expected_length:
            raise DownloadError("the server sent no X-Export-Digest / X-Export-Length")
        if response.status_code == 200:
            have = 0  # a fresh body: the bundle changed, or this is the first call
        elif not response.headers.get("content-range", "").startswith(f"bytes {have}-"):
            raise DownloadError(f"the server resumed at the wrong offset: {response.headers.get('content-range')}")
        new_etag = response.headers.get("etag")
        if new_etag and not new_etag.startswith("W/"):
            etag_file.write_text(new_etag, encoding="ascii")
        written = 0
        with part.open("ab" if have else "wb") as fh:
            for chunk in response.iter_bytes(_CHUNK):
                if max_bytes is not None and written + len(chunk) > max_bytes:
                    fh.write(chunk[: max_bytes - written])
                    fh.flush()
                    os.fsync(fh.fileno())
                    raise DownloadError(f"stopped after {max_bytes} bytes (resume with another call)")
                fh.write(chunk)
                written += len(chunk)
            fh.flush()
            os.fsync(fh.fileno())
    return _finish(part, etag_file, target, expected_digest, expected_length, have)


def _finish(
    part: Path, etag_file: Path, target: Path, digest: str | None, length: str | None, resumed_from: int
) -> DownloadResult:
    if not digest or not digest.startswith("sha256:") or not length or not length.isdigit():
        raise DownloadError("the server sent no usable X-Export-Digest / X-Export-Length")
    size = part.stat().st_size
    actual = _sha256_of(part)
    if size != int(length) or actual != digest.removeprefix("sha256:"):
        part.unlink()
        etag_file.unlink(missing_ok=True)
        raise DigestMismatch(
            f"downloaded {size} bytes with sha256:{actual}; the server described {length} and {digest}"
        )
    part.replace(target)
    etag_file.unlink(missing_ok=True)
    return DownloadResult(target, actual, size, resumed_from)
