"""Bootstrap packs: build one from a pack spec, list a verified pack, push a verified pack's images and charts.

A pack is a ``bootstrap:pack`` bundle (:mod:`adapters.profiles.bootstrap`). Listing and pushing verify the whole
bundle first (signature and every digest, as ``stella verify``); pushing then reads the layout out of the verified
archive, checks every blob against its name once more, and pushes each image and chart by digest with
:mod:`adapters.oci.client`, mounting a blob from a repository it already pushed to on the same registry.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.oci import reference as oci_ref
from adapters.oci.client import RegistryClient
from adapters.profiles.bootstrap import OCI_LAYOUT_BYTES, read_spec
from core.archive.reader import ReaderLimits, SafeArchiveReader
from core.atomic import write_bytes
from core.canonical import canonical_json
from core.contract.bootstrap import LAYOUT_BLOBS, OCI_DIR, PACK_MANIFEST, PACK_SCHEMA, REGISTRY_SOURCE
from core.contract.media_types import OCI_INDEX, OCI_MANIFEST
from core.contract.oci import ANNOTATION_REF_NAME as REF_NAME
from core.contract.profiles import BOOTSTRAP_PACK
from core.errors import BadInputError, IntegrityError, UsageError
from core.home import Home
from core.progress import Observer
from core.runs import ExportRun
from core.selectors import parse_selectors
from core.store import Store
from core.tenants import validate_tenant
from services.distribute import Access
from services.export import build_run, default_out, output_path, plan_export
from services.trust import trusted_keys
from verify.bundle import VerifyReport, verify_bundle

MAX_JSON = 4 << 20


def build_pack(
    home: Home,
    spec: Path,
    tenant: str,
    *,
    out: Path | None = None,
    mkdir: bool = False,
    key: str | None = None,
    passphrase_file: Path | None = None,
    access: Access | None = None,
    observer: Observer | None = None,
) -> ExportRun:
    """`stella bootstrap build SPEC`: plan and build a ``bootstrap:pack`` run of the images and charts ``spec``
    names (every input read and pinned by digest at planning, read and checked again while building). Images in a
    registry (``docker://``) are fetched first, through ``access``, into a layout under the home."""
    tenant = validate_tenant(tenant)
    target = output_path(out, mkdir=mkdir) if out is not None else default_out(home, "bootstrap")
    spec_sha = hashlib.sha256(spec.read_bytes()).hexdigest() if spec.is_file() else "0" * 64
    fetched = {
        item["source"]: fetch_image(home, item["source"], access or Access())
        for item in read_spec(spec)["images"]
        if item["source"].startswith(REGISTRY_SOURCE)
    }
    with Store.open(home) as store:
        # The pack's inputs are files, not documents: a selector no document matches pins an empty selection.
        selectors = parse_selectors([f"include_id=bootstrap-spec-{spec_sha}"])
        run = plan_export(
            store,
            tenant,
            BOOTSTRAP_PACK,
            selectors,
            requested={"spec": str(spec.resolve()), "fetched": fetched},
            key=key,
            out=target.resolve(),
            allow_empty=True,
        )
        return build_run(store, home, run, key=key, passphrase_file=passphrase_file, observer=observer)


@dataclass(frozen=True)
class Pack:
    """A verified pack: the verification report and its manifest's entries."""

    report: VerifyReport
    entries: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"verification": self.report.to_dict(), "entries": self.entries}


def _read_manifest(bundle: Path) -> list[dict[str, Any]]:
    with SafeArchiveReader(bundle, ReaderLimits()) as reader:
        for member in reader:
            if member.name == PACK_MANIFEST:
                with member.stream() as src:
                    doc = json.loads(src.read(MAX_JSON + 1))
                if not isinstance(doc, dict) or doc.get("schema") != PACK_SCHEMA:
                    raise BadInputError(f"{PACK_MANIFEST} is not a bootstrap pack manifest", path=str(bundle))
                return list(doc["entries"])
    raise BadInputError(f"the bundle has no {PACK_MANIFEST}: not a bootstrap pack", path=str(bundle))


def verified_pack(home: Home, bundle: Path, keys: Sequence[Path] = (), observer: Observer | None = None) -> Pack:
    """Verify ``bundle`` (signature against the trusted keys, every digest); raise the failure, else its entries."""
    report = verify_bundle(bundle, trusted_keys(home, keys), observer=observer)
    if report.error is not None:
        raise report.error
    if not report.ok:
        raise IntegrityError("the pack did not verify", path=str(bundle))
    return Pack(report, _read_manifest(bundle))


@dataclass(frozen=True)
class Pushed:
    ref_name: str
    kind: str
    reference: str
    digest: str
    blobs: dict[str, int]  # how each blob got there: uploaded, mounted, present (already in the repository)

    def to_dict(self) -> dict[str, Any]:
        return {
            "refName": self.ref_name,
            "type": self.kind,
            "reference": self.reference,
            "digest": self.digest,
            "blobs": self.blobs,
        }


def push_pack(
    home: Home,
    bundle: Path,
    registry: str,
    access: Access,
    *,
    keys: Sequence[Path] = (),
    observer: Observer | None = None,
) -> list[Pushed]:
    """`stella bootstrap push PACK --registry HOST[/PREFIX]`: verify, then push every image and chart by digest
    (then tag it with its ref name's tag) under ``PREFIX``; returns the references."""
    ref = oci_ref.parse(registry if registry.startswith(oci_ref.SCHEME) else oci_ref.SCHEME + registry, what="registry")
    if ref.tag or ref.digest:
        raise UsageError("--registry names a host and a repository prefix, not a tag or digest")
    pack = verified_pack(home, bundle, keys, observer)
    folder = home.root / "oci-uploads"
    folder.mkdir(parents=True, exist_ok=True)
    pushed: list[Pushed] = []
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        blobs = _extract_blobs(bundle, Path(tmp))
        with access.client(ref) as client:
            done_in: dict[str, str] = {}  # blob digest -> a repository that has it (for a cross-repository mount)
            for entry in pack.entries:
                name, _, tag = str(entry["refName"]).rpartition(":")
                repo = f"{ref.repository}/{name}" if ref.repository else name
                how: dict[str, int] = {"uploaded": 0, "mounted": 0, "present": 0}
                _push_tree(client, repo, str(entry["digest"]), blobs, done_in, how)
                data = blobs[str(entry["digest"])].read_bytes()
                client.put_manifest(repo, tag, data, str(entry["mediaType"]))
                pushed.append(
                    Pushed(
                        str(entry["refName"]),
                        str(entry["type"]),
                        f"{ref.host}/{repo}:{tag}@{entry['digest']}",
                        str(entry["digest"]),
                        how,
                    )
                )
    return pushed


def _extract_blobs(bundle: Path, into: Path) -> dict[str, Path]:
    """The layout's blobs out of the (verified) archive, each checked against its name again as it is written."""
    prefix = LAYOUT_BLOBS + "/"
    found: dict[str, Path] = {}
    with SafeArchiveReader(bundle, ReaderLimits()) as reader:
        for member in reader:
            if not member.name.startswith(prefix):
                continue
            hexd = member.name[len(prefix) :]
            if re.fullmatch(r"[0-9a-f]{64}", hexd) is None:
                raise IntegrityError(f"{member.name} is not named by a sha256", path=str(bundle))
            target = into / hexd
            hasher = hashlib.sha256()
            with member.stream() as src, target.open("wb") as out:
                while piece := src.read(1 << 20):
                    hasher.update(piece)
                    out.write(piece)
            if hasher.hexdigest() != hexd:
                raise IntegrityError(f"{member.name} does not hash to its name", path=str(bundle))
            found[f"sha256:{hexd}"] = target
    return found


def _push_tree(
    client: RegistryClient,
    repo: str,
    digest: str,
    blobs: dict[str, Path],
    done_in: dict[str, str],
    how: dict[str, int],
) -> None:
    """Push the manifest or index ``digest`` by digest, after everything it refers to."""
    path = blobs.get(digest)
    if path is None:
        raise IntegrityError(f"the pack's layout lacks {digest}")
    data = path.read_bytes()
    doc = json.loads(data)
    media = str(doc.get("mediaType"))
    if media == OCI_INDEX:
        for child in doc.get("manifests") or []:
            _push_tree(client, repo, str(child["digest"]), blobs, done_in, how)
    else:
        for desc in [doc["config"], *(doc.get("layers") or [])]:
            blob = str(desc["digest"])
            source = blobs.get(blob)
            if source is None:
                raise IntegrityError(f"the pack's layout lacks blob {blob}")
            mount = (done_in[blob],) if blob in done_in and done_in[blob] != repo else ()
            result = client.push_blob(repo, source, blob, source.stat().st_size, mount_from=mount)
            how[result.how] = how.get(result.how, 0) + 1
            done_in.setdefault(blob, repo)
    client.push_manifest(repo, data, media)


def fetch_image(home: Home, source: str, access: Access) -> str:
    """``docker://HOST/REPO[:TAG|@DIGEST]`` pulled into an OCI layout under the home, every manifest and blob
    checked against its digest (the registry's digest header is never believed); returns ``oci:DIR:REF``."""
    ref = oci_ref.parse(oci_ref.SCHEME + source.removeprefix(REGISTRY_SOURCE), what="image source")
    if not ref.repository:
        raise UsageError(f"{source} names no repository")
    reference = ref.digest or ref.tag or "latest"
    with access.client(ref) as client:
        body = client.get_manifest(ref.repository, reference)
        if body is None:
            raise BadInputError(f"the registry {ref.host} has no {ref.repository}:{reference}", path=source)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        layout = home.root / "bootstrap-fetch" / digest.removeprefix("sha256:")
        blobs = layout / "blobs" / "sha256"
        blobs.mkdir(parents=True, exist_ok=True)
        media = _fetch_tree(client, ref.repository, digest, body, blobs)
    entry = {"mediaType": media, "digest": digest, "size": len(body), "annotations": {REF_NAME: "image"}}
    write_bytes(layout / "oci-layout", OCI_LAYOUT_BYTES)
    write_bytes(
        layout / "index.json", canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]})
    )
    return f"{OCI_DIR}{layout}:image"


def _fetch_tree(client: RegistryClient, repo: str, digest: str, body: bytes, blobs: Path, depth: int = 0) -> str:
    if depth > 2:
        raise BadInputError(f"image indexes nest too deeply in {repo}")
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise BadInputError(f"manifest {digest} of {repo} is not JSON") from exc
    media = doc.get("mediaType") if isinstance(doc, dict) else None
    if media not in (OCI_MANIFEST, OCI_INDEX):
        raise BadInputError(f"{repo}@{digest} is a {media!r}, not an OCI image manifest or index")
    write_bytes(blobs / digest.removeprefix("sha256:"), body)
    if media == OCI_INDEX:
        for child in doc.get("manifests") or []:
            child_digest = str(child.get("digest"))
            if re.fullmatch(r"sha256:[0-9a-f]{64}", child_digest) is None:
                raise BadInputError(f"an entry of {repo}@{digest} has no sha256 digest")
            child_body = client.get_manifest(repo, child_digest)
            if child_body is None:
                raise IntegrityError(f"the registry lacks {child_digest}, listed by {repo}@{digest}")
            _fetch_tree(client, repo, child_digest, child_body, blobs, depth + 1)
        return OCI_INDEX
    for desc in [doc.get("config"), *(doc.get("layers") or [])]:
        if not isinstance(desc, dict) or re.fullmatch(r"sha256:[0-9a-f]{64}", str(desc.get("digest"))) is None:
            raise BadInputError(f"a descriptor of {repo}@{digest} has no sha256 digest")
        size = desc.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadInputError(f"a descriptor of {repo}@{digest} has no size")
        target = blobs / str(desc["digest"]).removeprefix("sha256:")
        if not target.is_file():
            client.pull_blob(repo, str(desc["digest"]), size, target)
    return OCI_MANIFEST
