"""The Offline Kit's documents: the volume manifest and the kit index, parsed once into frozen dataclasses.

Both are canonical JSON (RFC 8785). The **volume manifest** (``KIT-VOLUME.json``, signed by ``KIT-VOLUME.json.sig``)
says which kit a volume belongs to, which volume of how many it is, and lists every file on it with its size and
sha256; a file that is a bundle or a part of one also names the bundle, the part's number, the bundle's part count
and the part's byte offset in the bundle. It names the kit index's sha256 too, so the signature covers the index.
The **kit index** (``KIT-INDEX.json``, the same bytes on every volume) lists every volume and every bundle with its
size, sha256, kind and where each of its parts lies. :func:`parse_volume_manifest` and :func:`parse_kit_index` accept
nothing else: an unknown schema, a missing or mistyped field, an unsafe path or an inconsistent part list is refused
as bad input naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from core.canonical import canonical_json
from core.contract.kit import (
    DATA_DIR,
    INDEX_SCHEMA,
    KIT_INDEX,
    MAX_FILE_SIZE,
    PART_FILE,
    VOLUME_DIR,
    VOLUME_MANIFEST,
    VOLUME_SCHEMA,
    VOLUME_UNLISTED,
)
from core.errors import BadInputError

#: A bundle's name on the media: a plain file name that every file system of removable media stores as is.
BUNDLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,55}$")
#: A relative path on a volume: components of safe characters, no ``.`` or ``..``.
_COMPONENT = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,99}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")
_KIT_ID = re.compile(r"^[0-9a-f]{32}$")
#: At most this many volumes in a kit (``vol-01`` ... ``vol-99``) and parts of a bundle (``.part001`` ... ``.part999``).
MAX_VOLUMES = 99
MAX_PARTS = 999
#: Documents larger than this are refused before they are read.
MAX_DOCUMENT = 64 << 20


def part_path(name: str, part: int, parts: int) -> str:
    """Where part ``part`` of ``parts`` of bundle ``name`` lies on its volume (a whole bundle keeps its name)."""
    return DATA_DIR + (name if parts == 1 else PART_FILE.format(name=name, part=part))


def volume_dir_name(number: int) -> str:
    """The directory of volume ``number`` in an assembled kit: ``vol-01``."""
    return VOLUME_DIR.format(number=number)


def volume_label(kit_id: str, number: int) -> str:
    """The volume's label (the ISO 9660 volume id: at most 32 of A-Z, 0-9 and ``_``)."""
    return f"STELLA_KIT_{kit_id[:8].upper()}_V{number:02d}"


def safe_relative_path(path: str) -> bool:
    """True for a relative path of safe components (what a volume manifest may name)."""
    return bool(path) and len(path) <= 255 and all(_COMPONENT.match(c) for c in path.split("/"))


class _Reader:
    """Typed access to one JSON object of a kit document; every failure names the file and the JSON pointer."""

    def __init__(self, doc: Any, source: str, pointer: str = "") -> None:
        if not isinstance(doc, Mapping):
            raise BadInputError("expected a JSON object", path=source, pointer=pointer)
        self.doc = doc
        self.source = source
        self.pointer = pointer

    def fail(self, key: str, what: str) -> BadInputError:
        return BadInputError(what, path=self.source, pointer=f"{self.pointer}/{key}")

    def text(self, key: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self.doc.get(key)
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            raise self.fail(key, f"{key} must be a string" + (f" matching {pattern.pattern}" if pattern else ""))
        return value

    def number(self, key: str, low: int = 0, high: int = 1 << 62) -> int:
        value = self.doc.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(key, f"{key} must be an integer from {low} to {high}")
        return value

    def opt_text(self, key: str) -> str | None:
        value = self.doc.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"{key} must be a string or absent")
        return value

    def items(self, key: str) -> list[_Reader]:
        value = self.doc.get(key)
        if not isinstance(value, list):
            raise self.fail(key, f"{key} must be a list")
        return [_Reader(item, self.source, f"{self.pointer}/{key}/{i}") for i, item in enumerate(value)]

    def only(self, keys: set[str]) -> None:
        extra = set(self.doc) - keys
        if extra:
            raise BadInputError(f"unknown field {sorted(extra)[0]!r}", path=self.source, pointer=self.pointer)


def _load(data: bytes, source: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadInputError(f"not valid JSON: {exc}", path=source) from None


def _canonical_or_refuse(data: bytes, doc: Any, source: str) -> None:
    """Signed and hashed documents are canonical JSON: any other spelling of the same object is refused, so the
    bytes a signature covers are the only bytes that mean it."""
    if canonical_json(doc) != data:
        raise BadInputError("not canonical JSON (RFC 8785) as stella writes it", path=source)


@dataclass(frozen=True)
class VolumeFile:
    """One file on a volume: its path, size and sha256; for a bundle or a part of one, where it belongs."""

    path: str
    size: int
    sha256: str
    bundle: str | None = None
    part: int | None = None
    parts: int | None = None
    offset: int | None = None

    @property
    def is_part(self) -> bool:
        """True for a bundle (whole, as its one part) or a part of one."""
        return self.bundle is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "sha256": self.sha256, "size": self.size}
        if self.bundle is not None:
            out |= {"bundle": self.bundle, "offset": self.offset, "part": self.part, "parts": self.parts}
        return out

    @classmethod
    def from_reader(cls, r: _Reader) -> VolumeFile:
        r.only({"path", "sha256", "size", "bundle", "offset", "part", "parts"})
        path = r.text("path")
        if not safe_relative_path(path) or path in VOLUME_UNLISTED:
            raise r.fail("path", f"unsafe or reserved path {path!r}")
        entry = cls(path=path, size=r.number("size", 0, MAX_FILE_SIZE), sha256=r.text("sha256", _HEX))
        if "bundle" not in r.doc:
            return entry
        bundle = r.text("bundle", BUNDLE_NAME)
        parts = r.number("parts", 1, MAX_PARTS)
        part = r.number("part", 1, parts)
        if path != part_path(bundle, part, parts):
            raise r.fail("path", f"part {part} of {parts} of {bundle} must lie at {part_path(bundle, part, parts)}")
        return cls(path, entry.size, entry.sha256, bundle, part, parts, r.number("offset"))


@dataclass(frozen=True)
class VolumeManifest:
    """``KIT-VOLUME.json``: one volume of a kit and every file on it (sorted by path)."""

    kit_id: str
    volume: int
    volumes: int
    label: str
    created_at: str
    index_sha256: str
    index_size: int
    files: tuple[VolumeFile, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": VOLUME_SCHEMA,
            "kitId": self.kit_id,
            "volume": self.volume,
            "volumes": self.volumes,
            "label": self.label,
            "createdAt": self.created_at,
            "index": {"path": KIT_INDEX, "sha256": self.index_sha256, "size": self.index_size},
            "files": [f.to_dict() for f in self.files],
        }

    def to_bytes(self) -> bytes:
        """The canonical JSON bytes the signature covers."""
        return canonical_json(self.to_dict())

    @property
    def parts(self) -> tuple[VolumeFile, ...]:
        """The bundle files and parts on this volume."""
        return tuple(f for f in self.files if f.is_part)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = VOLUME_MANIFEST) -> VolumeManifest:
        doc = _load(data, source)
        r = _Reader(doc, source)
        r.only({"schema", "kitId", "volume", "volumes", "label", "createdAt", "index", "files"})
        if r.doc.get("schema") != VOLUME_SCHEMA:
            raise r.fail("schema", f"not an Offline Kit volume manifest (schema must be {VOLUME_SCHEMA})")
        _canonical_or_refuse(data, doc, source)
        kit_id = r.text("kitId", _KIT_ID)
        volumes = r.number("volumes", 1, MAX_VOLUMES)
        volume = r.number("volume", 1, volumes)
        index = _Reader(r.doc.get("index"), source, "/index")
        index.only({"path", "sha256", "size"})
        if index.text("path") != KIT_INDEX:
            raise index.fail("path", f"the kit index must be {KIT_INDEX}")
        files = tuple(VolumeFile.from_reader(f) for f in r.items("files"))
        paths = [f.path for f in files]
        if paths != sorted(set(paths)) or KIT_INDEX in paths:
            raise r.fail("files", "files must be sorted by path, each listed once, the kit index not among them")
        label = r.text("label")
        if label != volume_label(kit_id, volume):
            raise r.fail("label", f"the label of volume {volume} of kit {kit_id} is {volume_label(kit_id, volume)}")
        return cls(
            kit_id=kit_id,
            volume=volume,
            volumes=volumes,
            label=label,
            created_at=r.text("createdAt"),
            index_sha256=index.text("sha256", _HEX),
            index_size=index.number("size", 0, MAX_DOCUMENT),
            files=files,
        )


@dataclass(frozen=True)
class BundlePart:
    """Where one part of a bundle lies: its volume, path, byte offset in the bundle, size and sha256."""

    part: int
    volume: int
    path: str
    offset: int
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "part": self.part,
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "volume": self.volume,
        }


@dataclass(frozen=True)
class KitBundle:
    """One bundle of the kit: its name, size, sha256, what it is (profile, run, tenant) and its parts in order."""

    name: str
    size: int
    sha256: str
    profile: str
    run_id: str | None
    tenant: str | None
    parts: tuple[BundlePart, ...]

    @property
    def volumes(self) -> tuple[int, ...]:
        """The volumes this bundle's parts lie on, in order."""
        return tuple(sorted({p.volume for p in self.parts}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "parts": [p.to_dict() for p in self.parts],
            "profile": self.profile,
            "runId": self.run_id,
            "sha256": self.sha256,
            "size": self.size,
            "tenant": self.tenant,
        }

    @classmethod
    def from_reader(cls, r: _Reader, volumes: int) -> KitBundle:
        r.only({"name", "parts", "profile", "runId", "sha256", "size", "tenant"})
        name = r.text("name", BUNDLE_NAME)
        size = r.number("size")
        raw = r.items("parts")
        if not 1 <= len(raw) <= MAX_PARTS:
            raise r.fail("parts", f"a bundle has 1 to {MAX_PARTS} parts")
        parts = []
        offset = 0
        for number, p in enumerate(raw, start=1):
            p.only({"offset", "part", "path", "sha256", "size", "volume"})
            part = BundlePart(
                part=p.number("part", number, number),
                volume=p.number("volume", 1, volumes),
                path=p.text("path"),
                offset=p.number("offset", offset, offset),
                size=p.number("size", 0, MAX_FILE_SIZE),
                sha256=p.text("sha256", _HEX),
            )
            if part.path != part_path(name, number, len(raw)):
                raise p.fail("path", f"part {number} of {name} must lie at {part_path(name, number, len(raw))}")
            offset += part.size
            parts.append(part)
        if offset != size:
            raise r.fail("parts", f"the parts of {name} add up to {offset} bytes, not its size {size}")
        return cls(
            name=name,
            size=size,
            sha256=r.text("sha256", _HEX),
            profile=r.text("profile"),
            run_id=r.opt_text("runId"),
            tenant=r.opt_text("tenant"),
            parts=tuple(parts),
        )


@dataclass(frozen=True)
class KitVolume:
    """One volume as the index lists it: its number, label, how many files and bytes it holds."""

    volume: int
    label: str
    files: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "files": self.files, "label": self.label, "volume": self.volume}


@dataclass(frozen=True)
class KitIndex:
    """``KIT-INDEX.json``: the whole kit, every volume and every bundle with its parts."""

    kit_id: str
    created_at: str
    volume_size: int
    signer_keyid: str
    volumes: tuple[KitVolume, ...]
    bundles: tuple[KitBundle, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": INDEX_SCHEMA,
            "kitId": self.kit_id,
            "createdAt": self.created_at,
            "volumeSize": self.volume_size,
            "signer": {"keyid": self.signer_keyid},
            "volumes": [v.to_dict() for v in self.volumes],
            "bundles": [b.to_dict() for b in self.bundles],
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    def bundle(self, name: str) -> KitBundle:
        """The bundle called ``name`` (the manifest and the index were checked to agree on names)."""
        return next(b for b in self.bundles if b.name == name)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = KIT_INDEX) -> KitIndex:
        doc = _load(data, source)
        r = _Reader(doc, source)
        r.only({"schema", "kitId", "createdAt", "volumeSize", "signer", "volumes", "bundles"})
        if r.doc.get("schema") != INDEX_SCHEMA:
            raise r.fail("schema", f"not an Offline Kit index (schema must be {INDEX_SCHEMA})")
        _canonical_or_refuse(data, doc, source)
        kit_id = r.text("kitId", _KIT_ID)
        raw_volumes = r.items("volumes")
        if not 1 <= len(raw_volumes) <= MAX_VOLUMES:
            raise r.fail("volumes", f"a kit has 1 to {MAX_VOLUMES} volumes")
        volumes = []
        for number, v in enumerate(raw_volumes, start=1):
            v.only({"bytes", "files", "label", "volume"})
            volumes.append(
                KitVolume(v.number("volume", number, number), v.text("label"), v.number("files"), v.number("bytes"))
            )
            if volumes[-1].label != volume_label(kit_id, number):
                raise v.fail("label", f"volume {number} of kit {kit_id} is labelled {volume_label(kit_id, number)}")
        bundles = tuple(KitBundle.from_reader(b, len(volumes)) for b in r.items("bundles"))
        names = [b.name for b in bundles]
        if names != sorted(set(names)):
            raise r.fail("bundles", "bundles must be sorted by name, each listed once")
        signer = _Reader(r.doc.get("signer"), source, "/signer")
        signer.only({"keyid"})
        return cls(
            kit_id=kit_id,
            created_at=r.text("createdAt"),
            volume_size=r.number("volumeSize", 1),
            signer_keyid=signer.text("keyid"),
            volumes=tuple(volumes),
            bundles=bundles,
        )


def check_manifest_against_index(manifest: VolumeManifest, index: KitIndex, source: str) -> None:
    """The volume manifest and the kit index agree: same kit, same volume count, and this volume's parts are
    exactly the index's parts on this volume (path, size, sha256, offset)."""
    if index.kit_id != manifest.kit_id:
        raise BadInputError(f"the kit index is of kit {index.kit_id}, the volume of kit {manifest.kit_id}", path=source)
    if len(index.volumes) != manifest.volumes:
        raise BadInputError(
            f"the kit index lists {len(index.volumes)} volumes, the volume manifest says {manifest.volumes}",
            path=source,
        )
    expected = {
        p.path: (b.name, p.part, len(b.parts), p.offset, p.size, p.sha256)
        for b in index.bundles
        for p in b.parts
        if p.volume == manifest.volume
    }
    listed = {f.path: (f.bundle, f.part, f.parts, f.offset, f.size, f.sha256) for f in manifest.parts}
    if expected != listed:
        differ = sorted(set(expected.items()) ^ set(listed.items()))
        raise BadInputError(
            f"the volume manifest and the kit index disagree about {differ[0][0]}",
            path=source,
            hint="the volume was altered after it was signed, or mixes kits",
        )


def volume_sums(manifest: VolumeManifest, manifest_sha256: str) -> bytes:
    """``KIT-VOLUME.sha256``: the volume manifest's digest first, then the kit index's and every listed file's by
    path, in ``sha256sum -c`` form."""
    listed = [(KIT_INDEX, manifest.index_sha256)] + [(f.path, f.sha256) for f in manifest.files]
    lines = [f"{manifest_sha256}  {VOLUME_MANIFEST}\n"] + [f"{sha}  {path}\n" for path, sha in sorted(listed)]
    return "".join(lines).encode("ascii")
