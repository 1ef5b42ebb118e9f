"""Fresh TUF snapshot and timestamp for a mirror bundle that waited too long, without rebuilding its payload.

Timestamp metadata is short-lived on purpose (a day by default): it is what tells a receiver the bundle is
current. When media sit in a transfer queue longer than that, ``stella tuf refresh`` re-issues snapshot and
timestamp (a higher version, expiry counted from now) for the same targets metadata, copies every payload file
as it is (ciphertext stays ciphertext), and signs a new manifest and provenance through the normal bundle
writer. The run id, createdAt, selectors, inputs and targets are those of the original bundle.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
from tuf.api.metadata import Metadata, Targets  # type: ignore[attr-defined]

from core.archive import ReaderLimits, SafeArchiveReader
from core.bundle import (
    PROVENANCE,
    PROVENANCE_DSSE,
    PROVENANCE_SIGSTORE,
    README,
    VERIFY_SCRIPT,
    BundleSpec,
    PayloadContext,
    ResolvedInput,
    build_bundle,
)
from core.errors import BadInputError, IntegrityError, UsageError
from core.home import Home
from core.progress import ProgressSink
from core.signing import Signer
from core.tuf_home import TufHome
from core.tuf_repo import fresh_snapshot_and_timestamp

_REGENERATED = {README, VERIFY_SCRIPT, PROVENANCE, PROVENANCE_DSSE, PROVENANCE_SIGSTORE}
_METADATA = "tuf/metadata/"


class _Copy:
    """A payload profile that copies the original bundle's payload, replacing snapshot and timestamp."""

    kind = "mirror"
    encrypted_prefixes: tuple[str, ...] | None = ()  # already encrypted files are copied, never re-encrypted

    def __init__(self, tree: Path, manifest: dict[str, Any], replaced: dict[str, bytes], variant: str) -> None:
        self.tree = tree
        self.manifest = manifest
        self.replaced = replaced
        self.variant = variant

    def write_payload(self, ctx: PayloadContext) -> dict[str, int]:
        for entry in self.manifest["files"]:
            path = str(entry["path"])
            if path in _REGENERATED:
                continue
            if path.startswith(_METADATA) and (path.endswith(".snapshot.json") or path.endswith("timestamp.json")):
                continue
            source = self.tree.joinpath(*PurePosixPath(path).parts)
            with source.open("rb") as src, ctx.writer.stream(path, str(entry["mediaType"])) as out:
                shutil.copyfileobj(src, out)
        for name, data in sorted(self.replaced.items()):
            ctx.writer.add_bytes(_METADATA + name, data, "application/json")
        for key in ("base", "mirror", "encryption", "redaction"):
            if key in self.manifest:
                ctx.extra_manifest[key] = self.manifest[key]
        counts: dict[str, int] = self.manifest.get("counts", {})
        return counts


def _extract(bundle: Path, tree: Path) -> None:
    with SafeArchiveReader(bundle, ReaderLimits()) as reader:
        for member in reader:
            target = tree.joinpath(*PurePosixPath(member.name).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with member.stream() as src, target.open("xb") as out:
                shutil.copyfileobj(src, out)


def _targets_version(tree: Path, manifest: dict[str, Any]) -> int:
    names = [str(f["path"]) for f in manifest["files"] if str(f["path"]).endswith(".targets.json")]
    if len(names) != 1:
        raise BadInputError("a mirror bundle carries exactly one targets metadata file", path="tuf/metadata")
    md: Metadata[Targets] = Metadata.from_bytes(tree.joinpath(*PurePosixPath(names[0]).parts).read_bytes())
    return int(md.signed.version)


def refresh_bundle(
    bundle: Path, out: Path, signer: Signer, home: Home, *, now: datetime, sink: ProgressSink | None = None
) -> tuple[str, int]:
    """Write ``out``: ``bundle`` with new snapshot and timestamp metadata, re-signed by ``signer``.

    The caller verifies ``bundle`` first (the app layer runs ``stella verify``'s checks). Returns the new
    archive's (sha256, size).
    """
    if out.exists():
        raise UsageError(f"output {out} already exists", path=str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".stella-refresh-", dir=out.parent) as work:
        tree = Path(work)
        _extract(bundle, tree)
        manifest = orjson.loads((tree / "export.json").read_bytes())
        profile = manifest.get("profile") or {}
        if profile.get("kind") != "mirror":
            raise UsageError("only mirror bundles carry TUF metadata to refresh", path=str(bundle))
        statement = orjson.loads((tree / PROVENANCE).read_bytes())
        try:
            build = statement["predicate"]["buildDefinition"]
            config: dict[str, Any] = build["internalParameters"]["profileConfig"]
            inputs = [
                ResolvedInput(d["digest"]["sha256"], d["annotations"]["kind"], d["annotations"]["format"], d["name"])
                for d in build["resolvedDependencies"]
            ]
        except (KeyError, TypeError) as exc:
            raise IntegrityError(f"provenance.json lacks {exc}", path=PROVENANCE) from None
        tuf = TufHome(home)
        root = tuf.latest_root().signed
        replaced = fresh_snapshot_and_timestamp(
            root,
            tuf.keys(),
            _targets_version(tree, manifest),
            version=tuf.next_version(now),
            now=now,
            expiries=tuf.config().expiries,
        )
        mirror = dict(manifest.get("mirror") or {})
        versions = dict(mirror.get("tuf") or {})
        version = int(orjson.loads(replaced["timestamp.json"])["signed"]["version"])
        versions.update(snapshotVersion=version, timestampVersion=version)
        manifest["mirror"] = mirror | {"tuf": versions}
        spec = BundleSpec(
            run_id=str(manifest["runId"]),
            tenant=str(manifest["tenant"]),
            profile_id=str(profile["id"]),
            profile_kind="mirror",
            profile_variant=str(profile["variant"]),
            profile_revision=int(profile["revision"]),
            profile_config=config,
            selectors=manifest.get("selectors") or {},
            created_at=datetime.fromisoformat(str(manifest["createdAt"]).removesuffix("Z")),
            compression_level=int(config.get("compressionLevel", 9)),
        )

        def resolved() -> Iterator[ResolvedInput]:
            return iter(inputs)

        return build_bundle(
            spec,
            _Copy(tree, manifest, replaced, spec.profile_variant),
            inputs=resolved,
            raw_bytes=_no_raw,
            query=None,
            signer=signer,
            out_path=out,
            sink=sink,
            home=home.root,
        )


def _no_raw(digest: str) -> bytes:
    raise UsageError(f"a refresh copies the payload; it does not read document {digest[:12]} from the store")
