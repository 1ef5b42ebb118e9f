"""The mirror tree: what a mirror bundle carries and what a receiver's mirror directory holds.

A mirror state is a tree of plain files::

    manifests/state.json              the state: every other file with sha256 and size, the index segments in
                                      order, the base state it was derived from, counts (canonical JSON)
    data/raw/<sha256>.pack            raw documents byte-for-byte, concatenated; named by their own digest
    data/policy/<name>.jsonl.zst      policy snapshots and evaluated findings (canonical JSONL, zstd)
    indexes/<sha256>.jsonl.zst        an index segment: one line per document put or removed
    tuf/metadata/...                  TUF metadata whose targets are every file above (not part of the state)

Packs and segments are content-addressed and never change once written, so a delta ships only new packs
and one new segment, and a receiver keeps every unchanged file where it is. A segment line is either
``{"op": "put", ...document}`` (where the document lies: pack, offset, size; what it is: kind, format,
document id, media type; how to find it: subject, purls and, when it has some, its advisories' aliases) or
``{"op": "remove", "sha256": ...}``.
Reading the segments in order gives the live documents; a full bundle compacts them into one.

The state digest (sha256 of ``manifests/state.json``) names a state: a delta declares its base by it, an
import receipt records it, and the sender keeps a record of each state it built under that name.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
import zstandard

from core.canonical import canonical_json
from core.contract.mirror import ENCRYPTED_PREFIXES, STATE, STATE_SCHEMA
from core.errors import BadInputError, IntegrityError

#: A pack is closed once it reaches this size: bounded files for passphrase encryption and resumable copies.
PACK_LIMIT = 64 << 20
#: What encryption covers in a mirror bundle: documents and indexes. Manifests and TUF metadata stay readable.


@dataclass(frozen=True)
class StateFile:
    """One file of a mirror state."""

    path: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class MirrorState:
    """``manifests/state.json``: the complete description of one mirror state."""

    tenant: str
    run_id: str
    created_at: str
    sequence: int  # 0 for a full bundle, base + 1 for a delta
    base: str | None  # the state digest this one was derived from (None: a full bundle)
    segments: tuple[str, ...]
    files: tuple[StateFile, ...]  # sorted by path; every file but state.json itself
    counts: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": STATE_SCHEMA,
            "tenant": self.tenant,
            "runId": self.run_id,
            "createdAt": self.created_at,
            "sequence": self.sequence,
            "base": self.base,
            "segments": list(self.segments),
            "files": [f.to_dict() for f in self.files],
            "counts": dict(self.counts),
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @property
    def digest(self) -> str:
        """The state digest: sha256 of the canonical ``state.json`` bytes."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def file_map(self) -> dict[str, StateFile]:
        return {f.path: f for f in self.files}

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = STATE) -> MirrorState:
        """Parse and check a ``state.json``; its bytes must be canonical (the digest names exactly them)."""
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise BadInputError(f"mirror state is not JSON: {exc}", path=source) from None
        if not isinstance(doc, dict) or doc.get("schema") != STATE_SCHEMA:
            raise BadInputError("not a stella mirror state (schema)", path=source)
        try:
            files = tuple(StateFile(str(f["path"]), str(f["sha256"]), int(f["size"])) for f in doc["files"])
            state = cls(
                tenant=str(doc["tenant"]),
                run_id=str(doc["runId"]),
                created_at=str(doc["createdAt"]),
                sequence=int(doc["sequence"]),
                base=None if doc["base"] is None else str(doc["base"]),
                segments=tuple(str(s) for s in doc["segments"]),
                files=files,
                counts={str(k): int(v) for k, v in doc["counts"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadInputError(f"mirror state is malformed: {exc!r}", path=source) from None
        if state.to_bytes() != data:
            raise BadInputError("mirror state is not in canonical form", path=source)
        paths = [f.path for f in files]
        if paths != sorted(set(paths)) or STATE in paths:
            raise BadInputError("mirror state files are not sorted and unique", path=source)
        for path in paths:
            check_state_path(path, source)
        missing = [s for s in state.segments if s not in set(paths)]
        if missing:
            raise BadInputError(f"mirror state names segment {missing[0]} but does not list it", path=source)
        return state


def check_state_path(path: str, source: str = STATE) -> str:
    """Refuse a state path that is absolute, escapes the tree, or lies outside the mirror's directories."""
    pure = PurePosixPath(path)
    if (
        pure.is_absolute()
        or any(p in ("", ".", "..") for p in pure.parts)
        or str(pure) != path
        or "\\" in path
        or not path.startswith(ENCRYPTED_PREFIXES)  # the payload directories: data/ and indexes/
    ):
        raise BadInputError(f"unsafe or unexpected mirror path {path!r}", path=source)
    return path


@dataclass(frozen=True)
class IndexedDocument:
    """A document of the mirror: what it is, where its bytes lie, and the keys it is found by."""

    sha256: str
    kind: str
    format: str
    document_id: str
    media_type: str
    subject: str
    purls: tuple[str, ...]
    pack: str
    offset: int
    size: int
    #: Other ids of the document's advisories (CVE aliases of a GHSA or OSV advisory, for one), sorted; written
    #: only when there are some, so documents without aliases index exactly as before.
    aliases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "sha256": self.sha256,
            "kind": self.kind,
            "format": self.format,
            "documentId": self.document_id,
            "mediaType": self.media_type,
            "subject": self.subject,
            "purls": list(self.purls),
            "pack": self.pack,
            "offset": self.offset,
            "size": self.size,
        }
        if self.aliases:
            body["aliases"] = list(self.aliases)
        return body

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> IndexedDocument:
        return cls(
            sha256=str(doc["sha256"]),
            kind=str(doc["kind"]),
            format=str(doc["format"]),
            document_id=str(doc["documentId"]),
            media_type=str(doc["mediaType"]),
            subject=str(doc["subject"]),
            purls=tuple(map(str, doc["purls"])),
            pack=str(doc["pack"]),
            offset=int(doc["offset"]),
            size=int(doc["size"]),
            aliases=tuple(map(str, doc.get("aliases", ()))),
        )


def segment_bytes(puts: Iterable[IndexedDocument], removes: Iterable[str], level: int) -> bytes:
    """A segment: the removals (sorted), then the puts in the order given, as zstd canonical JSON Lines."""
    lines = io.BytesIO()
    for sha in sorted(removes):
        lines.write(canonical_json({"op": "remove", "sha256": sha}) + b"\n")
    for doc in puts:
        lines.write(canonical_json({"op": "put", **doc.to_dict()}) + b"\n")
    cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True, threads=0)
    return cctx.compress(lines.getbuffer())  # no copy of the lines: 200k documents are about 100 MB


def read_segment(path: Path) -> Iterator[dict[str, Any]]:
    """The lines of one segment file."""
    try:
        with path.open("rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as reader:
            text = io.BufferedReader(reader)
            for n, line in enumerate(text, start=1):
                try:
                    entry = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise BadInputError(f"index line {n} is not JSON", path=str(path)) from None
                if not isinstance(entry, dict) or entry.get("op") not in ("put", "remove"):
                    raise BadInputError(f"index line {n} is neither a put nor a remove", path=str(path))
                yield entry
    except zstandard.ZstdError as exc:
        raise BadInputError(f"index segment is not valid zstd: {exc}", path=str(path)) from None


def live_documents(tree: Path, state: MirrorState) -> dict[str, IndexedDocument]:
    """Every live document of the state at ``tree``, by sha256: its segments replayed in order."""
    docs: dict[str, IndexedDocument] = {}
    for segment in state.segments:
        for entry in read_segment(tree.joinpath(*PurePosixPath(segment).parts)):
            if entry["op"] == "remove":
                docs.pop(str(entry["sha256"]), None)
            else:
                try:
                    doc = IndexedDocument.from_dict(entry)
                except (KeyError, TypeError, ValueError) as exc:
                    raise BadInputError(f"index entry is malformed: {exc!r}", path=segment) from None
                docs[doc.sha256] = doc
    return docs


def load_state(tree: Path) -> MirrorState:
    """The state of the mirror tree at ``tree``."""
    path = tree / STATE
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"cannot read the mirror state: {exc.strerror}", path=str(path)) from None
    return MirrorState.from_bytes(data, source=str(path))


def query(
    tree: Path, *, document_id: str | None = None, purl: str | None = None, subject: str | None = None
) -> list[IndexedDocument]:
    """Live documents of the mirror at ``tree`` matching every given key (an advisory or document id, or one of
    its aliases, as `stella data show` resolves them; a package purl (with or without version), an SBOM subject),
    in (kind, document id, sha256) order."""
    state = load_state(tree)
    hits = []
    for doc in live_documents(tree, state).values():
        if document_id is not None and doc.document_id != document_id and document_id not in doc.aliases:
            continue
        if subject is not None and doc.subject != subject:
            continue
        if purl is not None and not any(p == purl or p.split("@", 1)[0] == purl for p in doc.purls):
            continue
        hits.append(doc)
    return sorted(hits, key=lambda d: (d.kind, d.document_id, d.sha256))


def read_document(tree: Path, doc: IndexedDocument) -> bytes:
    """The raw bytes of ``doc``, cut from its pack and checked against its digest."""
    path = tree.joinpath(*PurePosixPath(check_state_path(doc.pack)).parts)
    try:
        with path.open("rb") as fh:
            fh.seek(doc.offset)
            data = fh.read(doc.size)
    except OSError as exc:
        raise BadInputError(f"cannot read pack: {exc.strerror}", path=str(path)) from None
    if hashlib.sha256(data).hexdigest() != doc.sha256:
        raise IntegrityError(f"document {doc.document_id} does not match its digest in {doc.pack}", path=str(path))
    return data
