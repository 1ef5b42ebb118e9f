"""``bootstrap:pack``: container images and Helm charts in one OCI image layout, inside a signed stella bundle.

Payload layout::

    bootstrap.json                 the pack manifest: every image and chart with its ref name, manifest digest,
                                   media type, size, platforms and source reference (canonical JSON)
    layout/oci-layout              {"imageLayoutVersion":"1.0.0"}
    layout/index.json              one entry per image and chart, named by org.opencontainers.image.ref.name
    layout/blobs/sha256/<hex>      every manifest, index, config and layer, each once

Inputs are not documents of the store but files named by a pack spec (``bootstrap.yaml``, see docs/bootstrap.md),
given as the run option ``spec`` (``stella bootstrap build SPEC``). Planning reads every image and chart once and
pins each one's manifest digest with its resolved source; the build reads them again and refuses (exit 4) any whose
digest changed since, so a retry rebuilds the same bytes or nothing. Every blob is checked against its digest and
size as it is copied. Charts are laid out as ``helm push`` lays them out (docs/bootstrap.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from adapters.oci.reference import valid_component, valid_tag
from adapters.oci.sources import Chart, Image, load_chart, open_image
from core.bundle import PayloadContext
from core.canonical import canonical_json
from core.contract.bootstrap import (
    DOCKER_ARCHIVE,
    HELM_CHART,
    HELM_CONFIG,
    LAYOUT_BLOBS,
    LAYOUT_INDEX,
    LAYOUT_MARKER,
    OCI_ARCHIVE,
    OCI_DIR,
    PACK_MANIFEST,
    PACK_SCHEMA,
    REGISTRY_SOURCE,
)
from core.contract.media_types import OCI_INDEX, OCI_MANIFEST
from core.contract.oci import ANNOTATION_REF_NAME as REF_NAME
from core.errors import BadInputError, IntegrityError, UsageError

OCI_LAYOUT_BYTES = b'{"imageLayoutVersion":"1.0.0"}'
MAX_SPEC = 1 << 20
PIECE = 1 << 20


def _check_name(name: Any, where: str) -> str:
    """``REPOSITORY:TAG`` as an image's ref name in the layout and its place under the registry prefix."""
    if not isinstance(name, str) or ":" not in name:
        raise BadInputError(f"image name {name!r} is not REPOSITORY:TAG", path=where)
    repo, _, tag = name.rpartition(":")
    if not all(valid_component(c) for c in repo.split("/")) or not valid_tag(tag):
        raise BadInputError(
            f"image name {name!r} is not REPOSITORY:TAG",
            path=where,
            hint="lowercase repository components separated by '/', and a tag of letters, digits, '_', '.', '-'",
        )
    return name


def read_spec(path: Path) -> dict[str, Any]:
    """The images and charts a pack spec names, their sources resolved against the spec's directory."""
    where = str(path)
    if not path.is_file():
        raise UsageError("no such pack spec file", path=where)
    raw = path.read_bytes()
    if len(raw) > MAX_SPEC:
        raise BadInputError(f"the pack spec is larger than {MAX_SPEC} bytes", path=where)
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise BadInputError(f"the pack spec is not YAML: {exc}", path=where) from exc
    if not isinstance(doc, dict) or set(doc) - {"images", "charts"}:
        raise BadInputError("a pack spec is a mapping with 'images' and 'charts' lists", path=where)
    base = path.parent.resolve()
    images, charts = [], []
    for i, item in enumerate(doc.get("images") or []):
        if not isinstance(item, dict) or set(item) - {"source", "name"} or not isinstance(item.get("source"), str):
            raise BadInputError(f"images[{i}] is not {{source, name}}", path=where)
        source = item["source"]
        if source.startswith(REGISTRY_SOURCE):
            images.append({"source": source, "resolved": source, "name": _check_name(item.get("name"), where)})
            continue
        if not source.startswith((OCI_ARCHIVE, DOCKER_ARCHIVE, OCI_DIR)):
            raise BadInputError(
                f"images[{i}] source {source!r} is not oci:DIR, oci-archive:FILE, docker-archive:FILE"
                " or docker://HOST/REPO[:TAG|@DIGEST]",
                path=where,
            )
        scheme, _, rest = source.partition(":")
        resolved = f"{scheme}:{rest if Path(rest).is_absolute() else base / rest}"
        images.append({"source": source, "resolved": resolved, "name": _check_name(item.get("name"), where)})
    for i, item in enumerate(doc.get("charts") or []):
        if not isinstance(item, dict) or set(item) != {"source"} or not isinstance(item["source"], str):
            raise BadInputError(f"charts[{i}] is not {{source}}", path=where)
        rest = item["source"]
        charts.append({"source": rest, "resolved": str(Path(rest) if Path(rest).is_absolute() else base / rest)})
    if not images and not charts:
        raise BadInputError("the pack spec names no image and no chart", path=where)
    return {"specSha256": hashlib.sha256(raw).hexdigest(), "images": images, "charts": charts}


def _chart_ref(chart: Chart, where: str) -> str:
    if not valid_component(chart.name):
        raise BadInputError(f"chart name {chart.name!r} cannot name a registry repository", path=where)
    return f"{chart.name}:{chart.tag}"


class BootstrapPack:
    """The ``bootstrap:pack`` profile."""

    kind = "bootstrap"
    variant = "pack"
    #: Encryption is refused: the layout is meant to be read by skopeo and pushed as it is.
    encrypted_prefixes: tuple[str, ...] | None = None

    def plan_options(self, requested: dict[str, Any], store: Any) -> dict[str, Any]:
        """Pin the spec's inputs: each image's and chart's manifest digest and resolved source."""
        unknown = sorted(set(requested) - {"spec", "fetched"})
        if unknown or "spec" not in requested:
            raise UsageError(
                "a bootstrap pack is built from a pack spec", hint="stella bootstrap build bootstrap.yaml --out PACK"
            )
        spec = read_spec(Path(str(requested["spec"])))
        names: set[str] = set()
        fetched: dict[str, str] = dict(requested.get("fetched") or {})
        for item in spec["images"]:
            if item["source"].startswith(REGISTRY_SOURCE):
                if item["source"] not in fetched:
                    raise UsageError(f"{item['source']} was not fetched", hint="stella bootstrap build fetches it")
                item["resolved"] = fetched[item["source"]]
            with open_image(item["resolved"], Path("/")) as image:
                item["digest"] = image.root["digest"]
            if item["name"] in names:
                raise BadInputError(f"two entries are named {item['name']}", path=str(requested["spec"]))
            names.add(item["name"])
        for item in spec["charts"]:
            chart = load_chart(Path(item["resolved"]))
            item["name"] = _chart_ref(chart, item["resolved"])
            item["digest"] = "sha256:" + hashlib.sha256(chart.manifest()).hexdigest()
            if item["name"] in names:
                raise BadInputError(f"two entries are named {item['name']}", path=str(requested["spec"]))
            names.add(item["name"])
        return {"spec": spec}

    def write_payload(self, ctx: PayloadContext) -> dict[str, int]:
        """Copy every pinned image and chart into ``layout/``, checking each blob; write the index and manifest."""
        if ctx.spec.options.get("encryptionRecipients") or ctx.spec.profile_config.get("encryptionRecipients"):
            raise UsageError("a bootstrap pack cannot be encrypted", hint="drop --recipient")
        spec = ctx.spec.options.get("spec")
        if not isinstance(spec, dict):
            raise UsageError("this run pins no pack spec", hint="stella bootstrap build bootstrap.yaml --out PACK")
        written: set[str] = set()
        entries: list[dict[str, Any]] = []
        index: list[dict[str, Any]] = []
        for item in spec["images"]:
            with open_image(item["resolved"], Path("/")) as image:
                self._changed(item, image.root["digest"])
                for digest, (size, opener) in sorted(image.blobs.items()):
                    if digest not in written:
                        with opener() as src:
                            self._copy(ctx, digest, size, src, item["source"])
                        written.add(digest)
                entries.append(self._image_entry(item, image))
                index.append(dict(image.root, annotations={REF_NAME: item["name"]}))
        for item in spec["charts"]:
            chart = load_chart(Path(item["resolved"]))
            manifest = chart.manifest()
            digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
            self._changed(item, digest)
            for data in (chart.config, chart.archive, manifest):
                blob = "sha256:" + hashlib.sha256(data).hexdigest()
                if blob not in written:
                    ctx.writer.add_bytes(f"{LAYOUT_BLOBS}/{blob.removeprefix('sha256:')}", data, _media(data, chart))
                    written.add(blob)
            entries.append(
                {
                    "type": "chart",
                    "refName": item["name"],
                    "chart": chart.name,
                    "version": chart.version,
                    "digest": digest,
                    "mediaType": OCI_MANIFEST,
                    "size": len(manifest),
                    "chartDigest": "sha256:" + hashlib.sha256(chart.archive).hexdigest(),
                    "source": item["source"],
                    "platforms": [],
                }
            )
            index.append(
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": digest,
                    "size": len(manifest),
                    "annotations": {REF_NAME: item["name"]},
                }
            )
        ctx.writer.add_bytes(LAYOUT_MARKER, OCI_LAYOUT_BYTES, "application/json")
        index.sort(key=lambda d: d["annotations"][REF_NAME])
        layout_index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}
        ctx.writer.add_bytes(LAYOUT_INDEX, canonical_json(layout_index), OCI_INDEX)
        entries.sort(key=lambda e: str(e["refName"]))
        manifest_doc = {
            "schema": PACK_SCHEMA,
            "tenant": ctx.spec.tenant,
            "runId": ctx.spec.run_id,
            "specSha256": spec["specSha256"],
            "entries": entries,
        }
        ctx.writer.add_bytes(PACK_MANIFEST, canonical_json(manifest_doc), "application/json")
        ctx.provenance_keep = set()
        ctx.extra_dependencies.extend(
            {"uri": e["source"], "digest": {"sha256": e["digest"].removeprefix("sha256:")}, "name": e["refName"]}
            for e in entries
        )
        return {
            "images": sum(1 for e in entries if e["type"] == "image"),
            "charts": sum(1 for e in entries if e["type"] == "chart"),
            "blobs": len(written),
        }

    @staticmethod
    def _changed(item: dict[str, Any], digest: str) -> None:
        if digest != item["digest"]:
            raise IntegrityError(
                f"{item['source']} changed since the run was planned ({item['digest']} then, {digest} now)",
                path=item["resolved"],
                hint="plan a new pack (stella bootstrap build) to take the current content",
            )

    @staticmethod
    def _copy(ctx: PayloadContext, digest: str, size: int, src: Any, source: str) -> None:
        with ctx.writer.content_addressed(LAYOUT_BLOBS, "", "application/octet-stream") as out:
            left = size + 1  # one byte more than announced reveals a longer blob
            while left > 0 and (piece := src.read(min(PIECE, left))):
                out.write(piece)
                left -= len(piece)
        got = "sha256:" + out.sha.hexdigest()
        if got != digest or out.size != size:
            raise IntegrityError(
                f"blob {digest} of {source} does not match its digest and size ({got}, {out.size} bytes)",
                path=source,
            )

    @staticmethod
    def _image_entry(item: dict[str, Any], image: Image) -> dict[str, Any]:
        return {
            "type": "image",
            "refName": item["name"],
            "digest": image.root["digest"],
            "mediaType": image.root["mediaType"],
            "size": image.root["size"],
            "source": item["source"],
            "platforms": image.platforms,
        }


def _media(data: bytes, chart: Chart) -> str:
    if data is chart.config:
        return HELM_CONFIG
    if data is chart.archive:
        return HELM_CHART
    return OCI_MANIFEST


PROFILE = BootstrapPack()
