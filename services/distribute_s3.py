"""`stella distribute RUN --to s3://BUCKET/PREFIX`: a run's bundle into an S3-compatible object store.

The bundle goes to ``PREFIX/TENANT/RUN-ID/BUNDLE-FILE``, create-only: a key that already holds the same bytes is
an idempotent success (no second record), a key holding anything else is refused and left alone. Each write
carries the bundle's SHA-256, and afterwards the object is read back with a GET and hashed: the store's own
checksum answer (HEAD) is compared too, but it only repeats what the client claimed on stores that do not check it
(moto keeps a wrong claimed checksum), so only the bytes read back prove what is stored. Object Lock retention and
legal hold are asked with the write and checked on the stored version; a bucket without Object Lock is refused
before anything is written. Each new copy is an ``export_distributions`` row (type ``s3``, ``expires_at`` = the
retention date) and an ``export.distributed`` timeline event. When the run's bundle has an in-toto attestation, the
copy gets its own signed line there (type ``s3``, location ``s3://BUCKET/KEY``) and the whole file is written beside
the object as ``KEY.intoto.jsonl`` (replaced by the longer file when the bundle is distributed again), so a copy
fetched with both objects passes `stella verify` with its attestation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters.objstore.s3 import (
    DEFAULT_PART_SIZE,
    Endpoint,
    LockMode,
    ObjectLock,
    S3Location,
    S3Store,
    StoredObject,
)
from core.clock import rfc3339, utcnow
from core.contract.export_attestation import SUFFIX as ATTESTATION_SUFFIX
from core.errors import BadInputError, Cancelled, EnvironmentFailure, IntegrityError, PolicyRefusal, UsageError
from core.home import Home
from core.progress import NullObserver, Observer
from core.runs import Distribution, ExportRun, RunEngine, RunState
from core.signing import Signer
from core.store import Store
from services import timeline
from services.export_attest import attest_remote_copy, distribution_signer
from services.retention import stamp_expiry

__all__ = ["DISTRIBUTION_TYPE", "LockMode", "S3Distribution", "S3Options", "distribute_s3"]

DISTRIBUTION_TYPE = "s3"
READ_BACK = "get-sha256"  # the object is fetched (its version) and hashed; see the module docstring


@dataclass(frozen=True)
class S3Options:
    """The ``--to s3://`` options: where the store is, how to authenticate, what Object Lock to ask."""

    endpoint_url: str | None = None
    path_style: bool = False
    ca_file: Path | None = None
    credentials_file: Path | None = None
    lock_mode: LockMode | None = None
    retain_until: datetime | None = None  # naive UTC
    legal_hold: bool = False
    part_size: int = DEFAULT_PART_SIZE

    def lock(self) -> ObjectLock:
        if self.lock_mode is not None and self.retain_until is None:
            raise UsageError("--object-lock needs --retain-until DATE")
        if self.retain_until is not None and self.lock_mode is None:
            raise UsageError("--retain-until needs --object-lock governance|compliance")
        if self.retain_until is not None and self.retain_until <= utcnow():
            raise UsageError(f"--retain-until {rfc3339(self.retain_until)} is not in the future")
        return ObjectLock(self.lock_mode, self.retain_until, self.legal_hold)


@dataclass(frozen=True)
class S3Distribution:
    """What `stella distribute --to s3://` did: the record, where the object is and what the store holds."""

    distribution: Distribution
    url: str
    endpoint: str | None
    version_id: str | None
    sha256: str
    size: int
    checksum_sha256: str | None
    parts: int
    lock_mode: LockMode | None
    retain_until: datetime | None
    legal_hold: bool
    already_present: bool
    resumed_parts: int = 0  # parts an unfinished earlier upload already held, not sent again
    attestation_url: str | None = None  # KEY.intoto.jsonl beside the object, when the bundle has an attestation

    @property
    def text(self) -> str:
        what = "already present at" if self.already_present else "distributed to"
        lock = ""
        if self.lock_mode is not None and self.retain_until is not None:
            lock = f", {self.lock_mode.value} retention until {rfc3339(self.retain_until)}"
        if self.legal_hold:
            lock += ", legal hold on"
        version = f" (version {self.version_id})" if self.version_id else ""
        resumed = (
            f", resumed ({self.resumed_parts} of {self.parts} parts were already there)" if self.resumed_parts else ""
        )
        return (
            f"run {self.distribution.run_id} {what} {self.url}{version}: {self.size} bytes, sha256 {self.sha256},"
            f" read back and checked{lock}{resumed}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": DISTRIBUTION_TYPE,
            "distribution": self.distribution.to_dict(),
            "url": self.url,
            "endpoint": self.endpoint,
            "versionId": self.version_id,
            "sha256": self.sha256,
            "size": self.size,
            "checksumSha256": self.checksum_sha256,
            "parts": self.parts,
            "resumedParts": self.resumed_parts,
            "objectLock": {
                "mode": None if self.lock_mode is None else self.lock_mode.value,
                "retainUntil": None if self.retain_until is None else rfc3339(self.retain_until),
                "legalHold": self.legal_hold,
            },
            "alreadyPresent": self.already_present,
            "attestation": self.attestation_url,
            "readBack": READ_BACK,
        }


def distribute_s3(
    home: Home, run_id: str, to: str, options: S3Options, *, observer: Observer | None = None
) -> S3Distribution:
    """Put the bundle of succeeded run ``run_id`` into ``to`` (``s3://BUCKET/PREFIX``), read it back, record it."""
    sink = observer or NullObserver()
    location = S3Location.parse(to)
    lock = options.lock()
    run = _succeeded_run(home, run_id)
    assert run.artifact_path is not None and run.artifact_sha256 is not None
    signer = distribution_signer(home, run)  # opened before anything is written: a locked key leaves nothing
    if sink.is_cancelled():
        raise Cancelled("distribution cancelled; nothing was written")
    key = location.key(run.tenant, run.run_id, run.artifact_path.name)
    url = location.url(key)
    store = S3Store(
        Endpoint(options.endpoint_url, options.path_style, options.ca_file, options.credentials_file),
    )
    if lock.requested and not store.lock_enabled(location.bucket):
        raise BadInputError(
            f"bucket {location.bucket} does not have Object Lock enabled, so --object-lock and --legal-hold cannot "
            "be honoured; nothing was uploaded",
            hint="use a bucket created with Object Lock, or distribute without --object-lock and --legal-hold",
        )
    existing = store.head(location.bucket, key)
    if existing is None:
        stored = store.put_file(
            location.bucket,
            key,
            run.artifact_path,
            sha256=run.artifact_sha256,
            lock=lock,
            part_size=options.part_size,
            observer=sink,
        )
        if stored is not None:
            held = _read_back(store, location.bucket, url, stored, run, lock, sink)
            done = _record(home, run, url, options.endpoint_url, held, already_present=False)
            return _attest(store, location.bucket, run, done, signer)
        existing = store.head(location.bucket, key)  # created by someone else between our HEAD and PUT
        if existing is None:
            raise EnvironmentFailure(f"{url} was refused as existing but cannot be read", hint="try again")
    done = _present(home, store, location.bucket, url, options.endpoint_url, existing, run, lock, sink)
    return _attest(store, location.bucket, run, done, signer)


def _attest(store: S3Store, bucket: str, run: ExportRun, done: S3Distribution, signer: Signer | None) -> S3Distribution:
    """The copy's line in the bundle's attestation, and the whole file beside the object."""
    whole = None if signer is None else attest_remote_copy(run, done.distribution, signer, done.url)
    if whole is None:
        return done
    key = done.url.split("/", 3)[3] + ATTESTATION_SUFFIX
    store.put_bytes(bucket, key, whole)
    return replace(done, attestation_url=done.url + ATTESTATION_SUFFIX)


def _succeeded_run(home: Home, run_id: str) -> ExportRun:
    with Store.open(home, read_only=True) as db:
        engine = RunEngine(db)
        run = engine.get_run(engine.resolve_run_id(run_id))
    if run.state is not RunState.SUCCEEDED or run.artifact_path is None or run.artifact_sha256 is None:
        raise UsageError(f"run {run.run_id} is {run.state}; only a succeeded run has a bundle to distribute")
    if not run.artifact_path.is_file():
        raise IntegrityError(f"the bundle of run {run.run_id} is missing", path=str(run.artifact_path))
    return run


def _read_back(
    store: S3Store, bucket: str, url: str, stored: StoredObject, run: ExportRun, lock: ObjectLock, sink: Observer
) -> StoredObject:
    """HEAD the new version (checksum, size, lock), set a lock the store dropped, then GET it and hash it."""
    held = store.head(bucket, stored.key, stored.version_id)
    if held is None:
        raise IntegrityError(f"{url} cannot be found right after it was written")
    if held.checksum_sha256 is not None and held.checksum_sha256 != stored.checksum_sha256:
        raise IntegrityError(f"{url}: the store reports SHA-256 {held.checksum_sha256}, sent {stored.checksum_sha256}")
    if lock.requested and not _locked_as_asked(held, lock):
        # A store may drop the lock headers of a multipart upload (moto does): set them on the version itself.
        store.set_lock(bucket, stored.key, held.version_id, lock)
        held = store.head(bucket, stored.key, held.version_id) or held
        if not _locked_as_asked(held, lock):
            raise EnvironmentFailure(
                f"{url} was written but the store did not apply the Object Lock asked for "
                f"(it reports mode {held.lock_mode}, until {held.retain_until}, legal hold {held.legal_hold})"
            )
    _check_bytes(store, bucket, url, held, run, sink)
    return StoredObject(
        held.key,
        held.version_id,
        held.etag,
        stored.checksum_sha256,
        held.size,
        parts=stored.parts,
        reused=stored.reused,
        lock_mode=held.lock_mode,
        retain_until=held.retain_until,
        legal_hold=held.legal_hold,
    )


def _locked_as_asked(held: StoredObject, lock: ObjectLock) -> bool:
    if lock.legal_hold and not held.legal_hold:
        return False
    if lock.mode is None or lock.retain_until is None:
        return True
    return (
        held.lock_mode is lock.mode
        and held.retain_until is not None
        and held.retain_until >= lock.retain_until.replace(microsecond=0)
    )


def _check_bytes(store: S3Store, bucket: str, url: str, held: StoredObject, run: ExportRun, sink: Observer) -> None:
    sha256, size = store.read_sha256(bucket, held.key, held.version_id, sink)
    if sha256 != run.artifact_sha256 or size != run.artifact_size:
        raise IntegrityError(
            f"{url} read back as {size} bytes with sha256 {sha256}; the bundle is {run.artifact_size} bytes "
            f"with sha256 {run.artifact_sha256}"
        )


def _present(
    home: Home,
    store: S3Store,
    bucket: str,
    url: str,
    endpoint: str | None,
    existing: StoredObject,
    run: ExportRun,
    lock: ObjectLock,
    sink: Observer,
) -> S3Distribution:
    """The key already holds an object: the same bytes are success (recorded once), anything else is refused. A lock
    asked for and missing on the object there is set on its version, as for a new one."""
    sha256, size = store.read_sha256(bucket, existing.key, existing.version_id, sink)
    if sha256 != run.artifact_sha256 or size != run.artifact_size:
        raise PolicyRefusal(
            f"{url} already holds a different object ({size} bytes, sha256 {sha256}); nothing was overwritten",
            hint="distribute under another prefix; objects in the store are never replaced",
        )
    if lock.requested and not _locked_as_asked(existing, lock):
        store.set_lock(bucket, existing.key, existing.version_id, lock)
        existing = store.head(bucket, existing.key, existing.version_id) or existing
        if not _locked_as_asked(existing, lock):
            raise EnvironmentFailure(f"{url} is present but the store did not apply the Object Lock asked for")
    return _record(home, run, url, endpoint, existing, already_present=True)


def _record(
    home: Home, run: ExportRun, url: str, endpoint: str | None, held: StoredObject, *, already_present: bool
) -> S3Distribution:
    assert run.artifact_sha256 is not None
    with Store.open(home) as db:
        engine = RunEngine(db)
        earlier = [
            d
            for d in engine.distributions(run.run_id)
            if d.type == DISTRIBUTION_TYPE and d.target == url and d.sha256 == run.artifact_sha256
        ]
        if earlier:
            dist = earlier[0]
        else:
            dist = engine.record_distribution(
                run.run_id, DISTRIBUTION_TYPE, url, run.artifact_sha256, held.size, expires_at=held.retain_until
            )
            if held.retain_until is None:
                stamp_expiry(db, run.tenant)  # no retention in the store: the profile's policy decides, if any
            timeline.record_export_distributed(db, run.run_id, dist)
    return S3Distribution(
        distribution=dist,
        url=url,
        endpoint=endpoint,
        version_id=held.version_id,
        sha256=run.artifact_sha256,
        size=held.size,
        checksum_sha256=held.checksum_sha256,
        parts=held.parts,
        resumed_parts=held.reused,
        lock_mode=held.lock_mode,
        retain_until=held.retain_until,
        legal_hold=held.legal_hold,
        already_present=already_present,
    )
