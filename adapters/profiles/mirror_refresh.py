"""Fresh TUF snapshot and timestamp for a mirror bundle that waited too long, without rebuilding its payload.

Timestamp metadata is short-lived on purpose (a day by default): it is what tells a receiver the bundle is
current. When media sit in a transfer queue longer than that, ``stella tuf refresh`` re-issues snapshot and
timestamp (a higher version, expiry counted from now) for the same targets metadata and rewrites the bundle
through ``core.bundle_rewrite``: every payload file is copied as it is (ciphertext stays ciphertext), and the
manifest, provenance and signatures are derived again. Run id, createdAt, selectors, inputs and targets stay.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from tuf.api.metadata import Metadata, Targets  # type: ignore[attr-defined]

from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.bundle_rewrite import rewrite_bundle
from core.contract.bundle import MANIFEST
from core.contract.mirror import TUF_METADATA
from core.errors import BadInputError, UsageError
from core.home import Home
from core.progress import Observer
from core.signing import Signer
from core.tuf_home import TufHome
from core.tuf_repo import fresh_snapshot_and_timestamp


def _manifest_and_targets(bundle: Path) -> tuple[dict[str, Any], Metadata[Targets]]:
    """export.json and the targets metadata, read from the head of the archive (trust metadata comes first)."""
    manifest: dict[str, Any] | None = None
    with SafeArchiveReader(bundle, ReaderLimits()) as reader:
        for member in reader:
            if member.name == MANIFEST:
                with member.stream() as src:
                    manifest = orjson.loads(src.read())
            elif member.name.startswith(TUF_METADATA) and member.name.endswith(".targets.json"):
                with member.stream() as src:
                    targets: Metadata[Targets] = Metadata.from_bytes(src.read())
                if manifest is None:
                    break
                return manifest, targets
    raise BadInputError("not a mirror bundle with TUF targets metadata", path=str(bundle))


def refresh_bundle(
    bundle: Path, out: Path, signer: Signer, home: Home, *, now: datetime, sink: Observer | None = None
) -> tuple[str, int]:
    """Write ``out``: ``bundle`` with new snapshot and timestamp metadata, re-signed by ``signer``.

    The caller verifies ``bundle`` first (the app layer runs ``stella verify``'s checks). Returns the new
    archive's (sha256, size).
    """
    manifest, targets = _manifest_and_targets(bundle)
    if (manifest.get("profile") or {}).get("kind") != "mirror":
        raise UsageError("only mirror bundles carry TUF metadata to refresh", path=str(bundle))
    tuf = TufHome(home)
    fresh = fresh_snapshot_and_timestamp(
        tuf.latest_root().signed,
        tuf.keys(),
        int(targets.signed.version),
        version=tuf.next_version(now),
        now=now,
        expiries=tuf.config().expiries,
    )
    stale = frozenset(
        str(f["path"])
        for f in manifest["files"]
        if str(f["path"]).startswith(TUF_METADATA) and str(f["path"]).endswith((".snapshot.json", "/timestamp.json"))
    )
    version = int(orjson.loads(fresh["timestamp.json"])["signed"]["version"])
    mirror = dict(manifest.get("mirror") or {})
    mirror["tuf"] = dict(mirror.get("tuf") or {}) | {"snapshotVersion": version, "timestampVersion": version}
    return rewrite_bundle(
        bundle,
        out,
        signer,
        {},
        remove=stale,
        add={TUF_METADATA + name: (data, "application/json") for name, data in fresh.items()},
        sections={"mirror": mirror},
        sink=sink,
    )
