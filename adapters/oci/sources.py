"""Reading container images and Helm charts for a bootstrap pack, trusting nothing in them.

Images come from an OCI image layout directory (``oci:DIR[:REF]``), an ``oci-archive:`` tar of one, or a
``docker-archive:`` tar (``docker save``: ``manifest.json`` plus uncompressed layers, turned into an OCI manifest).
Archives are read in place, never extracted: a member is found by its name, and a name that is absolute or climbs
with ``..`` refuses the archive (exit 3). Every manifest and blob is read against the digest and size that refer to
it; one that does not match, or is missing, is an integrity failure (exit 4).

Helm charts come from a chart ``.tgz`` or a chart directory, which is packed as ``helm package`` lays it out
(every path under ``<name>/``) but reproducibly: entries sorted, mtime 0, uid/gid 0, gzip mtime 0.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import posixpath
import re
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from core.canonical import canonical_json
from core.contract.bootstrap import (
    DOCKER_ARCHIVE_MANIFEST,
    HELM_CHART,
    HELM_CONFIG,
    OCI_IMAGE_CONFIG,
    OCI_LAYER_GZIP,
    OCI_LAYER_TAR,
)
from core.contract.media_types import OCI_INDEX, OCI_MANIFEST
from core.contract.oci import ANNOTATION_CREATED, ANNOTATION_TITLE
from core.contract.oci import ANNOTATION_REF_NAME as REF_NAME
from core.errors import BadInputError, IntegrityError

PIECE = 1 << 20
MAX_JSON = 4 << 20
MAX_CHART = 64 << 20
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_SEMVER = re.compile(
    r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
)  # Helm accepts a leading v (Masterminds/semver); strict SemVer otherwise
Opener = Callable[[], IO[bytes]]


@dataclass
class Image:
    """One image (a manifest or an index) with every blob it needs, each still to be read and checked."""

    source: str
    root: dict[str, Any]  # the descriptor of the manifest or index: mediaType, digest, size
    blobs: dict[str, tuple[int, Opener]] = field(default_factory=dict)  # digest -> size, opener
    platforms: list[dict[str, str]] = field(default_factory=list)


def _digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _check_descriptor(desc: Any, where: str) -> tuple[str, int, str]:
    if not isinstance(desc, dict):
        raise BadInputError("a descriptor is not an object", path=where)
    digest, size, media = desc.get("digest"), desc.get("size"), desc.get("mediaType")
    if not isinstance(digest, str) or _DIGEST.fullmatch(digest) is None:
        raise BadInputError(f"descriptor digest {digest!r} is not sha256:<64 hex>", path=where)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadInputError(f"descriptor size {size!r} of {digest} is not a byte count", path=where)
    if not isinstance(media, str) or not media:
        raise BadInputError(f"descriptor {digest} has no mediaType", path=where)
    return digest, size, media


class _Blobs:
    """Where an image's blobs are: ``blobs/sha256/<hex>`` of a layout directory or of an archive."""

    def __init__(self, where: str, find: Callable[[str], Opener | None]) -> None:
        self.where = where
        self._find = find

    def opener(self, digest: str) -> Opener:
        found = self._find(f"blobs/sha256/{digest.removeprefix('sha256:')}")
        if found is None:
            raise IntegrityError(f"blob {digest} is missing", path=self.where)
        return found

    def read_json(self, digest: str, size: int) -> tuple[bytes, Any]:
        if size > MAX_JSON:
            raise BadInputError(f"{digest} is larger than {MAX_JSON} bytes for a manifest or config", path=self.where)
        with self.opener(digest)() as fh:
            data = fh.read(size + 1)
        if len(data) != size or _digest_of(data) != digest:
            raise IntegrityError(f"blob {digest} does not match its digest and size", path=self.where)
        try:
            return data, json.loads(data)
        except ValueError as exc:
            raise BadInputError(f"{digest} is not JSON", path=self.where) from exc


class _Archive:
    """A tar read in place: regular members by normalised name; hostile names refuse the whole archive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.tar = tarfile.open(path, "r:*")  # noqa: SIM115 (closed by close())
        except (OSError, tarfile.TarError) as exc:
            raise BadInputError(f"not a readable tar archive: {exc}", path=str(path)) from exc
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in self.tar:
            name = _safe_name(member.name, path)
            if member.islnk() or member.issym():
                target = member.linkname if member.islnk() else posixpath.join(posixpath.dirname(name), member.linkname)
                if target.startswith("/") or ".." in posixpath.normpath(target).split("/"):
                    raise BadInputError(f"archive link {member.name!r} points outside the archive", path=str(path))
            if member.isfile() or member.islnk() or member.issym():
                self.members[name] = member

    def find(self, name: str) -> Opener | None:
        member = self.members.get(posixpath.normpath(name))
        if member is None:
            return None

        def opener() -> IO[bytes]:
            fh = self.tar.extractfile(member)  # follows links inside the archive
            if fh is None:
                raise IntegrityError(f"archive member {member.name!r} cannot be read", path=str(self.path))
            return fh

        return opener

    def close(self) -> None:
        self.tar.close()


def _safe_name(name: str, where: Path) -> str:
    norm = posixpath.normpath(name)
    if name.startswith("/") or norm == ".." or norm.startswith("../"):
        raise BadInputError(f"archive member {name!r} leaves the archive (path traversal)", path=str(where))
    return norm


def _dir_finder(root: Path) -> Callable[[str], Opener | None]:
    def find(name: str) -> Opener | None:
        path = root / name
        try:
            st = path.lstat()
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            raise BadInputError(f"{name} is not a regular file (symbolic links are refused)", path=str(root))
        return lambda: path.open("rb")

    return find


def _select(index: Any, ref: str | None, where: str) -> dict[str, Any]:
    """The entry of a layout's ``index.json`` named ``ref`` (its ref.name annotation), or its only entry."""
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise BadInputError("index.json is not an image index", path=where)
    entries = [m for m in index["manifests"] if isinstance(m, dict)]
    if ref is not None:
        entries = [m for m in entries if (m.get("annotations") or {}).get(REF_NAME) == ref]
        if not entries:
            raise BadInputError(f"the layout names no image {ref!r}", path=where)
    if len(entries) != 1:
        raise BadInputError(
            f"the layout holds {len(entries)} images; name one with :REF", path=where, hint="oci-archive:FILE:REF"
        )
    return entries[0]


def _collect(image: Image, blobs: _Blobs, desc: dict[str, Any], depth: int = 0) -> None:
    digest, size, media = _check_descriptor(desc, blobs.where)
    if depth > 2:
        raise BadInputError("image indexes nest too deeply", path=blobs.where)
    data, doc = blobs.read_json(digest, size)
    image.blobs[digest] = (size, lambda data=data: io.BytesIO(data))  # type: ignore[misc]
    kind = doc.get("mediaType", media) if isinstance(doc, dict) else None
    if kind == OCI_INDEX:
        for child in doc.get("manifests") or []:
            _collect(image, blobs, child, depth + 1)
            plat = child.get("platform") if isinstance(child, dict) else None
            if depth == 0 and isinstance(plat, dict):
                image.platforms.append({k: str(v) for k, v in plat.items() if k in ("os", "architecture", "variant")})
        return
    if kind != OCI_MANIFEST:
        raise BadInputError(f"{digest} is a {kind!r}, not an OCI image manifest or index", path=blobs.where)
    config = doc.get("config")
    c_digest, c_size, c_media = _check_descriptor(config, blobs.where)
    image.blobs[c_digest] = (c_size, blobs.opener(c_digest))
    if depth == 0 and c_media == OCI_IMAGE_CONFIG:
        _, conf = blobs.read_json(c_digest, c_size)
        if isinstance(conf, dict):
            image.platforms.append(
                {k: str(conf[k]) for k in ("os", "architecture", "variant") if isinstance(conf.get(k), str)}
            )
    for layer in doc.get("layers") or []:
        l_digest, l_size, _ = _check_descriptor(layer, blobs.where)
        image.blobs[l_digest] = (l_size, blobs.opener(l_digest))


def _split_ref(rest: str) -> tuple[str, str | None]:
    """``PATH[:REF]``: the REF (itself possibly ``NAME:TAG``) is what follows the first ':' before which a file or
    directory exists."""
    if Path(rest).exists():
        return rest, None
    at = rest.find(":")
    while at != -1:
        if Path(rest[:at]).exists():
            return rest[:at], rest[at + 1 :] or None
        at = rest.find(":", at + 1)
    return rest, None


@contextlib.contextmanager
def open_image(source: str, base: Path) -> Iterator[Image]:
    """The image ``source`` names (``oci:DIR[:REF]``, ``oci-archive:FILE[:REF]``, ``docker-archive:FILE[:REF]``),
    paths relative to ``base``; its blobs are readable until the context ends."""
    scheme, _, rest = source.partition(":")
    path_text, ref = _split_ref(str(base / rest) if not Path(rest).is_absolute() else rest)
    path = Path(path_text)
    if scheme == "oci":
        if not path.is_dir():
            raise BadInputError("not an OCI layout directory", path=str(path))
        blobs = _Blobs(str(path), _dir_finder(path))
        yield _from_layout(source, blobs, _dir_finder(path), ref)
        return
    if scheme not in ("oci-archive", "docker-archive"):
        raise BadInputError(
            f"unsupported image source {source!r}", hint="oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE"
        )
    if not path.is_file():
        raise BadInputError("no such image archive", path=str(path))
    archive = _Archive(path)
    try:
        if scheme == "oci-archive":
            yield _from_layout(source, _Blobs(str(path), archive.find), archive.find, ref)
        else:
            yield _from_docker(source, archive, ref)
    finally:
        archive.close()


def _from_layout(source: str, blobs: _Blobs, find: Callable[[str], Opener | None], ref: str | None) -> Image:
    opener = find("index.json")
    if opener is None:
        raise BadInputError("no index.json: not an OCI image layout", path=blobs.where)
    with opener() as fh:
        raw = fh.read(MAX_JSON + 1)
    try:
        index = json.loads(raw)
    except ValueError as exc:
        raise BadInputError("index.json is not JSON", path=blobs.where) from exc
    entry = _select(index, ref, blobs.where)
    desc: dict[str, Any] = {k: entry[k] for k in ("mediaType", "digest", "size") if k in entry}
    image = Image(source, desc)
    _collect(image, blobs, desc)
    return image


def _hash_member(opener: Opener) -> tuple[str, int, bool]:
    digest = hashlib.sha256()
    size = 0
    with opener() as fh:
        head = fh.read(2)
        gz = head == b"\x1f\x8b"
        digest.update(head)
        size += len(head)
        while piece := fh.read(PIECE):
            digest.update(piece)
            size += len(piece)
    return f"sha256:{digest.hexdigest()}", size, gz


def _from_docker(source: str, archive: _Archive, ref: str | None) -> Image:
    where = str(archive.path)
    opener = archive.find(DOCKER_ARCHIVE_MANIFEST)
    if opener is None:
        raise BadInputError("no manifest.json: not a docker-archive", path=where)
    with opener() as fh:
        try:
            entries = json.loads(fh.read(MAX_JSON + 1))
        except ValueError as exc:
            raise BadInputError("manifest.json is not JSON", path=where) from exc
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise BadInputError("manifest.json is not a list of images", path=where)
    if ref is not None:
        entries = [e for e in entries if ref in (e.get("RepoTags") or [])]
    if len(entries) != 1:
        raise BadInputError(f"the archive holds {len(entries)} matching images; name one with :REPO:TAG", path=where)
    entry = entries[0]
    config_name, layer_names = entry.get("Config"), entry.get("Layers")
    if not isinstance(config_name, str) or not isinstance(layer_names, list):
        raise BadInputError("manifest.json lacks Config or Layers", path=where)

    def member(name: Any) -> Opener:
        if not isinstance(name, str):
            raise BadInputError(f"manifest.json names {name!r}, not a path", path=where)
        _safe_name(name, archive.path)
        found = archive.find(name)
        if found is None:
            raise IntegrityError(f"manifest.json points at {name!r}, which the archive lacks", path=where)
        return found

    config_open = member(config_name)
    with config_open() as fh:
        config_bytes = fh.read(MAX_JSON + 1)
    try:
        config = json.loads(config_bytes)
        diff_ids = config["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadInputError(f"{config_name} is not an image config with rootfs.diff_ids", path=where) from exc
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layer_names):
        raise IntegrityError(
            f"{config_name} lists {len(diff_ids)} layers, manifest.json {len(layer_names)}", path=where
        )
    image = Image(source, {})
    layers = []
    for name, diff_id in zip(layer_names, diff_ids, strict=True):
        opener_l = member(name)
        digest, size, gz = _hash_member(opener_l)
        if not gz and digest != diff_id:
            raise IntegrityError(f"layer {name} does not match its diff_id {diff_id}", path=where)
        layers.append({"mediaType": OCI_LAYER_GZIP if gz else OCI_LAYER_TAR, "digest": digest, "size": size})
        image.blobs[digest] = (size, opener_l)
    config_digest = _digest_of(config_bytes)
    image.blobs[config_digest] = (len(config_bytes), lambda: io.BytesIO(config_bytes))
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_IMAGE_CONFIG, "digest": config_digest, "size": len(config_bytes)},
            "layers": layers,
        }
    )
    image.root = {"mediaType": OCI_MANIFEST, "digest": _digest_of(manifest), "size": len(manifest)}
    image.blobs[image.root["digest"]] = (len(manifest), lambda: io.BytesIO(manifest))
    image.platforms.append(
        {k: str(config[k]) for k in ("os", "architecture", "variant") if isinstance(config.get(k), str)}
    )
    return image


# -- Helm charts -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Chart:
    """A chart archive and what Helm puts beside it in a registry: the config and the manifest's annotations."""

    name: str
    version: str
    archive: bytes
    config: bytes
    annotations: dict[str, str]

    @property
    def tag(self) -> str:
        """Helm's tag for the version: SemVer build metadata's '+' is not allowed in a tag, so it becomes '_'."""
        return self.version.replace("+", "_")

    def manifest(self) -> bytes:
        return canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": HELM_CONFIG, "digest": _digest_of(self.config), "size": len(self.config)},
                "layers": [{"mediaType": HELM_CHART, "digest": _digest_of(self.archive), "size": len(self.archive)}],
                "annotations": self.annotations,
            }
        )


#: Helm's ``chart.Metadata`` fields in the order its ``json.Marshal`` writes them (all ``omitempty``).
_META_FIELDS = (
    "name", "home", "sources", "version", "description", "keywords", "maintainers", "icon", "apiVersion",
    "condition", "tags", "appVersion", "deprecated", "annotations", "kubeVersion", "dependencies", "type",
)  # fmt: skip
_MAINTAINER_FIELDS = ("name", "email", "url")
_DEPENDENCY_FIELDS = ("name", "version", "repository", "condition", "tags", "enabled", "import-values", "alias")


def _go_json(value: Any) -> str:
    """JSON as Go's ``encoding/json`` writes it: compact, HTML characters escaped, maps with sorted keys."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, esc in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, esc)
    return text


def _ordered(doc: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: doc[k] for k in fields if doc.get(k) not in (None, "", [], {}, False)}


def helm_config(meta: dict[str, Any]) -> bytes:
    """The config blob Helm pushes: ``json.Marshal`` of the chart's metadata."""
    out = _ordered(meta, _META_FIELDS)
    if "maintainers" in out:
        out["maintainers"] = [_ordered(m, _MAINTAINER_FIELDS) for m in out["maintainers"] if isinstance(m, dict)]
    if "dependencies" in out:
        out["dependencies"] = [_ordered(d, _DEPENDENCY_FIELDS) for d in out["dependencies"] if isinstance(d, dict)]
    if "annotations" in out:
        out["annotations"] = dict(sorted((str(k), str(v)) for k, v in out["annotations"].items()))
    return _go_json(out).encode()


def helm_annotations(meta: dict[str, Any], created: str) -> dict[str, str]:
    """The manifest annotations Helm's ``generateOCIAnnotations`` writes (empty values left out), then the chart's
    own annotations, which may not replace the title or the version."""
    out: dict[str, str] = {}
    sources = meta.get("sources") or []
    maintainers = [m for m in meta.get("maintainers") or [] if isinstance(m, dict)]
    authors = ", ".join(
        str(m.get("name", "")) + (f" ({m['email']})" if m.get("email") else "") for m in maintainers if m.get("name")
    )
    for key, value in (
        ("org.opencontainers.image.description", meta.get("description")),
        (ANNOTATION_TITLE, meta.get("name")),
        ("org.opencontainers.image.version", meta.get("version")),
        ("org.opencontainers.image.url", meta.get("home")),
        (ANNOTATION_CREATED, created),
        ("org.opencontainers.image.source", sources[0] if sources else None),
        ("org.opencontainers.image.authors", authors),
    ):
        if value:
            out[key] = str(value)
    immutable = {ANNOTATION_TITLE, "org.opencontainers.image.version"}
    for key, value in (meta.get("annotations") or {}).items():
        if str(key) not in immutable:
            out[str(key)] = str(value)
    return dict(sorted(out.items()))


def _chart_meta(text: bytes, where: str) -> dict[str, Any]:
    try:
        meta = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadInputError(f"Chart.yaml is not YAML: {exc}", path=where) from exc
    if not isinstance(meta, dict):
        raise BadInputError("Chart.yaml is not a mapping", path=where)
    name, version = meta.get("name"), meta.get("version")
    if not meta.get("apiVersion"):
        raise BadInputError("Chart.yaml has no apiVersion", path=where)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise BadInputError(f"Chart.yaml name {name!r} is not a chart name", path=where)
    if not isinstance(version, str) or _SEMVER.fullmatch(version) is None:
        raise BadInputError(f"Chart.yaml version {version!r} is not SemVer", path=where)
    if meta.get("type") not in (None, "", "application", "library"):
        raise BadInputError(f"Chart.yaml type {meta.get('type')!r} is not application or library", path=where)
    return meta


def _rfc3339(mtime: float) -> str:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(int(mtime), _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_chart(path: Path) -> Chart:
    """A chart from its ``.tgz`` (kept byte for byte) or its directory (packed reproducibly)."""
    if path.is_dir():
        archive = pack_chart_dir(path)
    elif path.is_file():
        if path.stat().st_size > MAX_CHART:
            raise BadInputError(f"a chart archive larger than {MAX_CHART} bytes", path=str(path))
        archive = path.read_bytes()
    else:
        raise BadInputError("no such chart file or directory", path=str(path))
    try:
        tar = tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz")  # noqa: SIM115 (closed below)
    except (OSError, tarfile.TarError) as exc:
        raise BadInputError(f"not a gzip tar chart archive: {exc}", path=str(path)) from exc
    with tar:
        members = list(tar)
        roots = set()
        for member in members:
            name = _safe_name(member.name, path)
            roots.add(name.split("/", 1)[0])
            if member.issym() or member.islnk():
                raise BadInputError(f"chart archive member {member.name!r} is a link", path=str(path))
        if len(roots) != 1:
            raise BadInputError(f"a chart archive has one top directory, not {sorted(roots)}", path=str(path))
        top = roots.pop()
        found = [m for m in members if posixpath.normpath(m.name) == f"{top}/Chart.yaml" and m.isfile()]
        if not found:
            raise BadInputError(f"no {top}/Chart.yaml in the chart archive", path=str(path))
        fh = tar.extractfile(found[0])
        assert fh is not None
        meta = _chart_meta(fh.read(MAX_JSON), str(path))
        created = _rfc3339(found[0].mtime)
    if meta["name"] != top:
        raise BadInputError(f"the chart {meta['name']!r} is packed under {top}/", path=str(path))
    return Chart(meta["name"], meta["version"], archive, helm_config(meta), helm_annotations(meta, created))


def pack_chart_dir(root: Path) -> bytes:
    """``helm package`` of ``root``, reproducibly: ``<name>/<path>`` entries sorted, mode 0644/0755, mtime 0."""
    chart_yaml = root / "Chart.yaml"
    if not chart_yaml.is_file() or chart_yaml.is_symlink():
        raise BadInputError("a chart directory has a regular Chart.yaml", path=str(root))
    meta = _chart_meta(chart_yaml.read_bytes(), str(chart_yaml))
    files: list[tuple[str, Path]] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            raise BadInputError(f"the chart holds a symbolic link: {rel}", path=str(root))
        if path.is_file():
            files.append((rel, path))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, path in files:
            info = tarfile.TarInfo(f"{meta['name']}/{rel}")
            data = path.read_bytes()
            info.size = len(data)
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="", compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()
