"""What both Trivy profiles ship: metadata.json, a deterministic ``.tar.gz``, a cache layout and an OCI layout.

Payload layout of a ``trivy:db`` bundle (``trivy:java-db`` is the same with ``java-db`` / ``javadb.tar.gz`` /
``trivy-java.db``)::

    db.tar.gz                         trivy.db + metadata.json at the archive root (what Trivy pulls from a registry)
    cache/db/trivy.db                 the Trivy cache layout: copy cache/ to TRIVY_CACHE_DIR, or `stella trivy install`
    cache/db/metadata.json
    oci/oci-layout                    an OCI image layout holding one artifact: push it with
    oci/index.json                      `skopeo copy oci:oci:2 docker://REGISTRY/REPO:2`
    oci/blobs/sha256/<digest>         the empty config, the manifest, and the layer (the db.tar.gz bytes)

The layer has Trivy's media type and the ``org.opencontainers.image.title`` annotation Trivy takes the file name
from (as upstream publishes it with ``oras``). Times come from the run's ``createdAt`` so a rebuild gives the
same bytes.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from core.archive.writer import ArchiveEntry, write_archive
from core.bundle import PayloadContext
from core.canonical import canonical_json
from core.contract import trivy
from core.contract.media_types import (
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    TRIVY_CONFIG,
    TRIVY_DB_LAYER,
    TRIVY_JAVA_DB_LAYER,
)
from core.contract.oci import ANNOTATION_CREATED as CREATED
from core.contract.oci import ANNOTATION_REF_NAME as REF_NAME
from core.contract.oci import ANNOTATION_TITLE as TITLE
from core.errors import EnvironmentFailure, UsageError
from core.store import Store

OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
CHUNK = 1 << 20


@dataclass(frozen=True)
class DbKind:
    """One of Trivy's two databases: file names, media type, schema versions and refresh interval."""

    label: str  # for messages
    cache_dir: str  # directory under the Trivy cache
    db_file: str
    tarball: str
    media_type: str
    supported: tuple[int, ...]
    default: int
    refresh: timedelta  # upstream's NextUpdate interval


MAIN_DB = DbKind(
    label="Trivy DB",
    cache_dir=trivy.DB_DIR,
    db_file=trivy.DB_FILE,
    tarball=trivy.DB_TARBALL,
    media_type=TRIVY_DB_LAYER,
    supported=(2,),
    default=2,
    refresh=timedelta(hours=24),
)
JAVA_DB = DbKind(
    label="Trivy Java DB",
    cache_dir=trivy.JAVA_DB_DIR,
    db_file=trivy.JAVA_DB_FILE,
    tarball=trivy.JAVA_DB_TARBALL,
    media_type=TRIVY_JAVA_DB_LAYER,
    supported=(1,),
    default=1,
    refresh=timedelta(days=3),
)


def plan_schema(kind: DbKind, requested: Mapping[str, Any], _store: Store) -> dict[str, Any]:
    """Run options for a Trivy profile: the schema version, checked before anything is planned.

    Only ``trivySchema`` applies; an unsupported version fails fast, naming the versions this build writes.
    """
    unknown = sorted(k for k in requested if k != "trivySchema")
    if unknown:
        flags = ", ".join("--base" if k == "base" else k for k in unknown)
        raise UsageError(f"{flags} does not apply to a {kind.label} export")
    value = requested.get("trivySchema", kind.default)
    supported = ", ".join(str(v) for v in kind.supported)
    if isinstance(value, bool) or not isinstance(value, int) or value not in kind.supported:
        raise UsageError(
            f"{kind.label} schema version {value} is not supported",
            hint=f"this build writes schema {supported} (the version current Trivy clients expect); "
            f"pass --trivy-schema {kind.default} or leave the flag out",
        )
    return {"trivySchema": value}


def schema_of(ctx: PayloadContext, kind: DbKind) -> int:
    """The pinned schema version of a run (re-checked: a run row edited by hand must not slip through)."""
    value = ctx.spec.options.get("trivySchema", kind.default)
    if value not in kind.supported:
        raise UsageError(f"{kind.label} schema version {value} is not supported", hint=f"supported: {kind.supported}")
    return int(value)


def _rfc3339(moment: datetime) -> str:
    return moment.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def metadata_json(kind: DbKind, version: int, created_at: datetime) -> bytes:
    """``metadata.json`` as Trivy's builders write it: one line and a newline, ``DownloadedAt`` left zero.

    ``UpdatedAt`` is the run's ``createdAt`` and ``NextUpdate`` upstream's interval after it. Trivy ignores
    ``NextUpdate`` with ``--skip-db-update``; a zero ``DownloadedAt`` is what a freshly built DB has.
    """
    body = {
        "Version": version,
        "NextUpdate": _rfc3339(created_at + kind.refresh),
        "UpdatedAt": _rfc3339(created_at),
        "DownloadedAt": "0001-01-01T00:00:00Z",
    }
    return orjson.dumps(body) + b"\n"


@contextmanager
def workdir(ctx: PayloadContext) -> Iterator[Path]:
    """A scratch directory beside the bundle's staging directory (same file system, removed afterwards)."""
    parent = ctx.writer.staging.parent
    try:
        tmp = tempfile.TemporaryDirectory(prefix=".stella-trivy-", dir=parent)
    except OSError as exc:
        raise EnvironmentFailure(f"cannot create a scratch directory: {exc.strerror}", path=str(parent)) from exc
    with tmp as name:
        yield Path(name)


def _copy_in(ctx: PayloadContext, path: str, source: Path, media_type: str) -> str:
    """Stream ``source`` into the bundle at ``path``; returns its sha256."""
    sha = hashlib.sha256()
    with ctx.writer.stream(path, media_type) as out, source.open("rb") as src:
        while chunk := src.read(CHUNK):
            sha.update(chunk)
            out.write(chunk)
    return sha.hexdigest()


def write_outputs(ctx: PayloadContext, kind: DbKind, db_path: Path, version: int, work: Path) -> dict[str, Any]:
    """Put a finished database into the bundle as tarball, cache layout and OCI layout; returns manifest facts."""
    created = ctx.spec.created_at
    mtime = int((created.replace(tzinfo=None) - datetime(1970, 1, 1)).total_seconds())
    metadata = metadata_json(kind, version, created)
    tarball = work / kind.tarball
    # Level 6: the gzip default; fixed, so the same input always gives the same bytes.
    tar_sha, tar_size = write_archive(
        tarball,
        [ArchiveEntry(kind.db_file, db_path), ArchiveEntry(trivy.METADATA, metadata)],
        mtime=mtime,
        compression="gzip",
        level=6,
        cancel=ctx.cancel,
    )
    _copy_in(ctx, kind.tarball, tarball, kind.media_type)
    _copy_in(ctx, f"{trivy.CACHE}{kind.cache_dir}/{kind.db_file}", db_path, "application/octet-stream")
    ctx.writer.add_bytes(f"{trivy.CACHE}{kind.cache_dir}/{trivy.METADATA}", metadata, "application/json")

    config_digest = hashlib.sha256(b"{}").hexdigest()
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": TRIVY_CONFIG,
            "config": {"mediaType": OCI_EMPTY, "digest": f"sha256:{config_digest}", "size": 2, "data": "e30="},
            "layers": [
                {
                    "mediaType": kind.media_type,
                    "digest": f"sha256:{tar_sha}",
                    "size": tar_size,
                    "annotations": {TITLE: kind.tarball},
                }
            ],
            "annotations": {CREATED: ctx.spec.created_at_text},
        }
    )
    manifest_digest = hashlib.sha256(manifest).hexdigest()
    index = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": f"sha256:{manifest_digest}",
                    "size": len(manifest),
                    "annotations": {REF_NAME: str(version)},
                }
            ],
        }
    )
    ctx.writer.add_bytes(trivy.OCI_LAYOUT, OCI_LAYOUT, "application/json")
    ctx.writer.add_bytes(trivy.OCI_INDEX, index, OCI_INDEX)
    blobs = {config_digest: (b"{}", OCI_EMPTY), manifest_digest: (manifest, OCI_MANIFEST)}
    for digest, (data, media_type) in sorted(blobs.items()):
        ctx.writer.add_bytes(f"{trivy.OCI_BLOBS}{digest}", data, media_type)
    _copy_in(ctx, f"{trivy.OCI_BLOBS}{tar_sha}", tarball, kind.media_type)
    return {
        "schemaVersion": version,
        "cacheDir": kind.cache_dir,
        "tarball": kind.tarball,
        "mediaType": kind.media_type,
        "ociTag": str(version),
        "ociManifest": f"sha256:{manifest_digest}",
    }
