"""Rewrite a signed bundle with some payload files replaced, re-deriving every digest and signature.

A bundle's payload sometimes has to change after the build without the store at hand: a payload file
re-encrypted to other age recipients (by the reference ``age`` CLI, say), a file re-issued by the same
profile. Editing the archive by hand breaks the digest chain (docs/architecture.md), so this module rebuilds
it through the bundle writer itself: the payload is copied (the replacements in place of their originals),
then :func:`core.bundle.build_bundle` writes README, verify script, provenance (the same resolved inputs,
new subject digests), the manifest (the same run id, createdAt, profile, selectors, counts and every
profile-specific section), its signature, ``checksums.txt`` and the deterministic archive.

The caller verifies the source bundle first: this module trusts what it reads and signs what it writes.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.bundle import BundleSpec, Dependency, PayloadContext, build_bundle
from core.contract.bundle import HEAD_ORDER, MANIFEST, PROVENANCE
from core.errors import BadInputError, IntegrityError, UsageError
from core.progress import Observer
from core.signing import Signer

#: Manifest keys ``build_bundle`` writes itself; every other key is a profile's section and is carried over.
_WRITER_KEYS = frozenset(
    {"schema", "schemaVersion", "runId", "tenant", "profile", "selectors", "counts", "files", "tool", "createdAt"}
    | {"signing"}
)


@dataclass(frozen=True)
class _Changes:
    remove: frozenset[str] = frozenset()
    add: Mapping[str, tuple[bytes, str]] = field(default_factory=dict)
    sections: Mapping[str, Any] = field(default_factory=dict)


class _CopiedPayload:
    """A payload profile that writes the source bundle's payload again, with some files replaced."""

    encrypted_prefixes: tuple[str, ...] | None = ()  # ciphertext is copied as it is, never encrypted again

    def __init__(self, tree: Path, manifest: dict[str, Any], replace: Mapping[str, Path], changes: _Changes) -> None:
        profile = manifest.get("profile") or {}
        self.kind = str(profile.get("kind", ""))
        self.variant = str(profile.get("variant", ""))
        self.tree = tree
        self.manifest = manifest
        self.replace = replace
        self.changes = changes

    def write_payload(self, ctx: PayloadContext) -> dict[str, int]:
        for entry in self.manifest["files"]:
            path = str(entry["path"])
            if path in HEAD_ORDER or path in self.changes.remove:  # derived files are written afresh
                continue
            source = self.replace.get(path) or self.tree.joinpath(*PurePosixPath(path).parts)
            with source.open("rb") as src, ctx.writer.stream(path, str(entry["mediaType"])) as out:
                shutil.copyfileobj(src, out, 1 << 20)
        for path, (data, media_type) in sorted(self.changes.add.items()):
            ctx.writer.add_bytes(path, data, media_type)
        ctx.extra_manifest.update({k: v for k, v in self.manifest.items() if k not in _WRITER_KEYS})
        ctx.extra_manifest.update(self.changes.sections)
        counts: dict[str, int] = self.manifest.get("counts") or {}
        return counts


def _extract(bundle: Path, tree: Path) -> None:
    with SafeArchiveReader(bundle, ReaderLimits()) as reader:
        for member in reader:
            target = tree.joinpath(*PurePosixPath(member.name).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with member.stream() as src, target.open("xb") as out:
                shutil.copyfileobj(src, out, 1 << 20)


def _spec_and_inputs(tree: Path, manifest: dict[str, Any]) -> tuple[BundleSpec, list[Dependency]]:
    """The build parameters the source bundle was made with, from its manifest and provenance."""
    try:
        statement = orjson.loads((tree / PROVENANCE).read_bytes())
        build = statement["predicate"]["buildDefinition"]
        config: dict[str, Any] = build["internalParameters"]["profileConfig"]
        inputs: list[Dependency] = list(build["resolvedDependencies"])  # carried over as they are
        profile = manifest["profile"]
        spec = BundleSpec(
            run_id=str(manifest["runId"]),
            tenant=str(manifest["tenant"]),
            profile_id=str(profile["id"]),
            profile_kind=str(profile["kind"]),
            profile_variant=str(profile["variant"]),
            profile_revision=int(profile["revision"]),
            profile_config=config,
            selectors=manifest.get("selectors") or {},
            created_at=datetime.fromisoformat(str(manifest["createdAt"]).removesuffix("Z")),
            compression_level=int(config.get("compressionLevel", 9)),
        )
    except FileNotFoundError:
        raise IntegrityError("the bundle has no provenance.json to take its inputs from", path=PROVENANCE) from None
    except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
        raise IntegrityError(f"manifest or provenance lacks {exc}", path=PROVENANCE) from None
    return spec, inputs


def rewrite_bundle(
    src: Path,
    dst: Path,
    signer: Signer,
    replace: Mapping[str, Path],
    *,
    remove: frozenset[str] = frozenset(),
    add: Mapping[str, tuple[bytes, str]] | None = None,
    sections: Mapping[str, Any] | None = None,
    sink: Observer | None = None,
) -> tuple[str, int]:
    """Write ``dst``: bundle ``src`` with payload files ``replace[path]`` in place of ``path``, signed by ``signer``.

    Every path in ``replace`` must be a payload file the source manifest lists (not the manifest, its signature,
    checksums, README, verify script or provenance, which are derived). Manifest sections other than the file
    list (encryption, base, mirror, ...) are carried over unchanged, so a replacement must keep their meaning:
    re-encrypting a ``.age`` file to other recipients keeps its plaintext digest, a different plaintext does
    not. ``remove`` drops payload files, ``add`` adds new ones (path -> (bytes, media type)), and ``sections``
    replaces manifest sections (e.g. a refreshed ``mirror`` section). The output is a ``.tar.zst`` archive;
    returns its (sha256, size).
    """
    if dst.exists():
        raise UsageError(f"output {dst} already exists", path=str(dst))
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".stella-rewrite-", dir=dst.parent) as work:
        tree = Path(work)
        _extract(src, tree)
        try:
            manifest = orjson.loads((tree / MANIFEST).read_bytes())
            listed = {str(f["path"]) for f in manifest["files"]}
        except (FileNotFoundError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            raise BadInputError(f"not a bundle with a readable manifest ({exc})", path=str(src)) from None
        for path in set(replace) | set(remove):
            if path not in listed or path in HEAD_ORDER:
                raise UsageError(f"{path!r} is not a payload file of the bundle", path=str(src))
        for source in replace.values():
            if not source.is_file():
                raise UsageError("replacement is not a file", path=str(source))
        spec, inputs = _spec_and_inputs(tree, manifest)

        def resolved() -> Iterator[Dependency]:
            return iter(inputs)

        return build_bundle(
            spec,
            _CopiedPayload(tree, manifest, replace, _Changes(remove, add or {}, sections or {})),
            inputs=resolved,
            raw_bytes=_no_raw,
            query=None,
            signer=signer,
            out_path=dst,
            sink=sink,
        )


def _no_raw(digest: str) -> bytes:
    raise UsageError(f"a rewrite copies the payload; it does not read document {digest[:12]} from the store")
