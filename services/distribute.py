"""`stella distribute RUN --to URL`: hand a succeeded run's bundle to a registry; `stella pull`: fetch one back.

The destination's scheme picks the way: ``oci://HOST[/TENANT/NAME][:TAG]`` pushes the bundle as an OCI artifact
(docs/distribution.md). Each distribution is an ``export_distributions`` row and an ``export.distributed`` timeline
event; pushing the same run to the same place again adds neither (the digests are the same, so is the row).

An OCI push is one manifest of ``artifactType`` :data:`STELLA_BUNDLE_ARTIFACT` with the empty config and **one layer,
the bundle archive byte for byte**: the archive is what is signed, ordered and verified as a unit (``stella verify``
takes it), its sha256 is the one the run recorded, and the layer's digest is that sha256, so what ``stella pull``
writes is the very file the run built; a layer per file would need the archive rebuilt, byte-exact, on the far side.
The bundle's ``export.json``, its signature and its provenance envelope also travel as a **referrer** (``subject``
= the bundle's manifest), so a registry-side tool can find and check them without the archive; on a registry
without the referrers API (distribution 2.8) the referrer is listed in the ``sha256-<hex>`` tag index. When the run's
bundle has an in-toto attestation (``BUNDLE.intoto.jsonl``), the push gets its own signed line there (type ``oci``,
the location ``oci://HOST/REPO@DIGEST``) and the whole file is a layer of the referrer, so ``stella pull`` writes it
beside the pulled bundle and ``stella verify`` checks it. The push is recorded once its bundle manifest is in the
registry, before the referrer (whose attestation names the record); a push retried after a failure reuses the record
and its line.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.objstore.s3 import S3_SCHEME
from adapters.oci import credentials as creds_io
from adapters.oci import reference as oci_ref
from adapters.oci.client import DEFAULT_CHUNK, RegistryClient, sha256_file
from adapters.oci.credentials import Credentials as Credentials
from core import log_fields
from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.atomic import write_bytes
from core.canonical import canonical_json
from core.contract import trivy as trivy_contract
from core.contract.bundle import HEAD_ORDER, MANIFEST, MANIFEST_SIG, PROVENANCE_DSSE
from core.contract.export_attestation import SUFFIX as ATTESTATION_SUFFIX
from core.contract.media_types import (
    DSSE_ENVELOPE,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    STELLA_BUNDLE_ARTIFACT,
    STELLA_BUNDLE_LAYER_GZIP,
    STELLA_BUNDLE_LAYER_ZSTD,
    STELLA_BUNDLE_SIGNATURE_ARTIFACT,
    STELLA_EXPORT_ATTESTATION,
    STELLA_EXPORT_MANIFEST,
    STELLA_EXPORT_SIGNATURE,
)
from core.contract.oci import ANNOTATION_CREATED as CREATED
from core.contract.oci import (
    ANNOTATION_EXPORT_DIGEST,
    ANNOTATION_PROFILE,
    ANNOTATION_PROVENANCE_REF,
    ANNOTATION_RUN_ID,
    ANNOTATION_TENANT,
    REFERRERS_TAG_PREFIX,
)
from core.contract.oci import ANNOTATION_REF_NAME as REF_NAME
from core.contract.oci import ANNOTATION_TITLE as TITLE
from core.errors import BadInputError, IntegrityError, NotFoundError, PolicyRefusal, UsageError
from core.home import Home
from core.progress import Observer
from core.runs import Distribution, ExportRun, RunEngine, RunState
from core.store import Store
from services import timeline
from services.distribute_s3 import S3Distribution, S3Options, distribute_s3
from services.export_attest import attest_remote_copy, distribution_signer
from services.retention import stamp_expiry

#: The empty JSON object: the config of an artifact that has none (OCI image spec 1.1, "empty descriptor").
EMPTY_CONFIG = b"{}"
#: Head files of a bundle that travel as layers of its referrer, with their media types.
REFERRER_FILES = (
    (MANIFEST, STELLA_EXPORT_MANIFEST),
    (MANIFEST_SIG, STELLA_EXPORT_SIGNATURE),
    (PROVENANCE_DSSE, DSSE_ENVELOPE),
)
#: The largest head file read into memory for the referrer (export.json of a big bundle is a few MiB).
MAX_HEAD_FILE = 64 << 20
#: The largest attestation file taken from a referrer (the bound its verifier reads).
MAX_ATTESTATION = 16 << 20


@dataclass(frozen=True)
class Access:
    """How to reach a registry: credentials, plain HTTP (loopback only), a CA file, the upload chunk size."""

    registry_config: Path | None = None
    credentials_file: Path | None = None
    prompt: Callable[[str], Credentials | None] | None = None
    plain_http: bool = False
    ca_file: Path | None = None
    chunk_size: int = DEFAULT_CHUNK

    def client(self, ref: oci_ref.Reference) -> RegistryClient:
        if self.plain_http and not ref.loopback:
            raise UsageError(
                f"--plain-http is allowed only for a registry on this machine (127.0.0.1, ::1, localhost),"
                f" not {ref.host}",
                hint="use TLS, with --ca-file for a private CA",
            )
        if self.chunk_size < 1:
            raise UsageError("the chunk size must be at least 1 byte")
        found: Credentials | None = None
        if self.credentials_file is not None:
            found = creds_io.from_file(self.credentials_file)
        elif self.registry_config is not None:
            found = creds_io.from_docker_config(self.registry_config, ref.host)
        return RegistryClient(
            ref.host,
            credentials=found,
            prompt=self.prompt if found is None else None,
            plain_http=self.plain_http,
            ca_file=self.ca_file,
            chunk_size=self.chunk_size,
        )


@dataclass(frozen=True)
class Distributed:
    """The outcome of `stella distribute`."""

    distribution: Distribution
    reference: str
    manifest_digest: str
    layer: str
    blob: str  # how the bundle's blob got there: uploaded, present, mounted
    resumed_from: int
    referrer_digest: str
    referrers: str  # "api" or "tag-schema"
    new: bool  # False: this run was already pushed there; nothing was recorded again
    trivy: str | None = None  # HOST/REPO:TAG of the Trivy DB image pushed beside the bundle (trivy:db, trivy:java-db)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trivyReference": self.trivy,
            "distribution": self.distribution.to_dict(),
            "reference": self.reference,
            "manifestDigest": self.manifest_digest,
            "layerDigest": self.layer,
            "blob": self.blob,
            "resumedFrom": self.resumed_from,
            "referrerDigest": self.referrer_digest,
            "referrers": self.referrers,
            "recorded": self.new,
        }


def distribute_run(
    home: Home,
    run_id: str,
    to: str,
    access: Access,
    *,
    s3: S3Options | None = None,
    observer: Observer | None = None,
) -> Distributed | S3Distribution:
    """Hand run ``run_id``'s bundle to ``to``; the scheme of ``to`` picks the way (``s3://``: services.distribute_s3,
    with ``s3`` options or, without them, ``access``'s CA file and defaults). The hand-over is the run's
    ``distribute`` phase: its log lines, and the ``push_seconds`` of the distribution it records (metrics)."""
    with log_fields.bound(run_id=run_id), log_fields.phase("distribute", span="export.distribute"):
        if to.startswith(oci_ref.SCHEME):
            return _distribute_oci(home, run_id, oci_ref.parse(to, what="destination"), access, observer)
        if to.startswith(S3_SCHEME):
            return distribute_s3(home, run_id, to, s3 or S3Options(ca_file=access.ca_file), observer=observer)
    raise UsageError(f"unsupported destination {to!r}", hint="use oci://HOST/TENANT/NAME[:TAG] or s3://BUCKET/PREFIX")


def tenant_repository(ref: oci_ref.Reference, run: ExportRun) -> str:
    """The repository a run's bundle goes to: ``TENANT/PROFILE`` when ``to`` names only the host, else the named
    one, which must be under the run's tenant (``HOST/TENANT/...``): another tenant's namespace is refused (exit 7)."""
    tenant = run.tenant
    if not oci_ref.valid_component(tenant):  # never lowercased: tenants 'Acme' and 'acme' would share a namespace
        raise UsageError(
            f"the tenant {run.tenant!r} cannot name a registry namespace",
            hint="registry repository names are lowercase letters and digits separated by '.', '_' or '-'",
        )
    if not ref.repository:
        profile = re.sub(r"[^a-z0-9]+", "-", run.profile_id.lower()).strip("-") or "bundles"
        return f"{tenant}/{profile}"
    first = ref.repository.split("/", 1)[0]
    if first != tenant or "/" not in ref.repository:
        raise PolicyRefusal(
            f"the repository {ref.repository} is outside tenant {run.tenant!r}'s namespace",
            hint=f"push to oci://{ref.host}/{tenant}/NAME (repository per tenant)",
        )
    return ref.repository


def _head_files(bundle: Path) -> dict[str, bytes]:
    """The bundle's head files that travel in its referrer (read from the start of the archive, stopping early)."""
    wanted = {name for name, _ in REFERRER_FILES}
    found: dict[str, bytes] = {}
    with SafeArchiveReader(bundle, ReaderLimits()) as reader:
        for member in reader:
            if member.name not in HEAD_ORDER:
                break  # the payload begins: every head file came before it
            if member.name in wanted:
                if member.size > MAX_HEAD_FILE:
                    raise BadInputError(f"{member.name} is larger than {MAX_HEAD_FILE} bytes", path=str(bundle))
                with member.stream() as src:
                    found[member.name] = src.read()
    if MANIFEST not in found:
        raise BadInputError("the bundle has no export.json at its start", path=str(bundle))
    return found


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _descriptor(media_type: str, data_digest: str, size: int, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": data_digest, "size": size, **extra}


def _distribute_oci(
    home: Home, run_id: str, ref: oci_ref.Reference, access: Access, observer: Observer | None
) -> Distributed:
    with Store.open(home, read_only=True) as store:
        engine = RunEngine(store)
        run = engine.get_run(engine.resolve_run_id(run_id))
        earlier = engine.distributions(run.run_id)
    if run.state is not RunState.SUCCEEDED or run.artifact_path is None or run.artifact_sha256 is None:
        raise UsageError(f"run {run.run_id} is {run.state}; only a succeeded run has a bundle to distribute")
    bundle = run.artifact_path
    if not bundle.is_file():
        raise IntegrityError(f"the bundle of run {run.run_id} is missing", path=str(bundle))
    repo = tenant_repository(ref, run)
    tag = ref.tag or (run.run_id if oci_ref.valid_tag(run.run_id) else None)
    if ref.digest is not None:
        raise UsageError("a destination names a repository (and a tag), not a digest: the digest is the bundle's")
    layer_digest, size = sha256_file(bundle)
    if layer_digest != f"sha256:{run.artifact_sha256}" or size != run.artifact_size:
        raise IntegrityError(
            f"the bundle of run {run.run_id} no longer matches what the run recorded ({layer_digest}, {size} bytes)",
            path=str(bundle),
            hint="the stored bundle was changed or damaged; retry the export to build it again",
        )
    heads = _head_files(bundle)
    signer = distribution_signer(home, run)  # opened before anything is pushed: a locked key leaves nothing behind
    annotations = {
        CREATED: run.bundle_created_at_text,
        ANNOTATION_TENANT: run.tenant,
        ANNOTATION_PROFILE: run.profile_id,
        ANNOTATION_RUN_ID: run.run_id,
        ANNOTATION_EXPORT_DIGEST: _digest(heads[MANIFEST]),
    }
    if PROVENANCE_DSSE in heads:
        annotations[ANNOTATION_PROVENANCE_REF] = _digest(heads[PROVENANCE_DSSE])
    layer_type = STELLA_BUNDLE_LAYER_GZIP if bundle.name.endswith((".tgz", ".tar.gz")) else STELLA_BUNDLE_LAYER_ZSTD
    config = _descriptor(OCI_EMPTY, _digest(EMPTY_CONFIG), len(EMPTY_CONFIG))
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": STELLA_BUNDLE_ARTIFACT,
            "config": config,
            "layers": [_descriptor(layer_type, layer_digest, size, annotations={TITLE: bundle.name})],
            "annotations": annotations,
        }
    )
    host_prefix = f"{oci_ref.SCHEME}{ref.host}/"
    mount_from = tuple(
        sorted(
            {
                d.target[len(host_prefix) :].split("@", 1)[0]
                for d in earlier
                if d.type == "oci" and d.target.startswith(host_prefix)
            }
            - {repo}
        )
    )
    state_file = (
        home.root / "oci-uploads" / f"{hashlib.sha256(f'{ref.host}/{repo}@{layer_digest}'.encode()).hexdigest()}.json"
    )
    with access.client(ref) as client:
        client.push_blob(repo, _bytes_file(home, EMPTY_CONFIG), config["digest"], config["size"])
        pushed = client.push_blob(
            repo, bundle, layer_digest, size, state_file=state_file, mount_from=mount_from, observer=observer
        )
        manifest_digest, _ = client.push_manifest(repo, manifest, OCI_MANIFEST, tag=tag)
        target = f"{host_prefix}{repo}@{manifest_digest}"
        with Store.open(home) as store:
            engine = RunEngine(store)
            same = [d for d in engine.distributions(run.run_id) if d.type == "oci" and d.target == target]
            new = not same
            dist = same[0] if same else engine.record_distribution(run.run_id, "oci", target, run.artifact_sha256, size)
            if new:
                stamp_expiry(store, run.tenant)
                timeline.record_export_distributed(store, run.run_id, dist)
        attestation = None if signer is None else attest_remote_copy(run, dist, signer, target)
        if attestation is not None:
            heads = heads | {bundle.name + ATTESTATION_SUFFIX: attestation}
        trivy_ref = _push_trivy_image(client, home, repo, bundle)
        referrer_digest, referrers = _push_referrer(
            client, home, repo, heads, annotations, manifest_digest, len(manifest), config
        )
    return Distributed(
        dist,
        f"{ref.host}/{repo}" + (f":{tag}" if tag else "") + f"@{manifest_digest}",
        manifest_digest,
        layer_digest,
        pushed.how,
        pushed.resumed_from,
        referrer_digest,
        referrers,
        new,
        trivy_ref,
    )


def _push_trivy_image(client: RegistryClient, home: Home, repo: str, bundle: Path) -> str | None:
    """A Trivy bundle's OCI image (its ``oci/`` layout: Trivy's own media types) pushed to ``repo`` under the tag the
    layout names (``2`` for the DB, ``1`` for the Java DB), so ``trivy --db-repository HOST/REPO`` (or
    ``--java-db-repository``) downloads it; None for other bundles. Each blob's bytes are checked against its name."""
    folder = home.root / "oci-uploads"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        index_bytes: bytes | None = None
        blobs: dict[str, Path] = {}
        with SafeArchiveReader(bundle, ReaderLimits()) as reader:
            for member in reader:
                if member.name == trivy_contract.OCI_INDEX:
                    with member.stream() as src:
                        index_bytes = src.read(MAX_HEAD_FILE + 1)
                elif member.name.startswith(trivy_contract.OCI_BLOBS):
                    hexd = member.name.removeprefix(trivy_contract.OCI_BLOBS)
                    if re.fullmatch(r"[0-9a-f]{64}", hexd) is None:
                        raise IntegrityError(f"{member.name} is not named by a sha256", path=str(bundle))
                    target = Path(tmp) / hexd
                    hasher = hashlib.sha256()
                    with member.stream() as src, target.open("wb") as out:
                        while piece := src.read(1 << 20):
                            hasher.update(piece)
                            out.write(piece)
                    if hasher.hexdigest() != hexd:
                        raise IntegrityError(f"{member.name} does not hash to its name", path=str(bundle))
                    blobs[f"sha256:{hexd}"] = target
        if index_bytes is None:
            return None
        try:
            (entry,) = json.loads(index_bytes)["manifests"]
            manifest_digest, media_type = str(entry["digest"]), str(entry["mediaType"])
            tag = str(entry["annotations"][REF_NAME])
            manifest = json.loads(blobs[manifest_digest].read_bytes())
            parts = [manifest["config"], *manifest["layers"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(
                f"the bundle's {trivy_contract.OCI_INDEX} is not one tagged image", path=str(bundle)
            ) from exc
        if not oci_ref.valid_tag(tag):
            raise IntegrityError(f"the bundle's Trivy image tag {tag!r} is not a valid tag", path=str(bundle))
        for part in parts:
            path = blobs.get(str(part.get("digest")))
            if path is None:
                raise IntegrityError(f"the bundle's Trivy image lacks blob {part.get('digest')}", path=str(bundle))
            client.push_blob(repo, path, str(part["digest"]), path.stat().st_size)
        client.push_manifest(repo, blobs[manifest_digest].read_bytes(), media_type, tag=tag)
    return f"{client.host}/{repo}:{tag}"


def _bytes_file(home: Home, data: bytes) -> Path:
    """A small blob as a file under the home (the client streams files)."""
    folder = home.root / "oci-uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()}.blob"
    if not path.is_file() or path.read_bytes() != data:
        write_bytes(path, data)
    return path


def _push_referrer(
    client: RegistryClient,
    home: Home,
    repo: str,
    heads: dict[str, bytes],
    annotations: dict[str, str],
    subject_digest: str,
    subject_size: int,
    config: dict[str, Any],
) -> tuple[str, str]:
    layers = []
    files = [(name, media_type) for name, media_type in REFERRER_FILES if name in heads]
    files += [(name, STELLA_EXPORT_ATTESTATION) for name in heads if name.endswith(ATTESTATION_SUFFIX)]
    for name, media_type in files:
        data = heads[name]
        client.push_blob(repo, _bytes_file(home, data), _digest(data), len(data))
        layers.append(_descriptor(media_type, _digest(data), len(data), annotations={TITLE: name}))
    body = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": STELLA_BUNDLE_SIGNATURE_ARTIFACT,
            "config": config,
            "layers": layers,
            "subject": _descriptor(OCI_MANIFEST, subject_digest, subject_size),
            "annotations": annotations,
        }
    )
    digest, subject_known = client.push_manifest(repo, body, OCI_MANIFEST)
    if subject_known or client.referrers_api(repo, subject_digest):
        return digest, "api"
    client.add_referrer(
        repo,
        subject_digest,
        _descriptor(
            OCI_MANIFEST, digest, len(body), artifactType=STELLA_BUNDLE_SIGNATURE_ARTIFACT, annotations=annotations
        ),
    )
    return digest, "tag-schema"


@dataclass(frozen=True)
class Pulled:
    """The outcome of `stella pull`."""

    reference: str
    manifest_digest: str
    layer_digest: str
    size: int
    out: Path
    resumed_from: int
    attestation: Path | None = None  # OUT.intoto.jsonl, from the bundle's referrer, when it carries one

    def to_dict(self) -> dict[str, Any]:
        return {
            "attestation": None if self.attestation is None else str(self.attestation),
            "reference": self.reference,
            "manifestDigest": self.manifest_digest,
            "layerDigest": self.layer_digest,
            "size": self.size,
            "out": str(self.out),
            "resumedFrom": self.resumed_from,
        }


def pull_bundle(source: str, out: Path, access: Access, *, observer: Observer | None = None) -> Pulled:
    """`stella pull oci://HOST/REPO@sha256:...`: the bundle of that manifest to ``out``, every byte checked against
    the digest asked for; a ``.part`` file of an interrupted pull is resumed."""
    ref = oci_ref.parse(source, what="source")
    if ref.digest is None or not ref.repository:
        raise UsageError(
            f"pull by digest: {source!r} names no manifest digest",
            hint="oci://HOST/REPO@sha256:<hex> (stella distribute prints it)",
        )
    if out.is_dir():
        raise UsageError(f"{out} is a directory; --out names the bundle file to write", path=str(out))
    with access.client(ref) as client:
        body = client.get_manifest(ref.repository, ref.digest)
        if body is None:
            raise NotFoundError(f"the registry {ref.host} has no manifest {ref.digest} in {ref.repository}")
        layer_digest, size = _bundle_layer(body, source)
        resumed = client.pull_blob(ref.repository, layer_digest, size, out, observer=observer)
        attestation = _pull_attestation(client, ref.repository, ref.digest, out)
    return Pulled(str(ref), ref.digest, layer_digest, size, out, resumed, attestation)


def referrer_digests(client: RegistryClient, repo: str, subject: str) -> list[str]:
    """The stella referrers of ``subject``, oldest first: from the referrers API, else the ``sha256-<hex>`` index."""
    response = client.request(
        "GET", f"/v2/{repo}/referrers/{subject}", scope=f"repository:{repo}:pull", headers={"Accept": OCI_INDEX}
    )
    body = response.read()
    if not (response.status_code == 200 and response.headers.get("content-type", "").startswith(OCI_INDEX)):
        body = client.get_manifest(repo, REFERRERS_TAG_PREFIX + subject.removeprefix("sha256:")) or b""
    try:
        entries = json.loads(body).get("manifests") if body else []
    except (ValueError, AttributeError):
        entries = []
    if not isinstance(entries, list):
        return []
    return [
        str(m["digest"])
        for m in entries
        if isinstance(m, dict)
        and m.get("artifactType") == STELLA_BUNDLE_SIGNATURE_ARTIFACT
        and re.fullmatch(r"sha256:[0-9a-f]{64}", str(m.get("digest"))) is not None
    ]


def _pull_attestation(client: RegistryClient, repo: str, subject: str, out: Path) -> Path | None:
    """The attestation layer of the newest stella referrer of ``subject``, written to ``OUT.intoto.jsonl`` (every
    byte checked against its digest); None when no referrer carries one. `stella verify OUT` then checks it."""
    for digest in reversed(referrer_digests(client, repo, subject)):
        body = client.get_manifest(repo, digest)
        try:
            layers = json.loads(body or b"{}").get("layers") or []
        except (ValueError, AttributeError):
            continue
        for layer in layers if isinstance(layers, list) else []:
            if not isinstance(layer, dict) or layer.get("mediaType") != STELLA_EXPORT_ATTESTATION:
                continue
            blob, size = layer.get("digest"), layer.get("size")
            if not isinstance(blob, str) or re.fullmatch(r"sha256:[0-9a-f]{64}", blob) is None:
                raise BadInputError("the attestation layer's digest is not sha256:<hex>", path=digest)
            if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_ATTESTATION:
                raise BadInputError(f"the attestation layer's size is not 1 to {MAX_ATTESTATION} bytes", path=digest)
            target = out.with_name(out.name + ATTESTATION_SUFFIX)
            client.pull_blob(repo, blob, size, target)
            return target
    return None


def _bundle_layer(body: bytes, source: str) -> tuple[str, int]:
    """The one layer of a stella bundle's manifest: its digest and size; anything else is bad input (exit 3)."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise BadInputError("the manifest is not JSON", path=source) from exc
    if not isinstance(doc, dict) or doc.get("mediaType") not in (OCI_MANIFEST, None):
        kind = doc.get("mediaType") if isinstance(doc, dict) else None
        hint = "an image index is not a bundle" if kind == OCI_INDEX else None
        raise BadInputError(f"the manifest is not an OCI image manifest ({kind})", path=source, hint=hint)
    if doc.get("artifactType") != STELLA_BUNDLE_ARTIFACT:
        raise BadInputError(
            f"the manifest is not a stella bundle (artifactType {doc.get('artifactType')!r})", path=source
        )
    layers = doc.get("layers")
    if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
        raise BadInputError("a stella bundle's manifest has exactly one layer", path=source, pointer="/layers")
    layer = layers[0]
    digest, size = layer.get("digest"), layer.get("size")
    if layer.get("mediaType") not in (STELLA_BUNDLE_LAYER_ZSTD, STELLA_BUNDLE_LAYER_GZIP):
        raise BadInputError(f"the layer's media type {layer.get('mediaType')!r} is not a bundle's", path=source)
    if not isinstance(digest, str) or re.fullmatch(r"sha256:[0-9a-f]{64}", digest) is None:
        raise BadInputError("the layer's digest is not sha256:<hex>", path=source, pointer="/layers/0/digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadInputError("the layer's size is not a byte count", path=source, pointer="/layers/0/size")
    return digest, size
