"""An S3-compatible object store through boto3: create-only puts with SHA-256 checksums, Object Lock, read-back.

Every write is create-only (``If-None-Match: *``): a key that already holds an object is never overwritten, the
put answers ``None`` and the caller decides whether the object there is the same one. Every write carries the
SHA-256 of its bytes (``ChecksumAlgorithm=SHA256`` with the digest computed here, per part for a multipart
upload), and :meth:`S3Store.read_sha256` reads an object back and hashes it. Large files go up in parts read one at
a time, so memory stays at one part whatever the bundle's size.

boto3 is imported when a store is opened, never when this module is, so ``stella --help`` does not load it.
Credentials come from the local sources of botocore's chain only (the ``AWS_*`` variables, a credentials file, a
config file, a ``credential_process``); the ones that reach the network (instance metadata, container role, SSO,
STS role assumption) are removed, so an air-gapped host never waits on them. Credentials are never printed.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from core.errors import (
    BadInputError,
    Cancelled,
    EnvironmentFailure,
    IntegrityError,
    StellaError,
    UsageError,
)
from core.progress import NullObserver, Observer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, ObjectLockRetentionTypeDef

S3_SCHEME = "s3://"
DEFAULT_PART_SIZE = 16 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's floor for every part but the last
MAX_PARTS = 10_000
READ_CHUNK = 1024 * 1024
MAX_KEY_BYTES = 1024
DEFAULT_REGION = "us-east-1"

# botocore credential providers that reach the network; an offline tool never asks them.
_NETWORK_PROVIDERS = ("iam-role", "container-role", "sso", "login", "assume-role", "assume-role-with-web-identity")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_SEGMENT = re.compile(r"[A-Za-z0-9!_.*'()-]+")


class LockMode(StrEnum):
    """S3 Object Lock retention modes (lower-case on the command line, upper-case on the wire)."""

    GOVERNANCE = "governance"
    COMPLIANCE = "compliance"


@dataclass(frozen=True)
class S3Location:
    """``s3://BUCKET/PREFIX``: a bucket and a key prefix without leading or trailing ``/``."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """Parse and check a target URL: a valid bucket name, a prefix of plain segments (no ``.``, ``..`` or
        empty segments, no control characters), so a key built from it means one object and nothing else."""
        if not url.startswith(S3_SCHEME):
            raise UsageError(f"{url!r} is not an s3:// URL", hint="e.g. s3://bucket/exports")
        bucket, _, prefix = url[len(S3_SCHEME) :].partition("/")
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise UsageError(
                f"{bucket!r} is not a valid bucket name",
                hint="3 to 63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit",
            )
        prefix = prefix.strip("/")
        if prefix:
            for segment in prefix.split("/"):
                check_segment(segment, f"the prefix of {url!r}")
        return cls(bucket, prefix)

    def key(self, *segments: str) -> str:
        """The object key ``PREFIX/SEG/.../SEG``; each segment is checked like the prefix's."""
        for segment in segments:
            check_segment(segment, "an object key")
        key = "/".join([self.prefix, *segments] if self.prefix else segments)
        if len(key.encode("utf-8")) > MAX_KEY_BYTES:
            raise UsageError(f"the object key {key!r} is longer than {MAX_KEY_BYTES} bytes")
        return key

    def url(self, key: str) -> str:
        return f"{S3_SCHEME}{self.bucket}/{key}"


def check_segment(segment: str, where: str) -> None:
    """One key segment: URL-safe characters only (S3's "safe" set), never ``.`` or ``..``."""
    if segment in ("", ".", "..") or not _SEGMENT.fullmatch(segment):
        raise UsageError(
            f"{segment!r} in {where} is not a plain key segment",
            hint="use letters, digits and !_.*'()- between '/' (no empty, '.' or '..' segments)",
        )


@dataclass(frozen=True)
class Endpoint:
    """How to reach the store: the endpoint URL (none: AWS), path-style addressing, a CA bundle, a credentials file."""

    url: str | None = None
    path_style: bool = False
    ca_file: Path | None = None
    credentials_file: Path | None = None
    region: str | None = None

    def check(self) -> None:
        """An endpoint is https, or plain http on a loopback address only (credentials sign every request, but the
        bundle would travel in clear); the CA and credentials files exist."""
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise UsageError(f"--endpoint-url {self.url!r} is not an http(s) URL")
            if parts.scheme == "http" and not _loopback(parts.hostname):
                raise UsageError(
                    f"--endpoint-url {self.url!r} is plain HTTP to a host that is not loopback",
                    hint="use https (with --ca-file for a private CA); plain http is allowed on 127.0.0.1 only",
                )
        for flag, path in (("--ca-file", self.ca_file), ("--credentials-file", self.credentials_file)):
            if path is not None and not path.is_file():
                raise BadInputError(f"{flag} {path} is not a readable file", path=str(path))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ObjectLock:
    """What to ask of Object Lock: a retention (mode and date, naive UTC) and a legal hold."""

    mode: LockMode | None = None
    retain_until: datetime | None = None
    legal_hold: bool = False

    @property
    def requested(self) -> bool:
        return self.mode is not None or self.legal_hold

    def put_arguments(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self.mode is not None and self.retain_until is not None:
            args["ObjectLockMode"] = self.mode.value.upper()
            args["ObjectLockRetainUntilDate"] = self.retain_until.replace(tzinfo=UTC)
        if self.legal_hold:
            args["ObjectLockLegalHoldStatus"] = "ON"
        return args


@dataclass(frozen=True)
class StoredObject:
    """One object version as the store reports it (``HEAD``), or as a put created it."""

    key: str
    version_id: str | None
    etag: str | None
    checksum_sha256: str | None  # base64, as S3 spells it; for a multipart object the checksum of the part checksums
    size: int
    parts: int = 1
    reused: int = 0  # parts of an unfinished earlier upload that a resumed upload did not send again
    lock_mode: LockMode | None = None
    retain_until: datetime | None = None
    legal_hold: bool = False


def sha256_b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class _HeldPart:
    """A part an unfinished upload already holds: its ETag and, where the store reports it, its SHA-256."""

    etag: str
    checksum_sha256: str | None


def _held_etag(held: _HeldPart | None, chunk: bytes, digest: bytes) -> str | None:
    """The held part's ETag if it holds exactly ``chunk``: its reported SHA-256 equals ``digest``, or, from a store
    that does not report part checksums, its ETag is the MD5 of ``chunk`` (S3's ETag of a plain part)."""
    if held is None:
        return None
    if held.checksum_sha256 is not None:
        return held.etag if held.checksum_sha256 == sha256_b64(digest) else None
    md5 = hashlib.md5(chunk, usedforsecurity=False).hexdigest()
    return held.etag if held.etag.strip('"') == md5 else None


def composite_sha256(part_digests: list[bytes]) -> str:
    """S3's checksum of a multipart object: SHA-256 over the parts' SHA-256 digests, base64."""
    return sha256_b64(hashlib.sha256(b"".join(part_digests)).digest())


class S3Store:
    """A boto3 S3 client for one endpoint, with every botocore failure turned into a :class:`StellaError`."""

    def __init__(self, endpoint: Endpoint) -> None:
        endpoint.check()
        self.endpoint = endpoint
        self.client: S3Client = _open_client(endpoint)

    def lock_enabled(self, bucket: str) -> bool:
        """Whether the bucket has Object Lock enabled (created with it, so versioned)."""
        with _calls(f"reading the Object Lock configuration of bucket {bucket}"):
            try:
                config = self.client.get_object_lock_configuration(Bucket=bucket)
            except Exception as exc:
                if _error_code(exc) == "ObjectLockConfigurationNotFoundError":
                    return False
                raise
        return config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"

    def head(self, bucket: str, key: str, version_id: str | None = None) -> StoredObject | None:
        """The object's current version (or ``version_id``), or None when there is none."""
        args: dict[str, Any] = {"Bucket": bucket, "Key": key, "ChecksumMode": "ENABLED"}
        if version_id is not None:
            args["VersionId"] = version_id
        with _calls(f"reading s3://{bucket}/{key}"):
            try:
                head = self.client.head_object(**args)
            except Exception as exc:
                if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
        mode = head.get("ObjectLockMode")
        until = head.get("ObjectLockRetainUntilDate")
        checksum = head.get("ChecksumSHA256")
        return StoredObject(
            key=key,
            version_id=head.get("VersionId"),
            etag=head.get("ETag"),
            checksum_sha256=checksum.split("-")[0] if checksum else None,
            size=int(head.get("ContentLength", 0)),
            parts=int(head.get("PartsCount") or 1),
            lock_mode=LockMode(mode.lower()) if mode else None,
            retain_until=until.astimezone(UTC).replace(tzinfo=None) if until else None,
            legal_hold=head.get("ObjectLockLegalHoldStatus") == "ON",
        )

    def put_file(
        self,
        bucket: str,
        key: str,
        path: Path,
        *,
        sha256: str,
        lock: ObjectLock,
        part_size: int = DEFAULT_PART_SIZE,
        observer: Observer | None = None,
    ) -> StoredObject | None:
        """Create ``key`` from ``path``, whose SHA-256 must be ``sha256`` (hex), unless the key already holds an
        object: then nothing is written and the answer is None.

        A file up to ``part_size`` goes up in one ``PutObject``; a larger one in parts of ``part_size`` bytes, each
        read, hashed and sent in turn. The whole file is hashed on the way: if it is not ``sha256`` nothing is
        created (:class:`IntegrityError`). A multipart upload that is cancelled, or whose file or bytes are wrong, is
        aborted, so no parts are left behind; one that the store or the network broke (or a killed process) leaves
        its parts, and the next put of the same key resumes it, sending only the parts it does not hold.
        """
        sink = observer or NullObserver()
        size = path.stat().st_size
        part_size = max(part_size, MIN_PART_SIZE, -(-size // MAX_PARTS))
        sink.start("uploading", total=size)
        try:
            if size <= part_size:
                return self._put_single(bucket, key, path, sha256, lock, sink)
            return self._put_multipart(bucket, key, path, sha256, lock, part_size, sink)
        finally:
            sink.finish("uploading")

    def _put_single(
        self, bucket: str, key: str, path: Path, sha256: str, lock: ObjectLock, sink: Observer
    ) -> StoredObject | None:
        data = _read_file(path, 0, None)
        digest = hashlib.sha256(data).digest()
        _check_local(path, digest.hex(), sha256)
        with _calls(f"writing s3://{bucket}/{key}"):
            try:
                put = self.client.put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=data,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=sha256_b64(digest),
                    IfNoneMatch="*",
                    **lock.put_arguments(),
                )
            except Exception as exc:
                if _error_code(exc) == "PreconditionFailed":
                    return None
                raise
        sink.advance(len(data))
        return StoredObject(key, _version(put.get("VersionId")), put.get("ETag"), sha256_b64(digest), len(data))

    def _put_multipart(
        self, bucket: str, key: str, path: Path, sha256: str, lock: ObjectLock, part_size: int, sink: Observer
    ) -> StoredObject | None:
        url = f"s3://{bucket}/{key}"
        resumed = self._resumable(bucket, key)
        if resumed is not None:
            upload_id, held = resumed
        else:
            held = {}
            with _calls(f"starting a multipart upload to {url}"):
                upload_id = self.client.create_multipart_upload(
                    Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256", **lock.put_arguments()
                )["UploadId"]
        reused = 0
        try:
            whole = hashlib.sha256()
            digests: list[bytes] = []
            parts: list[CompletedPartTypeDef] = []
            size = 0
            with path.open("rb") as src:
                while chunk := src.read(part_size):
                    if sink.is_cancelled():
                        raise Cancelled(f"upload to {url} cancelled; nothing was created")
                    whole.update(chunk)
                    digest = hashlib.sha256(chunk).digest()
                    number = len(parts) + 1
                    etag = _held_etag(held.get(number), chunk, digest)
                    if etag is not None:
                        reused += 1
                    else:
                        with _calls(f"uploading part {number} to {url}"):
                            etag = self.client.upload_part(
                                Bucket=bucket,
                                Key=key,
                                UploadId=upload_id,
                                PartNumber=number,
                                Body=chunk,
                                ChecksumAlgorithm="SHA256",
                                ChecksumSHA256=sha256_b64(digest),
                            )["ETag"]
                    digests.append(digest)
                    parts.append({"PartNumber": number, "ETag": etag, "ChecksumSHA256": sha256_b64(digest)})
                    size += len(chunk)
                    sink.advance(len(chunk))
            _check_local(path, whole.hexdigest(), sha256)
            with _calls(f"completing the multipart upload to {url}"):
                try:
                    done = self.client.complete_multipart_upload(
                        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
                    )
                except Exception as exc:
                    if _error_code(exc) == "PreconditionFailed":
                        self._abort(bucket, key, upload_id)
                        return None
                    raise
        except EnvironmentFailure as exc:
            # The store or the network failed: the parts sent stay, and the same command resumes from them.
            exc.hint = (exc.hint + "; " if exc.hint else "") + (
                f"{len(parts)} part(s) are in the store's multipart upload; run the same command again to resume"
            )
            raise
        except BaseException:
            self._abort(bucket, key, upload_id)  # asked to stop, or the file is not the run's: nothing stays
            raise
        return StoredObject(
            key,
            _version(done.get("VersionId")),
            done.get("ETag"),
            composite_sha256(digests),
            size,
            parts=len(parts),
            reused=reused,
        )

    def _resumable(self, bucket: str, key: str) -> tuple[str, dict[int, _HeldPart]] | None:
        """The newest unfinished SHA-256 multipart upload of ``key`` (a killed or failed earlier attempt) and the
        parts it holds; None when there is none. A part is reused only if it holds the local part's bytes
        (:func:`_held_etag`), S3 checks each part's SHA-256 again on completion, and the object is read back and
        hashed after the upload anyway."""
        with _calls(f"listing unfinished uploads of s3://{bucket}/{key}"):
            listed = self.client.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])
        candidates = [u for u in listed if u.get("Key") == key and u.get("ChecksumAlgorithm") == "SHA256"]
        candidates.sort(key=lambda u: u.get("Initiated") or datetime.min.replace(tzinfo=UTC), reverse=True)
        if not candidates:
            return None
        upload_id = candidates[0]["UploadId"]
        held: dict[int, _HeldPart] = {}
        marker = 0
        with _calls(f"listing the parts of an unfinished upload of s3://{bucket}/{key}"):
            while True:
                page = self.client.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker)
                for part in page.get("Parts", []):
                    number, etag = part.get("PartNumber"), part.get("ETag")
                    if isinstance(number, int) and isinstance(etag, str):
                        held[number] = _HeldPart(etag, part.get("ChecksumSHA256"))
                if not page.get("IsTruncated"):
                    break
                marker = int(page.get("NextPartNumberMarker", 0))
        return upload_id, held

    def _abort(self, bucket: str, key: str, upload_id: str) -> None:
        with suppress(Exception):  # best effort: the failure being reported matters more
            self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

    def set_lock(self, bucket: str, key: str, version_id: str | None, lock: ObjectLock) -> None:
        """Set the retention and legal hold of one version (for a store that dropped them from a multipart upload)."""
        version: dict[str, Any] = {} if version_id is None else {"VersionId": version_id}
        with _calls(f"setting Object Lock on s3://{bucket}/{key}"):
            if lock.mode is not None and lock.retain_until is not None:
                retention: ObjectLockRetentionTypeDef = {
                    "Mode": "COMPLIANCE" if lock.mode is LockMode.COMPLIANCE else "GOVERNANCE",
                    "RetainUntilDate": lock.retain_until.replace(tzinfo=UTC),
                }
                self.client.put_object_retention(
                    Bucket=bucket, Key=key, Retention=retention, ChecksumAlgorithm="SHA256", **version
                )
            if lock.legal_hold:
                self.client.put_object_legal_hold(
                    Bucket=bucket, Key=key, LegalHold={"Status": "ON"}, ChecksumAlgorithm="SHA256", **version
                )

    def put_bytes(self, bucket: str, key: str, data: bytes) -> StoredObject:
        """Write a small object (a sidecar that may be replaced by a longer version of itself), SHA-256 checked by
        the store."""
        digest = hashlib.sha256(data).digest()
        with _calls(f"writing s3://{bucket}/{key}"):
            put = self.client.put_object(
                Bucket=bucket, Key=key, Body=data, ChecksumAlgorithm="SHA256", ChecksumSHA256=sha256_b64(digest)
            )
        return StoredObject(key, _version(put.get("VersionId")), put.get("ETag"), sha256_b64(digest), len(data))

    def delete_version(self, bucket: str, key: str, version_id: str | None) -> None:
        """Delete one version of the object (no bypass of a governance lock: a locked version refuses)."""
        version: dict[str, Any] = {} if version_id is None else {"VersionId": version_id}
        with _calls(f"deleting s3://{bucket}/{key}"):
            self.client.delete_object(Bucket=bucket, Key=key, **version)

    def read_sha256(
        self, bucket: str, key: str, version_id: str | None = None, observer: Observer | None = None
    ) -> tuple[str, int]:
        """GET the object (the version when given) and hash it as it streams: (sha256 hex, size)."""
        sink = observer or NullObserver()
        args: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id is not None:
            args["VersionId"] = version_id
        digest = hashlib.sha256()
        size = 0
        url = f"s3://{bucket}/{key}"
        with _calls(f"reading back {url}"):
            got = self.client.get_object(**args)
            sink.start("reading back", total=int(got.get("ContentLength", 0)) or None)
            body = got["Body"]
            try:
                for chunk in body.iter_chunks(READ_CHUNK):
                    if sink.is_cancelled():
                        raise Cancelled(f"reading back {url} cancelled")
                    digest.update(chunk)
                    size += len(chunk)
                    sink.advance(len(chunk))
            finally:
                body.close()
                sink.finish("reading back")
        return digest.hexdigest(), size


def _version(version_id: str | None) -> str | None:
    """A put's version id, None for an unversioned object: S3 may call that version "null", which a later request
    must not name (moto answers HEAD ?versionId=null with 400); the key alone reads it."""
    return None if version_id in (None, "", "null") else version_id


def _read_file(path: Path, offset: int, length: int | None) -> bytes:
    try:
        with path.open("rb") as src:
            src.seek(offset)
            return src.read() if length is None else src.read(length)
    except OSError as exc:
        raise EnvironmentFailure(f"cannot read {path}: {exc.strerror}", path=str(path)) from exc


def _check_local(path: Path, got: str, expected: str) -> None:
    if got != expected:
        raise IntegrityError(
            f"{path} changed since it was built: sha256 {got}, the run recorded {expected}; nothing was uploaded",
            path=str(path),
        )


def _open_client(endpoint: Endpoint) -> S3Client:
    import boto3
    import botocore.session
    from botocore.config import Config

    core = botocore.session.Session()
    # The store is the one --endpoint-url names, never one AWS_ENDPOINT_URL or a config file slips in unchecked.
    core.set_config_variable("ignore_configured_endpoint_urls", True)
    if endpoint.credentials_file is not None:
        core.set_config_variable("credentials_file", str(endpoint.credentials_file))
    resolver = core.get_component("credential_provider")
    for name in _NETWORK_PROVIDERS:
        resolver.remove(name)
    with _calls("reading the S3 credentials"):
        credentials = core.get_credentials()
    if credentials is None:
        raise EnvironmentFailure(
            "no S3 credentials were found",
            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give --credentials-file FILE "
            "(an AWS credentials file; AWS_PROFILE picks its section)",
        )
    region = endpoint.region or core.get_config_variable("region") or DEFAULT_REGION
    config = Config(
        s3={"addressing_style": "path" if endpoint.path_style else "auto"},
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=10,
        read_timeout=60,
        signature_version="s3v4",
    )
    session = boto3.session.Session(botocore_session=core)
    verify: str | bool = str(endpoint.ca_file) if endpoint.ca_file is not None else True
    return session.client("s3", endpoint_url=endpoint.url, region_name=region, verify=verify, config=config)


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "")) or None
    return None


def _printable(text: object, limit: int = 200) -> str:
    """A server's words, safe for a terminal: printable characters only, bounded."""
    return "".join(c if c.isprintable() else "?" for c in str(text))[:limit]


_REFUSED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "403"}


@contextmanager
def _calls(what: str) -> Iterator[None]:
    """Turn botocore's failures while doing ``what`` into the tool's errors (credentials never appear in them)."""
    from botocore import exceptions as bex

    try:
        yield
    except StellaError:
        raise
    except bex.ClientError as exc:
        code = _error_code(exc) or "?"
        message = _printable(exc.response.get("Error", {}).get("Message", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        text = f"{what} failed: {_printable(code)} (HTTP {status}) {message}".rstrip()
        if code in ("NoSuchBucket", "NoSuchUpload"):
            raise BadInputError(text, hint="check the bucket in --to") from None
        if code in _REFUSED:  # as for a registry: a refusal of credentials or permission is the environment's
            raise EnvironmentFailure(text, hint="check the credentials and the bucket policy") from None
        if code in ("BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"):
            raise IntegrityError(text) from None
        raise EnvironmentFailure(text) from None
    except bex.NoCredentialsError:
        raise EnvironmentFailure(f"{what} failed: no S3 credentials were found") from None
    except bex.SSLError as exc:
        raise EnvironmentFailure(
            f"{what} failed: TLS: {_printable(exc)}", hint="give the store's CA certificate with --ca-file"
        ) from None
    except (bex.EndpointConnectionError, bex.ConnectTimeoutError, bex.ReadTimeoutError) as exc:
        raise EnvironmentFailure(f"{what} failed: {_printable(exc)}", hint="check --endpoint-url") from None
    except bex.FlexibleChecksumError as exc:
        raise IntegrityError(f"{what} failed: {_printable(exc)}") from None
    except bex.BotoCoreError as exc:
        raise EnvironmentFailure(f"{what} failed: {_printable(exc)}") from None
