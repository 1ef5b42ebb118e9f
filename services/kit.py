"""Offline Kit media: assemble bundles onto volumes, verify volumes, restore bundles from them, build ISO images.

``stella kit plan|assemble|verify|restore|iso`` and the TUI's kit screen call these functions. The layout rules are
in :mod:`core.kit_plan`, the documents in :mod:`core.kit`, the checks in :mod:`verify.kit`. Everything streams in
1 MiB chunks (memory stays flat whatever the bundles weigh), reports progress in bytes through the observer and
stops at the next chunk once it says it is cancelled. An assembled kit appears whole or not at all (it is built in a
temporary directory beside ``--out`` and renamed); a restore writes each bundle beside its destination, records
every part it has checked and written in a state file, and renames the bundle into place only once its whole
digest matches the signed index and ``stella verify`` accepts it, so a killed restore resumes where it stopped.

Once a kit is written, its index, volume manifests and ``SHA256SUMS`` are sealed into the evidence locker as a
``kit`` evidence bundle of the tenant, and a ``bundle.ready-for-transfer`` event goes on the timeline: what fails
there is reported with the kit, which stays written.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from core.atomic import fsync_dir, write_bytes
from core.canonical import canonical_json
from core.clock import rfc3339, utcnow
from core.contract import profiles as profile_ids
from core.contract.bundle import README, VERIFY_SCRIPT
from core.contract.kit import (
    BINARY_DIR,
    DATA_DIR,
    KIT_INDEX,
    KIT_PUBLIC_KEY,
    KIT_SUMS,
    KIT_SUMS_SIG,
    SECTOR,
    TUF_ROOTS_DIR,
    VOLUME_MANIFEST,
    VOLUME_MANIFEST_SIG,
    VOLUME_SUMS,
    VOLUME_SUMS_SIG,
)
from core.contract.timeline import BUNDLE_READY_FOR_TRANSFER
from core.errors import (
    BadInputError,
    Cancelled,
    EnvironmentFailure,
    IntegrityError,
    NotFoundError,
    StellaError,
    UsageError,
)
from core.evidence_store import EvidenceBundle
from core.home import Home
from core.kit import (
    MAX_VOLUMES,
    BundlePart,
    KitBundle,
    KitIndex,
    KitVolume,
    VolumeFile,
    VolumeManifest,
    volume_dir_name,
    volume_label,
    volume_sums,
)
from core.kit_plan import BundleSource, KitPlan, SupportSize, iso_reserve, plan_kit, sectors
from core.progress import NullObserver, Observer
from core.signing import Signer, cosign_blob_signature
from core.tenants import DEFAULT_TENANT, validate_tenant
from core.timeline import TimelineEvent
from services.trust import trusted_keys
from verify.bundle import VerifyReport
from verify.kit import KitReport, verify_kit_sums, verify_volumes, walk_files

CHUNK = 1 << 20
#: The name the optional stella binary has on every volume.
BINARY_NAME = "stella"
_PLACEHOLDER_SHA = "0" * 64
_PLACEHOLDER_SIG = 128  # bytes of a base64 signature file, at most (ECDSA P-256 DER: 96, Ed25519: 88)


# -- what goes on the kit ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KitInput:
    """A bundle to put on the kit: its file, and what its manifest says it is."""

    path: Path
    source: BundleSource


def resolve_inputs(home: Home, items: Sequence[str]) -> list[KitInput]:
    """Each item is a bundle file or the id (or unique prefix) of a finished export run whose bundle is used."""
    from services.inspect import inspect_bundle

    out: list[KitInput] = []
    for item in items:
        path = Path(item)
        if not path.exists():
            path = _run_bundle(home, item)
        if not path.is_file():
            raise UsageError("not a bundle file", path=str(path))
        seen = inspect_bundle(path)
        source = BundleSource(path.name, path.stat().st_size, seen.profile, seen.run_id, seen.tenant)
        out.append(KitInput(path, source))
    if not out:
        raise UsageError("name at least one bundle or finished run")
    return out


def _run_bundle(home: Home, run_id: str) -> Path:
    from core.runs import RunState
    from services.export import show_run

    try:
        run = show_run(home, run_id).run
    except NotFoundError:
        raise UsageError(
            f"{run_id!r} is neither a file nor an export run", hint="name bundle files or run ids (stella export runs)"
        ) from None
    if run.state is not RunState.SUCCEEDED or run.artifact_path is None:
        raise UsageError(f"run {run.run_id} is {run.state}; only a finished run's bundle can go on a kit")
    if not run.artifact_path.is_file():
        raise UsageError(f"the bundle of run {run.run_id} is gone", path=str(run.artifact_path))
    return run.artifact_path


@dataclass(frozen=True)
class Support:
    """The kit's own files that every volume carries besides its manifest, index and checksums."""

    files: tuple[tuple[str, bytes], ...]
    binary: Path | None = None

    @property
    def binary_size(self) -> int:
        return self.binary.stat().st_size if self.binary is not None else 0


def verify_script() -> bytes:
    """The kit's ``verify.sh``, byte for byte as every volume carries it."""
    return resources.files("core.kit_files").joinpath(VERIFY_SCRIPT).read_bytes()


def _support(home: Home, public_pem: bytes, inputs: Sequence[KitInput], binary: Path | None) -> Support:
    files: list[tuple[str, bytes]] = [(KIT_PUBLIC_KEY, public_pem), (VERIFY_SCRIPT, verify_script())]
    if any(i.source.profile in (profile_ids.MIRROR_FULL, profile_ids.MIRROR_DELTA) for i in inputs):
        files += _tuf_roots(home)
    if binary is not None and not binary.is_file():
        raise UsageError("--include-binary must name a file", path=str(binary))
    return Support(tuple(sorted(files)), binary)


def _tuf_roots(home: Home) -> list[tuple[str, bytes]]:
    """The sending home's TUF roots (``N.root.json``): what a mirror receiver pins with ``--trust-root``."""
    from core.tuf_home import TufHome

    tuf = TufHome(home)
    if not tuf.initialized:
        return []
    return [(f"{TUF_ROOTS_DIR}{version}.root.json", data) for version, data in tuf.roots()]


def readme(kit_id: str, plan: KitPlan, volume: int, keyid: str) -> bytes:
    """The volume's README: what the kit is, what this volume holds, and how to check and restore it."""
    v = plan.volumes[volume - 1]
    lines = [
        "StellaOps Offline Kit",
        "=====================",
        "",
        f"Kit {kit_id}, volume {volume} of {len(plan.volumes)} (label {volume_label(kit_id, volume)}),",
        f"signed by key {keyid}.",
        "",
        "This volume holds:",
    ]
    for p in v.parts:
        what = "the whole bundle" if p.parts == 1 else f"part {p.part} of {p.parts} of"
        lines.append(f"  {p.path}  {what} {p.bundle} ({p.size} bytes)")
    lines += [
        "",
        f"{VOLUME_MANIFEST} lists every file with its size and sha256 and is signed ({VOLUME_MANIFEST_SIG});",
        f"{KIT_INDEX} lists every volume and bundle of the kit. Check this volume alone, with the kit signer's",
        "public key obtained out of band (compare its fingerprint; the copy under trust/ travelled with the volume):",
        "",
        "  stella kit verify THIS-DIR --key kit-signer.pub",
        f"  sh verify.sh kit-signer.pub THIS-DIR      (openssl and sha256sum only; {VERIFY_SCRIPT} travelled with the",
        "                                            volume too: prefer a copy whose sha256 docs/kit.md publishes)",
        "",
        "Restore the bundles once their volumes arrived, in any order, then import each as usual:",
        "",
        "  stella kit restore --to DIR --key kit-signer.pub VOLUME-DIR...",
        "",
    ]
    return "\n".join(lines).encode("utf-8")


# -- plan ----------------------------------------------------------------------------------------------------------
def _support_sizes(support: Support) -> SupportSize:
    """The bytes (whole sectors) each volume's own files take in a plan: the documents rendered for that plan with
    placeholder digests, ids and times of the real lengths, and sizes of at least the real number of digits."""
    fixed = sum(sectors(len(data)) for _, data in support.files) + sectors(support.binary_size)

    def measure(plan: KitPlan) -> list[int]:
        kit_id = _PLACEHOLDER_SHA[:32]
        index = _index(kit_id, rfc3339(utcnow().replace(microsecond=0)), plan, {}, _PLACEHOLDER_SHA)
        index_bytes = index.to_bytes()
        out = []
        for v in plan.volumes:
            manifest = _manifest(
                kit_id, index, plan, v.volume, sha256_index=_PLACEHOLDER_SHA, files={}, support=support
            )
            sums = volume_sums(manifest, _PLACEHOLDER_SHA)
            docs = [len(index_bytes), len(manifest.to_bytes()), len(sums), _PLACEHOLDER_SIG, _PLACEHOLDER_SIG]
            docs.append(len(readme(kit_id, plan, v.volume, "0" * 64)))
            out.append((fixed + sum(sectors(n) for n in docs)) * SECTOR)
        return out

    return measure


def make_plan(inputs: Sequence[KitInput], volume_size: int, support: Support) -> KitPlan:
    """Lay the bundles out on volumes of ``volume_size`` bytes (see :mod:`core.kit_plan`)."""
    return plan_kit([i.source for i in inputs], volume_size, _support_sizes(support))


@dataclass(frozen=True)
class PlanRequest:
    """The inputs of `stella kit plan` and `stella kit assemble`."""

    items: tuple[str, ...]
    volume_size: int
    key: str | None = None
    include_binary: Path | None = None


def plan(home: Home, request: PlanRequest) -> KitPlan:
    """`stella kit plan`: the layout assemble would write, without writing or signing anything."""
    inputs = resolve_inputs(home, request.items)
    pem = _signer_pem(home, request.key)  # the public key every volume carries: its size counts
    return make_plan(inputs, request.volume_size, _support(home, pem, inputs, request.include_binary))


def _signer_pem(home: Home, key: str | None) -> bytes:
    """The public key the kit will carry: the named key's, or a stand-in the size of a P-256 key's when none is."""
    from services.keys import public_key_pem

    if key is not None:
        return public_key_pem(home, key)
    return b"-----BEGIN PUBLIC KEY-----\n" + b"A" * 124 + b"\n-----END PUBLIC KEY-----\n"


# -- the documents -------------------------------------------------------------------------------------------------
def _index(
    kit_id: str,
    created_at: str,
    plan: KitPlan,
    digests: dict[tuple[str, int], str],
    keyid: str,
    *,
    whole: dict[str, str] | None = None,
    volume_bytes: dict[int, tuple[int, int]] | None = None,
) -> KitIndex:
    """The kit index of ``plan``; digests, sizes and counts not given yet are placeholders of at least their length."""
    bundles = []
    for b in plan.bundles:
        parts = tuple(
            BundlePart(p.part, p.volume, p.path, p.offset, p.size, digests.get((b.name, p.part), _PLACEHOLDER_SHA))
            for p in plan.parts_of(b.name)
        )
        sha = (whole or {}).get(b.name, _PLACEHOLDER_SHA)
        bundles.append(KitBundle(b.name, b.size, sha, b.profile, b.run_id, b.tenant, parts))
    volumes = tuple(
        KitVolume(
            v.volume,
            volume_label(kit_id, v.volume),
            *(volume_bytes or {}).get(v.volume, (10**4, 10**12)),
        )
        for v in plan.volumes
    )
    return KitIndex(kit_id, created_at, plan.volume_size, keyid, volumes, tuple(bundles))


def _manifest(
    kit_id: str,
    index: KitIndex,
    plan: KitPlan,
    volume: int,
    *,
    sha256_index: str,
    files: dict[str, tuple[int, str]],
    support: Support,
) -> VolumeManifest:
    entries = [
        VolumeFile(p.path, p.size, files.get(p.path, (0, _PLACEHOLDER_SHA))[1], p.bundle, p.part, p.parts, p.offset)
        for p in plan.volumes[volume - 1].parts
    ]
    names = [name for name, _ in support.files] + [README]
    if support.binary is not None:
        names.append(f"{BINARY_DIR}{BINARY_NAME}")
    for name in names:
        size, sha = files.get(name, (10**9, _PLACEHOLDER_SHA))
        entries.append(VolumeFile(name, size, sha))
    return VolumeManifest(
        kit_id=kit_id,
        volume=volume,
        volumes=len(plan.volumes),
        label=volume_label(kit_id, volume),
        created_at=index.created_at,
        index_sha256=sha256_index,
        index_size=len(index.to_bytes()),
        files=tuple(sorted(entries, key=lambda f: f.path)),
    )


# -- assemble ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AssembleRequest:
    """`stella kit assemble`: bundles or run ids, the volume size, the signing key, where the kit goes."""

    items: tuple[str, ...]
    volume_size: int
    key: str
    out: Path
    passphrase_file: Path | None = None
    include_binary: Path | None = None
    #: The tenant whose evidence locker and timeline record the kit; None: the bundles' tenant when they all name
    #: the same one, else the default tenant.
    tenant: str | None = None
    #: Seal the kit's index, manifests and checksums into the evidence locker (``--no-evidence``: False).
    evidence: bool = True


@dataclass(frozen=True)
class KitRecords:
    """What the home recorded about an assembled kit: the evidence bundle sealing it and the timeline event, or the
    error that stopped each (the kit is written either way). ``evidence`` is None when sealing was not asked for."""

    tenant: str
    evidence: EvidenceBundle | None = None
    evidence_error: StellaError | None = None
    event: TimelineEvent | None = None
    event_error: StellaError | None = None

    def to_dict(self) -> dict[str, Any]:
        def failed(error: StellaError) -> dict[str, Any]:
            return {"error": {"code": error.code, "exitCode": int(error.exit_code), "message": error.diagnostics()}}

        evidence: dict[str, Any] | None = None
        if self.evidence is not None:
            evidence = {"id": self.evidence.evidence_id, "digest": self.evidence.digest}
        elif self.evidence_error is not None:
            evidence = failed(self.evidence_error)
        timeline: dict[str, Any] | None = None
        if self.event is not None:
            timeline = {"id": self.event.id, "type": self.event.type, "seq": self.event.seq}
        elif self.event_error is not None:
            timeline = failed(self.event_error)
        return {"tenant": self.tenant, "evidence": evidence, "timeline": timeline}


@dataclass(frozen=True)
class AssembledKit:
    """What assemble wrote: the kit directory, its index, its plan, and the digest of its ``SHA256SUMS``; and what
    the home recorded about it."""

    out: Path
    index: KitIndex
    plan: KitPlan
    sums_sha256: str
    bytes: int
    records: KitRecords | None = None

    @property
    def index_sha256(self) -> str:
        return hashlib.sha256(self.index.to_bytes()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "kitId": self.index.kit_id,
            "indexSha256": self.index_sha256,
            "volumes": [
                v.to_dict() | {"dir": volume_dir_name(v.volume), "label": volume_label(self.index.kit_id, v.volume)}
                for v in self.plan.volumes
            ],
            "bundles": [b.to_dict() for b in self.index.bundles],
            "sha256sums": self.sums_sha256,
            "bytes": self.bytes,
        } | (self.records.to_dict() if self.records is not None else {})


def assemble(home: Home, request: AssembleRequest, observer: Observer | None = None) -> AssembledKit:
    """Write the kit to ``request.out`` (a new directory): every volume with its files, parts, signed manifest,
    index copy, signed checksums, trust anchors, verify script, README and optional binary, and the kit-wide
    ``SHA256SUMS`` and signature beside them."""
    from services.keys import signer_for

    obs = observer or NullObserver()
    out = request.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError("the kit directory exists and is not empty", path=str(out), hint="name a new directory")
    signer = signer_for(home, request.key, request.passphrase_file)
    inputs = resolve_inputs(home, request.items)
    tenant = _kit_tenant(request.tenant, inputs)
    support = _support(home, signer.public_pem, inputs, request.include_binary)
    layout = make_plan(inputs, request.volume_size, support)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / f".{out.name}.{secrets.token_hex(6)}.kit-tmp"
    try:
        work.mkdir()
        kit = _write_kit(work, inputs, layout, support, signer, obs)
        if out.exists():
            out.rmdir()
        work.rename(out)
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    made = AssembledKit(out, kit[0], layout, kit[1], kit[2])
    # The kit is written: from here on nothing undoes it; what fails is reported with it.
    records = record_kit(home, made, tenant, signer if request.evidence else None)
    return AssembledKit(out, kit[0], layout, kit[1], kit[2], records)


def _kit_tenant(tenant: str | None, inputs: Sequence[KitInput]) -> str:
    """The tenant named (refused before anything is written when it is not a tenant name), else the one every bundle
    names, else the default tenant (also when the bundles' name is none stella accepts: they came from elsewhere)."""
    if tenant is not None:
        return validate_tenant(tenant)
    named = {i.source.tenant for i in inputs}
    only = named.pop() if len(named) == 1 else None
    if only:
        with contextlib.suppress(StellaError):
            return validate_tenant(only)
    return DEFAULT_TENANT


# -- evidence and timeline -----------------------------------------------------------------------------------------
def record_kit(home: Home, kit: AssembledKit, tenant: str, signer: Signer | None) -> KitRecords:
    """Seal the kit into the evidence locker of ``tenant`` (with ``signer``; None: not sealed) and put its
    ``bundle.ready-for-transfer`` event on the timeline, linked to the evidence. Each failure is returned, not
    raised: the kit on disk is complete without them."""
    evidence: EvidenceBundle | None = None
    evidence_error: StellaError | None = None
    if signer is not None:
        try:
            evidence = seal_kit(home, kit, tenant, signer)
        except StellaError as exc:
            evidence_error = exc
    event: TimelineEvent | None = None
    event_error: StellaError | None = None
    try:
        event = _record_ready(home, kit, tenant, evidence)
    except StellaError as exc:
        event_error = exc
    return KitRecords(tenant, evidence, evidence_error, event, event_error)


def kit_content(kit: AssembledKit) -> Any:
    """The evidence of a kit (a :class:`services.evidence.Content` of kind ``kit``): the kit index, every volume's
    signed manifest, and the kit-wide ``SHA256SUMS`` and signature, each checked against what assemble wrote."""
    from core.evidence_seal import EvidenceArtifact as Artifact
    from services.evidence import BYTES_MEDIA_TYPE, JSON_MEDIA_TYPE, KIND, Content

    def read(rel: str) -> bytes:
        path = kit.out / rel
        try:
            return path.read_bytes()
        except OSError as exc:
            raise EnvironmentFailure(f"cannot read the kit's file to seal it: {exc.strerror}", path=str(path)) from None

    index = kit.index.to_bytes()
    sums = read(KIT_SUMS)
    if hashlib.sha256(sums).hexdigest() != kit.sums_sha256:
        raise IntegrityError("the kit's SHA256SUMS changed after it was written", path=str(kit.out / KIT_SUMS))
    artifacts = [Artifact(KIT_INDEX, index, JSON_MEDIA_TYPE)]
    for v in kit.plan.volumes:
        folder = volume_dir_name(v.volume)
        manifest = read(f"{folder}/{VOLUME_MANIFEST}")
        if orjson.loads(manifest).get("index", {}).get("sha256") != kit.index_sha256:
            raise IntegrityError("the volume manifest names another kit index", path=str(kit.out / folder))
        artifacts += [
            Artifact(f"{folder}/{VOLUME_MANIFEST}", manifest, JSON_MEDIA_TYPE),
            Artifact(f"{folder}/{VOLUME_MANIFEST_SIG}", read(f"{folder}/{VOLUME_MANIFEST_SIG}"), BYTES_MEDIA_TYPE),
        ]
    artifacts += [
        Artifact(KIT_SUMS, sums, BYTES_MEDIA_TYPE),
        Artifact(KIT_SUMS_SIG, read(KIT_SUMS_SIG), BYTES_MEDIA_TYPE),
    ]
    subject = {
        "kitId": kit.index.kit_id,
        "indexSha256": f"sha256:{kit.index_sha256}",
        "sha256sums": f"sha256:{kit.sums_sha256}",
        "signer": kit.index.signer_keyid,
        "volumeSize": kit.plan.volume_size,
        "volumes": len(kit.plan.volumes),
        "bundles": [
            {"name": b.name, "sha256": f"sha256:{b.sha256}", "size": b.size, "profile": b.profile, "runId": b.run_id}
            for b in kit.index.bundles
        ],
    }
    return Content(KIND["KIT"], kit.index.kit_id, subject, artifacts, [])


def seal_kit(home: Home, kit: AssembledKit, tenant: str, signer: Signer) -> EvidenceBundle:
    """Seal :func:`kit_content` into the tenant's evidence locker (timestamped when a TSA is configured), the custody
    events on the timeline once committed, as every seal is."""
    from core.evidence_store import EvidenceStore
    from core.store import Store
    from services.evidence import publish_custody, seal_in

    content = kit_content(kit)
    with Store.open(home) as store:
        chain = EvidenceStore(store.conn).custody(tenant, last=1)
        start = chain[-1].seq if chain else 0
        with store.transaction() as cur:
            bundle = seal_in(store, cur, tenant, content, signer, f"Offline Kit {kit.index.kit_id} assembled")
        publish_custody(store, tenant, start)
    return bundle


def _record_ready(home: Home, kit: AssembledKit, tenant: str, evidence: EvidenceBundle | None) -> TimelineEvent:
    """``bundle.ready-for-transfer`` for the kit: its id, index digest and checksums, linked to its evidence."""
    from core.store import Store
    from services.timeline import record_event, source_for

    data = {
        "kind": "offline-kit",
        "kitId": kit.index.kit_id,
        "indexSha256": f"sha256:{kit.index_sha256}",
        "manifestSha256": f"sha256:{kit.index_sha256}",
        "bundle": {"path": str(kit.out), "sha256": f"sha256:{kit.sums_sha256}"},
        "volumes": len(kit.plan.volumes),
        "bundles": [b.name for b in kit.index.bundles],
        "evidenceId": None if evidence is None else evidence.evidence_id,
    }
    with Store.open(home) as store:
        return record_event(
            store,
            tenant=tenant,
            type=BUNDLE_READY_FOR_TRANSFER,
            source=source_for(tenant, "kit"),
            subject=f"kit:{kit.index.kit_id}",
            data=data,
            event_id=f"kit-{kit.index.kit_id}.ready",
            evidence_digests=[] if evidence is None else [evidence.digest],
        )


def _copy_range(src: Any, dst: Path, size: int, whole: Any, obs: Observer, label: str) -> str:
    """Copy ``size`` bytes from ``src`` to a new file ``dst``; returns their sha256 and feeds ``whole``."""
    part = hashlib.sha256()
    left = size
    with dst.open("xb") as fh:
        while left:
            if obs.is_cancelled():
                raise Cancelled("the kit was not assembled: cancelled")
            chunk = src.read(min(CHUNK, left))
            if not chunk:
                raise EnvironmentFailure("the bundle got shorter while it was read", path=label)
            part.update(chunk)
            whole.update(chunk)
            fh.write(chunk)
            left -= len(chunk)
            obs.advance(len(chunk), detail=label)
        fh.flush()
        os.fsync(fh.fileno())
    return part.hexdigest()


def _write_kit(
    work: Path, inputs: Sequence[KitInput], layout: KitPlan, support: Support, signer: Signer, obs: Observer
) -> tuple[KitIndex, str, int]:
    created = rfc3339(utcnow().replace(microsecond=0))
    for v in layout.volumes:
        (work / volume_dir_name(v.volume) / DATA_DIR).mkdir(parents=True)
    digests: dict[tuple[str, int], str] = {}
    whole: dict[str, str] = {}
    obs.start("bytes", sum(i.source.size for i in inputs))
    for item in sorted(inputs, key=lambda i: i.source.name):
        total = hashlib.sha256()
        with item.path.open("rb") as src:
            for p in layout.parts_of(item.source.name):
                target = work / volume_dir_name(p.volume) / p.path
                digests[(p.bundle, p.part)] = _copy_range(src, target, p.size, total, obs, item.source.name)
            if src.read(1):
                raise EnvironmentFailure("the bundle grew while it was read", path=str(item.path))
        whole[item.source.name] = total.hexdigest()
    obs.finish("bytes")
    kit_id = hashlib.sha256(
        canonical_json(
            {
                "bundles": [[n, whole[n]] for n in sorted(whole)],
                "createdAt": created,
                "signer": signer.keyid,
                "volumeSize": layout.volume_size,
            }
        )
    ).hexdigest()[:32]
    # Support files first (their digests go into the manifests), then the index, then each volume's manifest.
    volume_files: dict[int, dict[str, tuple[int, str]]] = {}
    for v in layout.volumes:
        root = work / volume_dir_name(v.volume)
        files: dict[str, tuple[int, str]] = {}
        for name, data in [*support.files, (README, readme(kit_id, layout, v.volume, signer.keyid))]:
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            files[name] = (len(data), hashlib.sha256(data).hexdigest())
        (root / VERIFY_SCRIPT).chmod(0o755)
        if support.binary is not None:
            target = root / BINARY_DIR / BINARY_NAME
            target.parent.mkdir(parents=True, exist_ok=True)
            with support.binary.open("rb") as src:
                sha = _copy_range(src, target, support.binary_size, hashlib.sha256(), NullObserver(), BINARY_NAME)
            target.chmod(0o755)
            files[f"{BINARY_DIR}{BINARY_NAME}"] = (support.binary_size, sha)
        for p in v.parts:
            files[p.path] = (p.size, digests[(p.bundle, p.part)])
        volume_files[v.volume] = files
    volume_bytes = {v: (len(f) + 5, sum(size for size, _ in f.values())) for v, f in volume_files.items()}
    index = _index(kit_id, created, layout, digests, signer.keyid, whole=whole, volume_bytes=volume_bytes)
    index_bytes = index.to_bytes()
    index_sha = hashlib.sha256(index_bytes).hexdigest()
    sums_lines: list[str] = []
    total_bytes = 0
    for v in layout.volumes:
        root = work / volume_dir_name(v.volume)
        manifest = _manifest(
            kit_id, index, layout, v.volume, sha256_index=index_sha, files=volume_files[v.volume], support=support
        )
        manifest_bytes = manifest.to_bytes()
        sums = volume_sums(manifest, hashlib.sha256(manifest_bytes).hexdigest())
        listed = dict(volume_files[v.volume])
        for name, data in (
            (KIT_INDEX, index_bytes),
            (VOLUME_MANIFEST, manifest_bytes),
            (VOLUME_MANIFEST_SIG, cosign_blob_signature(signer, manifest_bytes)),
            (VOLUME_SUMS, sums),
            (VOLUME_SUMS_SIG, cosign_blob_signature(signer, sums)),
        ):
            (root / name).write_bytes(data)
            listed[name] = (len(data), hashlib.sha256(data).hexdigest())
        # The digests are those computed while writing: the kit is not read back. What lies on the volume must be
        # exactly what was listed, and fit.
        if walk_files(root) != sorted(listed):
            raise EnvironmentFailure("the volume holds other files than were written to it", path=str(root))
        for rel, (size, sha) in sorted(listed.items()):
            sums_lines.append(f"{sha}  {volume_dir_name(v.volume)}/{rel}\n")
            total_bytes += size
        used = sum(sectors(size) for size, _ in listed.values()) * SECTOR
        if used > layout.volume_size - iso_reserve(layout.volume_size):
            raise EnvironmentFailure(
                f"volume {v.volume} came out at {used} bytes, over its {layout.volume_size}: a defect in the planner",
                path=str(root),
            )
        _fsync_tree(root)
    kit_sums = "".join(sums_lines).encode("ascii")
    write_bytes(work / KIT_SUMS, kit_sums)
    write_bytes(work / KIT_SUMS_SIG, cosign_blob_signature(signer, kit_sums))
    return index, hashlib.sha256(kit_sums).hexdigest(), total_bytes


def _fsync_tree(root: Path) -> None:
    for folder, _, names in os.walk(root):
        for name in names:
            fd = os.open(Path(folder) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


# -- verify --------------------------------------------------------------------------------------------------------
def volume_dirs(paths: Sequence[Path]) -> list[Path]:
    """The volumes named: a volume directory as is, a kit directory as its ``vol-NN`` directories in order."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir() and not (path / VOLUME_MANIFEST).exists():
            found = [
                path / volume_dir_name(n) for n in range(1, MAX_VOLUMES + 1) if (path / volume_dir_name(n)).is_dir()
            ]
            if found:
                out += found
                continue
        out.append(path)
    return out


def verify_kit(
    home: Home, paths: Sequence[Path], key_files: Sequence[Path] = (), observer: Observer | None = None
) -> KitReport:
    """`stella kit verify`: each volume alone, then together (see :mod:`verify.kit`); for a kit directory also its
    signed ``SHA256SUMS``, against the volumes' signed manifests."""
    keys = trusted_keys(home, key_files)
    report = verify_volumes(volume_dirs(paths), keys, observer=observer)
    for path in paths:
        if report.error is not None or not report.ok or not (path / KIT_SUMS).is_file():
            continue
        if (path / VOLUME_MANIFEST).exists():
            continue  # a volume, not a kit directory
        mine = [v for v in report.volumes if Path(v.bundle).parent == path]
        report.error = verify_kit_sums(path, keys, mine)
        if report.error is None:
            report.sums_checked.append(str(path))
    return report


# -- restore -------------------------------------------------------------------------------------------------------
#: A restore's working directory beside its destination: the partial bundles and the state file, per kit.
RESTORE_DIR_PREFIX = ".stella-kit-"
STATE_FILE = "state.json"


@dataclass
class Restored:
    """One bundle a restore finished: where it is, and the report of `stella verify` on it."""

    name: str
    path: Path
    sha256: str
    report: VerifyReport | None = None
    already: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "path": str(self.path), "sha256": self.sha256}
        out["alreadyRestored"] = self.already
        if self.report is not None:
            out["verification"] = self.report.to_dict()
        return out


@dataclass
class RestoreResult:
    """What a restore did: the kit, the bundles now complete, and the volumes each other bundle still needs."""

    kit_id: str
    to: Path
    restored: list[Restored] = field(default_factory=list)
    waiting: dict[str, list[int]] = field(default_factory=dict)
    parts_written: int = 0
    parts_resumed: int = 0
    volumes: KitReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kitId": self.kit_id,
            "to": str(self.to),
            "restored": [r.to_dict() for r in self.restored],
            "waiting": self.waiting,
            "partsWritten": self.parts_written,
            "partsAlreadyDone": self.parts_resumed,
        }


class _State:
    """The parts of each bundle a restore has checked and written, kept in ``state.json`` (written atomically)."""

    def __init__(self, folder: Path, kit_id: str, index_sha256: str) -> None:
        self.path = folder / STATE_FILE
        self.done: dict[str, set[int]] = {}
        if self.path.is_file():
            try:
                doc = orjson.loads(self.path.read_bytes())
                if doc.get("kitId") == kit_id and doc.get("index") == index_sha256:
                    self.done = {str(k): {int(n) for n in v} for k, v in doc.get("done", {}).items()}
            except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                self.done = {}  # a damaged state only costs copying the parts again
        self.kit_id = kit_id
        self.index = index_sha256

    def mark(self, bundle: str, part: int) -> None:
        self.done.setdefault(bundle, set()).add(part)
        self.save()

    def forget(self, bundle: str) -> None:
        self.done.pop(bundle, None)
        self.save()

    def save(self) -> None:
        doc = {"kitId": self.kit_id, "index": self.index, "done": {k: sorted(v) for k, v in sorted(self.done.items())}}
        write_bytes(self.path, canonical_json(doc), what="cannot record the restore's progress")


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with (folder / ".lock").open("a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EnvironmentFailure(
                "another restore of this kit is running into this directory", path=str(folder)
            ) from None
        yield


@dataclass(frozen=True)
class RestoreRequest:
    """`stella kit restore`: the volumes that arrived (any order), where the bundles go, the trusted keys."""

    volumes: tuple[Path, ...]
    to: Path
    key_files: tuple[Path, ...] = ()


def restore(home: Home, request: RestoreRequest, observer: Observer | None = None) -> RestoreResult:
    """Reassemble the bundles whose parts lie on the volumes given (and on volumes a previous restore into the same
    directory already read), check every part and every whole bundle, and verify each as `stella verify` does."""
    obs = observer or NullObserver()
    keys = trusted_keys(home, request.key_files)
    dirs = volume_dirs(request.volumes)
    report = verify_volumes(dirs, keys, observer=obs, digests=False)
    failed = report.first_error
    if failed is not None:
        raise failed
    index = report.index
    assert index is not None
    to = request.to
    to.mkdir(parents=True, exist_ok=True)
    work = to / f"{RESTORE_DIR_PREFIX}{index.kit_id}"
    work.mkdir(exist_ok=True)
    result = RestoreResult(index.kit_id, to, volumes=report)
    with _locked(work):
        state = _State(work, index.kit_id, report.volumes[0].index_sha256 or "")
        for name in [n for n in state.done if not (work / n).is_file()]:
            state.forget(name)  # its partial bundle is gone: what was recorded of it is copied again
        by_volume = {r.volume.volume: Path(r.bundle) for r in report.volumes if r.volume is not None}
        todo = [
            (b, p)
            for b in index.bundles
            for p in b.parts
            if p.volume in by_volume and p.part not in state.done.get(b.name, set()) and not (to / b.name).exists()
        ]
        obs.start("bytes", sum(p.size for _, p in todo))
        for bundle, part in todo:
            _restore_part(work, by_volume[part.volume], bundle, part, report, obs)
            state.mark(bundle.name, part.part)
            result.parts_written += 1
        obs.finish("bytes")
        result.parts_resumed = sum(len(v) for v in state.done.values()) - result.parts_written
        for bundle in index.bundles:
            final = to / bundle.name
            done = state.done.get(bundle.name, set())
            if final.exists():
                sha = _sha256_of(final, obs)
                if sha != bundle.sha256:
                    raise BadInputError(
                        f"{bundle.name} already exists in the destination and is not the kit's bundle",
                        path=str(final),
                        hint="move it away, or restore into another directory",
                    )
                result.restored.append(Restored(bundle.name, final, sha, already=True))
                continue
            if len(done) < len(bundle.parts):
                result.waiting[bundle.name] = sorted({p.volume for p in bundle.parts if p.part not in done})
                continue
            result.restored.append(_finish_bundle(home, work, final, bundle, state, request.key_files, obs))
        if not result.waiting:
            shutil.rmtree(work, ignore_errors=True)
    return result


def _partial(work: Path, bundle: KitBundle) -> Path:
    return work / bundle.name


def _restore_part(
    work: Path, volume: Path, bundle: KitBundle, part: BundlePart, report: KitReport, obs: Observer
) -> None:
    """Copy one part into the partial bundle at its offset, hashing it; a part that does not match its signed sha256
    (or size) is refused naming the volume and the part, and is not recorded as done."""
    vreport = next(r for r in report.volumes if r.bundle == str(volume))
    assert vreport.volume is not None
    where = f"volume {part.volume} ({vreport.volume.label}, {volume}): {part.path}"
    source = volume / part.path
    target = _partial(work, bundle)
    fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
    digest = hashlib.sha256()
    copied = 0
    try:
        with source.open("rb") as src, os.fdopen(fd, "r+b") as out:
            out.seek(part.offset)
            while chunk := src.read(CHUNK):
                if obs.is_cancelled():
                    raise Cancelled("restore cancelled; run it again to resume")
                copied += len(chunk)
                if copied > part.size:
                    break
                digest.update(chunk)
                out.write(chunk)
                obs.advance(len(chunk), detail=part.path)
            out.flush()
            os.fsync(out.fileno())
    except FileNotFoundError:
        raise IntegrityError(f"missing part: {where}", path=str(source)) from None
    if copied != part.size or digest.hexdigest() != part.sha256:
        raise IntegrityError(
            f"corrupted part: {where} does not match its size and sha256 in the signed manifest",
            path=str(source),
            hint="copy that volume again from a good medium",
        )


def _sha256_of(path: Path, obs: Observer) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            if obs.is_cancelled():
                raise Cancelled("restore cancelled; run it again to resume")
            digest.update(chunk)
    return digest.hexdigest()


def _finish_bundle(
    home: Home,
    work: Path,
    final: Path,
    bundle: KitBundle,
    state: _State,
    key_files: Sequence[Path],
    obs: Observer,
) -> Restored:
    """Check the whole reassembled bundle's digest, verify it as `stella verify` does, then rename it into place."""
    from services.receive import ReceiveRequest, verify_any

    partial = _partial(work, bundle)
    with open(partial, "r+b") as fh:
        fh.truncate(bundle.size)
    sha = _sha256_of(partial, obs)
    if sha != bundle.sha256:
        state.forget(bundle.name)
        partial.unlink(missing_ok=True)
        raise IntegrityError(
            f"{bundle.name} reassembled to sha256 {sha}, not the {bundle.sha256} the signed index names",
            path=str(final),
            hint="its parts were checked; run the restore again with all its volumes",
        )
    verification = verify_any(home, ReceiveRequest(partial, key_files=tuple(key_files)))
    verification.bundle = str(final)
    if verification.error is not None:
        raise _not_verified(bundle.name, verification.error)
    partial.replace(final)
    fsync_dir(final.parent)
    return Restored(bundle.name, final, sha, verification)


def _not_verified(name: str, error: StellaError) -> StellaError:
    error.message = f"{name} was reassembled but does not verify: {error.message}"
    return error


# -- ISO -----------------------------------------------------------------------------------------------------------
#: The one time every file, directory and volume descriptor of a kit's ISO image carries, so that two builds of the
#: same volume are byte-identical (the kit's creation time would do as well, but a fixed one needs no parsing).
ISO_EPOCH = 946684800  # 2000-01-01T00:00:00Z


@dataclass(frozen=True)
class IsoImage:
    """An ISO image of a volume: where, its label, size and sha256, and whether it fits the kit's volume size."""

    out: Path
    label: str
    size: int
    sha256: str
    volume_size: int

    @property
    def fits(self) -> bool:
        return self.size <= self.volume_size

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "label": self.label,
            "size": self.size,
            "sha256": self.sha256,
            "volumeSize": self.volume_size,
            "fits": self.fits,
        }


def xorriso_path() -> str:
    """The ``xorriso`` executable, or exit 8 saying how to install it."""
    found = shutil.which("xorriso")
    if found is None:
        raise EnvironmentFailure("xorriso is not installed", hint="install it: apt-get install xorriso")
    return found


def build_iso(
    home: Home, volume: Path, out: Path, key_files: Sequence[Path] = (), observer: Observer | None = None
) -> IsoImage:
    """`stella kit iso`: verify the volume, then write a reproducible ISO 9660 + Joliet + Rock Ridge image of it
    with xorriso (fixed dates, owners and modes; MD5 tags for ``xorriso -check_md5``), atomically."""
    keys = trusted_keys(home, key_files)
    report = verify_volumes([volume], keys, observer=observer).volumes[0]
    if report.error is not None:
        raise report.error
    assert report.volume is not None and report.index is not None
    label = report.volume.label
    tmp = out.parent / f".{out.name}.{secrets.token_hex(6)}.tmp"
    stamp = "20000101000000"
    argv = [xorriso_path(), "-no_rc", "-report_about", "SORRY", "-abort_on", "FAILURE"]
    argv += ["-outdev", str(tmp), "-volid", label, "-volset_id", f"STELLA_KIT_{report.volume.kit_id.upper()}"]
    argv += ["-publisher", "STELLAOPS", "-application_id", "STELLA_OFFLINE_KIT", "-system_id", "LINUX"]
    argv += ["-joliet", "on", "-rockridge", "on", "-md5", "on", "-padding", "0", "-hardlinks", "off", "-acl", "off"]
    argv += ["-xattr", "off", "-map", str(volume), "/"]
    argv += ["-chown_r", "0", "/", "--", "-chgrp_r", "0", "/", "--", "-chmod_r", "a=r,u+w", "/", "--"]
    argv += ["-find", "/", "-type", "d", "-exec", "chmod", "a+x", "--"]
    argv += ["-chmod", "a+x", f"/{VERIFY_SCRIPT}", "--"]
    if (volume / BINARY_DIR / BINARY_NAME).is_file():
        argv += ["-chmod", "a+x", f"/{BINARY_DIR}{BINARY_NAME}", "--"]
    for kind in ("b", "m", "a", "c"):
        argv += ["-alter_date_r", kind, f"={ISO_EPOCH}", "/", "--"]
    argv += ["-volume_date", "uuid", f"{stamp}00", "-volume_date", "all_file_dates", f"={ISO_EPOCH}", "-commit"]
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(ISO_EPOCH), TZ="UTC", LC_ALL="C")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not tmp.is_file():
            raise EnvironmentFailure(
                f"xorriso failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}", path=str(out)
            )
        size = tmp.stat().st_size
        sha = _sha256_of(tmp, observer or NullObserver())
        check_iso(tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return IsoImage(out, label, size, sha, report.index.volume_size)


#: What ``xorriso -check_md5_r`` says when every file and the session match their MD5 tags.
MD5_MATCH = "File contents and their MD5 checksums match"


def check_iso(image: Path) -> str:
    """``xorriso -check_md5``: the image's MD5 tags match its content; returns xorriso's verdict line."""
    argv = [xorriso_path(), "-no_rc", "-md5", "on", "-indev", str(image), "-check_md5_r", "FAILURE", "/", "--"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    said = (done.stdout + done.stderr).splitlines()
    verdict = [line for line in said if "MD5" in line or "ismatch" in line]
    if done.returncode != 0 or not any(MD5_MATCH in line for line in verdict):
        raise IntegrityError(f"the image's MD5 tags do not match: {' '.join(verdict[-2:])}", path=str(image))
    return MD5_MATCH
