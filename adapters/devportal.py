"""Import of a developer-portal tree: static pages, OpenAPI specs, SDK archives and changelogs, all or nothing.

``import_portal`` walks a directory in path order and classifies every file (its *role*: page, openapi, sdk,
changelog or asset). Before a byte is written, every path is checked (relative, normalized, no link that leaves
the tree, no special file) and every OpenAPI description is validated against the official schema of its
version; the first problem refuses the whole import. Then, in one transaction, each file's bytes become a raw
document (kind ``devportal``; over 1 MiB in the blob directory), the canonical listing of the tree becomes one
more raw document (format ``devportal-tree``, its document id the portal's name), and ``devportal_assets`` /
``devportal_imports`` record which file sits where in which tree revision. A failure rolls all of it back.

The tree listing is what the ``devportal:offline`` profile builds from: it pins every file by digest, and raw
documents never change, so a run that pinned a tree rebuilds the same bytes whatever was imported since.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from adapters.sources.openapi import looks_like_openapi, validate_openapi
from core.archive.rules import unsafe_path_reason
from core.canonical import canonical_json
from core.clock import utcnow
from core.errors import BadInputError, EnvironmentFailure, IntegrityError, NotFoundError, UsageError
from core.progress import NullObserver, Observer
from core.records import DocumentKind, ParsedDocument
from core.store import BLOB_THRESHOLD, Store
from core.store.tables import RowBatch, StagedDocument
from core.tenants import DEFAULT_TENANT, validate_tenant

TREE_SCHEMA = "https://stellaops.dev/schemas/devportal-tree/v1"
TREE_FORMAT = "devportal-tree"
TREE_MEDIA_TYPE = "application/vnd.stellaops.devportal.tree+json"
FILE_FORMAT = "devportal"
OPENAPI_FORMAT = "openapi"
ROLES = ("page", "openapi", "sdk", "changelog", "asset")

MAX_FILES = 100_000
_CHUNK = 1 << 20
_BATCH = 200
_PORTAL_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_SDK_SUFFIXES = (".tar.gz", ".tgz", ".tar.zst", ".tar.xz", ".zip", ".whl", ".jar", ".nupkg", ".gem", ".crate")
_SDK_DIRS = {"sdk", "sdks"}
_CHANGELOG_NAME = re.compile(r"^(changelog|changes|history|news|release[-_]?notes)([._-].*)?$")
_CHANGELOG_DIRS = {"changelog", "changelogs", "release-notes", "releases"}
#: A fixed table rather than ``mimetypes``, whose answers depend on the machine's /etc/mime.types.
_MEDIA_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/xml",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/vnd.microsoft.icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".pdf": "application/pdf",
    ".tar.gz": "application/gzip",
    ".tgz": "application/gzip",
    ".tar.zst": "application/zstd",
    ".tar.xz": "application/x-xz",
    ".zip": "application/zip",
    ".whl": "application/zip",
    ".jar": "application/java-archive",
    ".nupkg": "application/zip",
    ".gem": "application/x-tar",
    ".crate": "application/gzip",
}


def validate_portal_name(name: str) -> str:
    """Portal names are short lower-case identifiers: letters, digits, '.', '_' and '-'."""
    if not _PORTAL_NAME.match(name):
        raise UsageError(
            f"invalid portal name {name!r}", hint="lower-case letters, digits, '.', '_' or '-' (at most 64)"
        )
    return name


def check_portal_path(rel: str, *, where: str) -> str:
    """Refuse a path that may not be part of a portal tree (it becomes a bundle path and a URL path)."""
    reason = unsafe_path_reason(rel)
    if reason is None and '"' in rel:
        reason = "contains a double quote"
    if reason is None:
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            reason = "is not valid UTF-8"
    if reason is not None:
        raise IntegrityError(f"unsafe path: {reason}", path=where, hint="rename the file; nothing was imported")
    return rel


def media_type_of(path: str) -> str:
    """The media type a portal file is stored and served with (by its name; unknown: octet-stream)."""
    lower = path.lower()
    for suffix in sorted(_MEDIA_TYPES, key=len, reverse=True):
        if lower.endswith(suffix):
            return _MEDIA_TYPES[suffix]
    return "application/octet-stream"


def role_of(path: str) -> str:
    """The role of a non-OpenAPI file: sdk, changelog, page or asset (OpenAPI specs are recognised by content)."""
    parts = path.lower().split("/")
    name = parts[-1]
    if name.endswith(_SDK_SUFFIXES) or (len(parts) > 1 and parts[0] in _SDK_DIRS):
        return "sdk"
    if _CHANGELOG_NAME.match(name) or (len(parts) > 1 and parts[0] in _CHANGELOG_DIRS):
        return "changelog"
    if name.endswith((".html", ".htm")):
        return "page"
    return "asset"


@dataclass(frozen=True)
class PortalFile:
    """One file of a portal tree as the tree listing records it."""

    path: str
    sha256: str
    size: int
    media_type: str
    role: str
    api_version: str | None = None  # openapi: the spec's openapi/swagger version

    def to_dict(self) -> dict[str, Any]:
        """The listing form (camelCase keys; ``apiVersion`` only for specs)."""
        out: dict[str, Any] = {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "mediaType": self.media_type,
            "role": self.role,
        }
        if self.api_version is not None:
            out["apiVersion"] = self.api_version
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str) -> PortalFile:
        """Read a listing entry back, with the same path rule the import applied."""
        try:
            entry = cls(
                path=str(data["path"]),
                sha256=str(data["sha256"]),
                size=int(data["size"]),
                media_type=str(data["mediaType"]),
                role=str(data["role"]),
                api_version=None if data.get("apiVersion") is None else str(data["apiVersion"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(f"malformed portal tree entry: {exc}", path=where) from None
        check_portal_path(entry.path, where=f"{where}: {entry.path}")
        if entry.role not in ROLES or not re.fullmatch(r"[0-9a-f]{64}", entry.sha256):
            raise BadInputError(f"malformed portal tree entry for {entry.path!r}", path=where)
        return entry


@dataclass(frozen=True)
class PortalTree:
    """A portal's files at one import: the tree listing and its digest (the tree's identity)."""

    portal: str
    files: tuple[PortalFile, ...]

    def document(self) -> bytes:
        """The canonical JSON listing stored as a raw document; no tenant, no time, so equal trees are equal bytes."""
        return canonical_json(
            {"schema": TREE_SCHEMA, "portal": self.portal, "files": [f.to_dict() for f in self.files]}
        )

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.document()).hexdigest()

    @classmethod
    def parse(cls, data: bytes, *, where: str) -> PortalTree:
        """Read a stored tree listing (as :meth:`document` writes it)."""
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise BadInputError(f"portal tree listing is not JSON: {exc}", path=where) from None
        if not isinstance(doc, dict) or doc.get("schema") != TREE_SCHEMA or not isinstance(doc.get("files"), list):
            raise BadInputError("not a devportal tree listing", path=where)
        portal = validate_portal_name(str(doc.get("portal", "")))
        files = tuple(PortalFile.from_dict(f, where=where) for f in doc["files"])
        return cls(portal, files)

    def counts(self) -> dict[str, int]:
        """Files per role, plus the total."""
        out = {role: 0 for role in ROLES}
        for f in self.files:
            out[f.role] += 1
        out["files"] = len(self.files)
        return out


@dataclass
class PortalImport:
    """What one ``stella devportal import`` did."""

    import_id: str
    tenant: str
    portal: str
    tree_sha256: str
    files: int
    imported: int = 0  # new raw documents
    duplicates: int = 0  # files whose bytes the tenant already held
    changed: bool = True  # False: the portal's current tree was already exactly this one
    counts: dict[str, int] = field(default_factory=dict)
    specs: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "importId": self.import_id,
            "tenant": self.tenant,
            "portal": self.portal,
            "tree": self.tree_sha256,
            "files": self.files,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "changed": self.changed,
            "counts": self.counts,
            "openapi": self.specs,
        }


@dataclass(frozen=True)
class _Found:
    rel: str
    source: Path  # the file to read (a link inside the tree: its target)


def _walk(root: Path) -> Iterator[_Found]:
    """Every file under ``root`` in sorted path order; unsafe paths, escaping links and special files refused."""
    real_root = Path(os.path.realpath(root))

    def visit(directory: Path, prefix: str) -> Iterator[_Found]:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise EnvironmentFailure(f"cannot list directory: {exc.strerror}", path=str(directory)) from exc
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            where = str(Path(entry.path))
            check_portal_path(rel, where=where)
            st = os.lstat(entry.path)
            if stat.S_ISLNK(st.st_mode):
                target = Path(os.path.realpath(entry.path))
                if target != real_root and real_root not in target.parents:
                    raise IntegrityError(
                        f"symbolic link escapes the portal tree (to {target})",
                        path=where,
                        hint="copy the file into the tree instead; nothing was imported",
                    )
                if not target.is_file():
                    raise IntegrityError(
                        "symbolic link to a directory or a missing file is not followed",
                        path=where,
                        hint="replace it with the files themselves; nothing was imported",
                    )
                yield _Found(rel, target)
            elif stat.S_ISDIR(st.st_mode):
                yield from visit(Path(entry.path), rel + "/")
            elif stat.S_ISREG(st.st_mode):
                yield _Found(rel, Path(entry.path))
            else:
                raise IntegrityError("not a regular file (device, socket or pipe)", path=where)

    yield from visit(root, "")


def _hash(path: Path) -> tuple[str, int, bytes]:
    """(sha256, size, first 4 KiB) of a file, streamed."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                if not head:
                    head = chunk[:4096]
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise EnvironmentFailure(f"cannot read: {exc.strerror}", path=str(path)) from exc
    return digest.hexdigest(), size, head


def scan_portal(root: Path, portal: str, *, sink: Observer | None = None) -> tuple[PortalTree, dict[str, Path]]:
    """Walk, classify and validate a portal tree without touching the store.

    Returns the tree and where each path's bytes are read from. Raises :class:`IntegrityError` (exit 4) for an
    unsafe path, an escaping link or a special file, and :class:`core.errors.SchemaError` /
    :class:`core.errors.UnsupportedFormatError` (exit 3) for an OpenAPI description that fails its schema.
    """
    progress = sink or NullObserver()
    if not root.is_dir():
        raise UsageError("not a directory", path=str(root), hint="give the root directory of the portal tree")
    files: list[PortalFile] = []
    sources: dict[str, Path] = {}
    progress.start("scan", None)
    for found in _walk(root):
        if len(files) >= MAX_FILES:
            raise BadInputError(f"the portal tree has more than {MAX_FILES} files", path=str(root))
        sha, size, head = _hash(found.source)
        where = str(root / found.rel)
        api_version: str | None = None
        if looks_like_openapi(found.rel, head):
            try:
                data = found.source.read_bytes()
            except OSError as exc:
                raise EnvironmentFailure(f"cannot read: {exc.strerror}", path=where) from exc
            if hashlib.sha256(data).hexdigest() != sha:
                raise EnvironmentFailure("file changed while it was being imported", path=where)
            spec = validate_openapi(where, data)
            role, media, api_version = "openapi", spec.media_type, spec.spec_version
        else:
            role, media = role_of(found.rel), media_type_of(found.rel)
        files.append(PortalFile(found.rel, sha, size, media, role, api_version))
        sources[found.rel] = found.source
        progress.advance(1, detail=found.rel)
    progress.finish("scan")
    if not files:
        raise BadInputError("the portal tree has no files", path=str(root))
    return PortalTree(portal, tuple(files)), sources


def current_tree_sha(store: Store, tenant: str, portal: str) -> str | None:
    """The digest of the portal's current tree (its latest import), or None if it was never imported."""
    row = store.conn.execute(
        "SELECT tree_sha256 FROM devportal_imports WHERE tenant = ? AND portal = ?"
        " ORDER BY imported_at DESC, import_id DESC LIMIT 1",
        [tenant, portal],
    ).fetchone()
    return None if row is None else str(row[0])


def list_portals(store: Store, tenant: str) -> list[dict[str, Any]]:
    """Every portal of ``tenant`` with its current tree, file count and last import time."""
    rows = store.conn.execute(
        "SELECT portal, tree_sha256, file_count, total_size, imported_at FROM ("
        " SELECT *, row_number() OVER (PARTITION BY portal ORDER BY imported_at DESC, import_id DESC) AS rn"
        " FROM devportal_imports WHERE tenant = ?) WHERE rn = 1 ORDER BY portal",
        [tenant],
    ).fetchall()
    return [
        {
            "portal": r[0],
            "tree": r[1],
            "files": int(r[2]),
            "size": int(r[3]),
            "importedAt": r[4].replace(microsecond=0).isoformat() + "Z",
        }
        for r in rows
    ]


def resolve_portal(store: Store, tenant: str, portal: str | None) -> tuple[str, str]:
    """(portal, current tree digest) for an export: the named portal, or the tenant's only one."""
    if portal is None:
        names = [p["portal"] for p in list_portals(store, tenant)]
        if len(names) != 1:
            raise UsageError(
                f"tenant {tenant!r} has {len(names)} portals" + (f" ({', '.join(names)})" if names else ""),
                hint="name one with --portal" if names else "import one with `stella devportal import DIR`",
            )
        portal = names[0]
    validate_portal_name(portal)
    tree = current_tree_sha(store, tenant, portal)
    if tree is None:
        raise NotFoundError(f"no portal {portal!r} in tenant {tenant!r}", hint="see `stella devportal list`")
    return portal, tree


def _parsed(fmt: str, media: str, document_id: str, portal: str, version: str | None) -> ParsedDocument:
    return ParsedDocument(
        format=fmt,
        kind=DocumentKind.DEVPORTAL,
        media_type=media,
        document_id=document_id,
        subject=portal,
        format_version=version,
    )


def import_portal(
    store: Store,
    root: Path,
    *,
    portal: str | None = None,
    tenant: str = DEFAULT_TENANT,
    sink: Observer | None = None,
) -> PortalImport:
    """Import the portal tree under ``root`` as portal ``portal`` (default: the directory's name), all or nothing."""
    tenant = validate_tenant(tenant)
    name = validate_portal_name(portal if portal is not None else root.resolve().name.lower())
    progress = sink or NullObserver()
    started = utcnow()
    tree, sources = scan_portal(root, name, sink=progress)
    listing = tree.document()
    tree_sha = hashlib.sha256(listing).hexdigest()
    result = PortalImport(str(uuid.uuid4()), tenant, name, tree_sha, len(tree.files), counts=tree.counts())
    result.specs = [
        {"path": f.path, "openapi": f.api_version or "", "mediaType": f.media_type}
        for f in tree.files
        if f.role == "openapi"
    ]
    result.changed = current_tree_sha(store, tenant, name) != tree_sha
    existing = store.existing_digests(tenant, {f.sha256 for f in tree.files} | {tree_sha})
    now = utcnow()
    new_blobs: list[str] = []
    progress.start("store", len(tree.files))
    try:
        with store.transaction() as conn:
            seen = set(existing)
            batch = RowBatch()
            for f in tree.files:
                if f.sha256 in seen:
                    result.duplicates += 1
                    continue
                seen.add(f.sha256)
                data = _read_checked(sources[f.path], f, root)
                big = len(data) > BLOB_THRESHOLD
                if big and store.put_blob(f.sha256, data):
                    new_blobs.append(f.sha256)
                fmt = OPENAPI_FORMAT if f.role == "openapi" else FILE_FORMAT
                doc = _parsed(fmt, f.media_type, f"{name}:{f.path}", name, f.api_version)
                batch.add(tenant, StagedDocument(f.sha256, f.size, str(root / f.path), doc, None if big else data), now)
                result.imported += 1
                progress.advance(1, detail=f.path)
                if len(batch) >= _BATCH:
                    store.write_batch(batch)
                    batch = RowBatch()
            if tree_sha not in seen:
                doc = _parsed(TREE_FORMAT, TREE_MEDIA_TYPE, name, name, "1")
                batch.add(tenant, StagedDocument(tree_sha, len(listing), str(root), doc, listing), now)
                result.imported += 1
            store.write_batch(batch)
            if result.changed:
                _record_tree(conn, tenant, tree, tree_sha, result.import_id, now)
            conn.execute(
                "INSERT INTO import_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [tenant, result.import_id, started, utcnow(), result.imported, result.duplicates, 0, [str(root)]],
            )
    except BaseException:
        for sha in new_blobs:
            store.remove_blob(sha)
        raise
    progress.finish("store")
    return result


def _read_checked(source: Path, f: PortalFile, root: Path) -> bytes:
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise EnvironmentFailure(f"cannot read: {exc.strerror}", path=str(root / f.path)) from exc
    if len(data) != f.size or hashlib.sha256(data).hexdigest() != f.sha256:
        raise EnvironmentFailure(
            "file changed while it was being imported", path=str(root / f.path), hint="import it again"
        )
    return data


def _record_tree(conn: Any, tenant: str, tree: PortalTree, tree_sha: str, import_id: str, now: datetime) -> None:
    known = conn.execute(
        "SELECT count(*) FROM devportal_assets WHERE tenant = ? AND portal = ? AND tree_sha256 = ?",
        [tenant, tree.portal, tree_sha],
    ).fetchone()
    if not known or not known[0]:
        conn.executemany(
            "INSERT INTO devportal_assets (tenant, portal, tree_sha256, path, sha256, size, media_type, role,"
            " api_version, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [tenant, tree.portal, tree_sha, f.path, f.sha256, f.size, f.media_type, f.role, f.api_version, now]
                for f in tree.files
            ],
        )
    conn.execute(
        "INSERT INTO devportal_imports VALUES (?, ?, ?, ?, ?, ?, ?)",
        [tenant, tree.portal, tree_sha, import_id, now, len(tree.files), sum(f.size for f in tree.files)],
    )
