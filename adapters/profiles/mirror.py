"""``mirror:full`` and ``mirror:delta``: a mirror tree with TUF metadata, and the changes since a named base.

Payload (see ``core.mirror_layout`` for the tree)::

    manifests/state.json             the resulting mirror state
    data/raw/<sha256>.pack           new packs of raw documents (a delta: only documents the base lacks)
    data/policy/*.jsonl.zst          policy snapshots and findings (a delta: only when they changed)
    indexes/<sha256>.jsonl.zst       the index segment of this export (puts, and removals in a delta)
    tuf/metadata/N.root.json         every root version of the home's TUF repository
    tuf/metadata/V.targets.json      targets = every file of the resulting state (with carried-over files)
    tuf/metadata/V.snapshot.json, timestamp.json

A delta names its base by state digest in the signed manifest (``base``) and lists the files the receiver
drops (``mirror.removed``). Unchanged documents stay in the base's packs (content-addressed reuse), so a
delta's size follows what changed, not the store's size. A full bundle starts a new chain.

The sender keeps a record of each state it built (``HOME/mirror/states/<digest>.jsonl.zst``: the state and
its live documents) so that ``--base`` can name a run id, a ``state.json`` file or a receiver's import
receipt, and the delta can be computed without the base bundle at hand.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import zstandard
from packageurl import PackageURL
from tuf.api.metadata import TargetFile  # type: ignore[attr-defined]

from adapters.profiles._raw_content import Placement, layout_rows, scatter_contents
from adapters.profiles._records import Children, sorted_rows, stream
from adapters.profiles.json_policy import FINDINGS, SNAPSHOTS
from core.bundle import PayloadContext, ScatteredFile
from core.canonical import canonical_json
from core.clock import utcnow
from core.contract.json_raw import PACK_SUFFIX
from core.contract.media_types import MIRROR_PACK, MIRROR_SEGMENT, MIRROR_STATE, NDJSON_ZSTD
from core.contract.mirror import ENCRYPTED_PREFIXES, INDEX_DIR, POLICY_DIR, RAW_DIR, STATE, TUF_METADATA
from core.errors import BadInputError, EnvironmentFailure, NotFoundError, UsageError
from core.home import Home
from core.mirror_layout import (
    PACK_LIMIT,
    IndexedDocument,
    MirrorState,
    StateFile,
    segment_bytes,
)
from core.mirror_receipt import is_receipt, read_receipt
from core.runs import RunEngine, RunState
from core.store import Store
from core.trust import TrustStore
from core.tuf_home import TufHome
from core.tuf_repo import top_level_metadata

DOCUMENTS = """
SELECT r.sha256, r.kind, r.media_type, r.format, r.document_id, r.content, i.subject,
       (SELECT list(DISTINCT k.purl ORDER BY k.purl) FROM (
            SELECT purl FROM affected_packages a
             WHERE a.tenant = i.tenant AND a.document_sha256 = i.document_sha256 AND a.purl IS NOT NULL
            UNION SELECT '~' || ecosystem || '~' || name FROM affected_packages e
             WHERE e.tenant = i.tenant AND e.document_sha256 = i.document_sha256 AND e.purl IS NULL
               AND e.ecosystem IS NOT NULL
            UNION SELECT product_purl FROM vex_statements v
             WHERE v.tenant = i.tenant AND v.document_sha256 = i.document_sha256 AND v.product_purl IS NOT NULL
            UNION SELECT purl FROM sbom_components c
             WHERE c.tenant = i.tenant AND c.document_sha256 = i.document_sha256 AND c.purl IS NOT NULL
            UNION SELECT subject_purl FROM sbom_documents d
             WHERE d.tenant = i.tenant AND d.document_sha256 = i.document_sha256 AND d.subject_purl IS NOT NULL
        ) k) AS purls,
       (SELECT list(DISTINCT x.alias ORDER BY x.alias) FROM (
            SELECT unnest(a.aliases) AS alias FROM advisories a
             WHERE a.tenant = i.tenant AND a.document_sha256 = i.document_sha256
            UNION SELECT advisory_id FROM advisories b
             WHERE b.tenant = i.tenant AND b.document_sha256 = i.document_sha256
        ) x WHERE x.alias IS NOT NULL AND x.alias <> r.document_id) AS aliases
  FROM export_inputs i
  JOIN raw_documents r ON r.tenant = i.tenant AND r.sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.ordinal >= ? AND i.ordinal < ?
 ORDER BY i.ordinal
"""

#: The package URLs each input document names (``~ecosystem~name`` where an OSV package has no purl), one row per
#: (ordinal, value), by ordinal: the one-pass form of DOCUMENTS' ``purls`` (whose order ``_purls`` discards).
PURLS = """
SELECT DISTINCT i.ordinal, k.v
  FROM export_inputs i
  JOIN (SELECT tenant, document_sha256, purl AS v FROM affected_packages WHERE purl IS NOT NULL
        UNION ALL SELECT tenant, document_sha256, '~' || ecosystem || '~' || name FROM affected_packages
         WHERE purl IS NULL AND ecosystem IS NOT NULL
        UNION ALL SELECT tenant, document_sha256, product_purl FROM vex_statements WHERE product_purl IS NOT NULL
        UNION ALL SELECT tenant, document_sha256, purl FROM sbom_components WHERE purl IS NOT NULL
        UNION ALL SELECT tenant, document_sha256, subject_purl FROM sbom_documents WHERE subject_purl IS NOT NULL
       ) k ON k.tenant = i.tenant AND k.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.ordinal IN (SELECT unnest(?::INTEGER[]))
 ORDER BY 1, 2
"""

#: The aliases of each input document other than its own id, distinct and sorted: DOCUMENTS' ``aliases``.
ALIASES = """
SELECT DISTINCT i.ordinal, x.alias
  FROM export_inputs i
  JOIN raw_documents r ON r.tenant = i.tenant AND r.sha256 = i.document_sha256
  JOIN (SELECT tenant, document_sha256, unnest(aliases) AS alias FROM advisories
        UNION ALL SELECT tenant, document_sha256, advisory_id FROM advisories
       ) x ON x.tenant = i.tenant AND x.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.ordinal IN (SELECT unnest(?::INTEGER[]))
   AND x.alias IS NOT NULL AND x.alias <> r.document_id
 ORDER BY 1, 2
"""

#: OSV ecosystems and the purl type their packages have (https://github.com/package-url/purl-spec).
_PURL_TYPES = {
    "Go": "golang",
    "PyPI": "pypi",
    "npm": "npm",
    "Maven": "maven",
    "crates.io": "cargo",
    "RubyGems": "gem",
    "NuGet": "nuget",
    "Packagist": "composer",
    "Hex": "hex",
    "Pub": "pub",
    "SwiftURL": "swift",
}


@functools.lru_cache(maxsize=1 << 16)
def package_purl(ecosystem: str, name: str) -> str | None:
    """The versionless purl of an OSV (ecosystem, name), or None for an ecosystem purl does not name."""
    kind = _PURL_TYPES.get(ecosystem)
    if kind is None:
        return None
    if kind == "maven" and ":" in name:
        namespace, _, name = name.partition(":")
    elif "/" in name and kind in ("npm", "golang", "composer", "swift"):
        namespace, _, name = name.rpartition("/")
    else:
        namespace = None
    return str(PackageURL(type=kind, namespace=namespace, name=name).to_string())


def _purls(values: list[str]) -> list[str]:
    out = set()
    for value in values:
        if value.startswith("~"):
            ecosystem, _, name = value[1:].partition("~")
            purl = package_purl(ecosystem, name)
            if purl is not None:
                out.add(purl)
        else:
            out.add(value)
    return sorted(out)


_POLICY_FILES = (
    ("policy", f"{POLICY_DIR}/snapshots.jsonl.zst", SNAPSHOTS),
    ("findings", f"{POLICY_DIR}/findings.jsonl.zst", FINDINGS),
)


# -- the sender's state records ------------------------------------------------------------------


@dataclass(frozen=True)
class StateRecord:
    """A state this home built: the state and its live documents by sha256."""

    state: MirrorState
    documents: dict[str, IndexedDocument]

    @property
    def digest(self) -> str:
        return self.state.digest


class StateRecords:
    """``HOME/mirror/states``: every mirror state this home built, by digest; ``runs/`` maps run ids to them."""

    def __init__(self, home: Home) -> None:
        self.dir = home.root / "mirror" / "states"
        self.runs = home.root / "mirror" / "runs"

    def save(self, record: StateRecord) -> None:
        lines = io.BytesIO()
        lines.write(canonical_json({"state": record.state.to_dict()}) + b"\n")
        for sha in sorted(record.documents):
            lines.write(canonical_json(record.documents[sha].to_dict()) + b"\n")
        data = zstandard.ZstdCompressor(level=3).compress(lines.getbuffer())  # compressed without a copy
        path = self.dir / f"{record.digest}.jsonl.zst"
        run = self.runs / f"{record.state.run_id}.json"
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.runs.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
            run.write_text(json.dumps({"stateDigest": record.digest}) + "\n", encoding="utf-8")
        except OSError as exc:
            raise EnvironmentFailure(f"cannot record the mirror state: {exc.strerror}", path=str(path)) from exc

    def load(self, digest: str, *, documents: bool = True) -> StateRecord:
        """The state ``digest`` this home built, with its live documents (``documents=False``: the state alone,
        read from the record's first line without decoding the documents, which planning does not need)."""
        path = self.dir / f"{digest}.jsonl.zst"
        try:
            if not documents:
                with path.open("rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as reader:
                    first = io.BufferedReader(reader).readline()
                header = orjson.loads(first)
                state = MirrorState.from_bytes(canonical_json(header["state"]), source=str(path))
                return StateRecord(state, {})
            data = zstandard.ZstdDecompressor().decompress(path.read_bytes())
        except FileNotFoundError:
            raise NotFoundError(
                f"this home did not build mirror state {digest[:12]}",
                hint="a delta needs a base this home exported; build a mirror:full bundle to start a new chain",
            ) from None
        except (OSError, zstandard.ZstdError, orjson.JSONDecodeError) as exc:
            raise BadInputError(f"cannot read the mirror state record: {exc}", path=str(path)) from None
        lines = data.splitlines()
        header = orjson.loads(lines[0])
        state = MirrorState.from_bytes(canonical_json(header["state"]), source=str(path))
        docs = {d.sha256: d for d in (IndexedDocument.from_dict(orjson.loads(line)) for line in lines[1:])}
        return StateRecord(state, docs)

    def digest_of_run(self, bundle_run_id: str) -> str | None:
        path = self.runs / f"{bundle_run_id}.json"
        if not path.is_file():
            return None
        digest: str = json.loads(path.read_text(encoding="utf-8"))["stateDigest"]
        return digest


def resolve_base(store: Store, text: str) -> StateRecord:
    """The state named by ``--base``: a run id, a ``manifests/state.json`` file, or an import receipt (the state
    alone: its documents are read when the delta is built)."""
    records = StateRecords(store.home)
    path = Path(text).expanduser()
    if path.is_file():
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BadInputError(f"cannot read --base: {exc.strerror}", path=str(path)) from None
        if is_receipt(data):
            body = read_receipt(data, TrustStore(store.home).list(), source=str(path))
            return records.load(str(body["stateDigest"]), documents=False)
        state = MirrorState.from_bytes(data, source=str(path))
        return records.load(state.digest, documents=False)
    if not text.startswith("run-"):
        raise UsageError(f"--base {text!r} is neither a file nor a run id", hint="give a run id, state.json or receipt")
    run = RunEngine(store).get_run(text)
    if run.state is not RunState.SUCCEEDED:
        raise UsageError(f"run {text} is {run.state}, not succeeded: its bundle never shipped")
    digest = records.digest_of_run(run.bundle_run_id)
    if digest is None:
        raise UsageError(f"run {text} did not build a mirror state", hint="name a mirror:full or mirror:delta run")
    return records.load(digest, documents=False)


# -- the profile ---------------------------------------------------------------------------------


def _epoch(when: datetime) -> int:
    return int((when - datetime(1970, 1, 1)).total_seconds())


class Mirror:
    """The ``mirror:full`` and ``mirror:delta`` profiles."""

    kind = "mirror"
    encrypted_prefixes: tuple[str, ...] | None = ENCRYPTED_PREFIXES

    def __init__(self, variant: str) -> None:
        self.variant = variant

    def plan_options(self, requested: Mapping[str, Any], store: Store) -> dict[str, Any]:
        """Pin the delta's base (resolved to a state digest); check the home can sign TUF metadata."""
        unknown = sorted(set(requested) - {"base"})
        if unknown:
            raise UsageError(f"option {unknown[0]} does not apply to a mirror export")
        tuf = TufHome(store.home)
        tuf.config()
        base = requested.get("base")
        if self.variant == "full" and base:
            raise UsageError("--base applies to mirror:delta; a mirror:full bundle starts a new chain")
        if self.variant == "delta" and not base:
            raise UsageError("mirror:delta needs --base RUN_ID|STATE_JSON|RECEIPT", hint="the state the receiver has")
        record = resolve_base(store, str(base)) if base else None
        # TUF versions only go up, one export after another, and a retry must reuse its own: pin it now.
        version = tuf.next_version(utcnow())
        if record is None:
            return {"tufVersion": version}
        return {
            "tufVersion": version,
            "base": {
                "stateDigest": record.digest,
                "runId": record.state.run_id,
                "sequence": record.state.sequence,
            },
        }

    def write_payload(self, ctx: PayloadContext) -> dict[str, int]:
        spec = ctx.spec
        if ctx.home is None:
            raise UsageError("a mirror export needs the stella home (TUF keys, state records)")
        home = Home(ctx.home)
        tuf = TufHome(home)
        tuf_config = tuf.config()
        tuf_keys = tuf.keys()
        records = StateRecords(home)
        base_option = spec.options.get("base")
        if self.variant == "delta" and not base_option:
            raise UsageError("mirror:delta was planned without a base")
        base = records.load(base_option["stateDigest"]) if base_option else None
        if base is not None and base.state.tenant != spec.tenant:
            raise UsageError(f"the base state belongs to tenant {base.state.tenant!r}, not {spec.tenant!r}")
        level = spec.compression_level
        params = [spec.run_id, spec.tenant]

        live: dict[str, IndexedDocument] = {}
        added, seen = self._pack_documents(ctx, params, base, live)
        live.update((d.sha256, d) for d in added)
        removed_docs = sorted(set(base.documents) - seen) if base is not None else []

        base_files = base.state.file_map() if base is not None else {}
        files: dict[str, StateFile] = {e.path: StateFile(e.path, e.sha256, e.size) for e in ctx.writer.files.values()}
        for doc in live.values():
            if doc.pack not in files:
                files[doc.pack] = base_files[doc.pack]

        segments = list(base.state.segments) if base is not None else []
        if base is None or added or removed_docs:
            data = segment_bytes(added, removed_docs, level)
            entry = ctx.writer.add_bytes(
                f"{INDEX_DIR}/{hashlib.sha256(data).hexdigest()}.jsonl.zst", data, MIRROR_SEGMENT
            )
            segments.append(entry.path)
            files[entry.path] = StateFile(entry.path, entry.sha256, entry.size)
        for segment in segments:
            if segment not in files:
                files[segment] = base_files[segment]

        record_types = set(spec.profile_config.get("recordTypes", []))
        for record_type, path, sql in _POLICY_FILES:
            if record_type not in record_types:
                continue
            data = self._jsonl_zst(ctx, sql, params, level)
            sha = hashlib.sha256(data).hexdigest()
            old = base_files.get(path)
            if old is not None and old.sha256 == sha:
                files[path] = old
            else:
                entry = ctx.writer.add_bytes(path, data, NDJSON_ZSTD)
                files[path] = StateFile(path, entry.sha256, entry.size)

        counts: dict[str, int] = {"documents": len(live), "added": len(added), "removed": len(removed_docs)}
        for doc in live.values():
            counts[f"documents.{doc.kind}"] = counts.get(f"documents.{doc.kind}", 0) + 1
        state = MirrorState(
            tenant=spec.tenant,
            run_id=spec.run_id,
            created_at=spec.created_at_text,
            sequence=0 if base is None else base.state.sequence + 1,
            base=None if base is None else base.digest,
            segments=tuple(segments),
            files=tuple(files[p] for p in sorted(files)),
            counts=counts,
        )
        state_bytes = state.to_bytes()
        state_entry = ctx.writer.add_bytes(STATE, state_bytes, MIRROR_STATE)

        targets = {f.path: TargetFile(f.size, {"sha256": f.sha256}, f.path) for f in state.files}
        targets[STATE] = TargetFile(state_entry.size, {"sha256": state_entry.sha256}, STATE)
        version = int(spec.options.get("tufVersion") or _epoch(spec.created_at))
        roots = tuf.roots()
        for number, data in roots:
            ctx.writer.add_bytes(f"{TUF_METADATA}{number}.root.json", data, "application/json")
        root = tuf.latest_root().signed
        metadata = top_level_metadata(
            root,
            tuf_keys,
            targets,
            versions=(version, version, version),
            now=spec.created_at,
            expiries=tuf_config.expiries,
        )
        for name, data in metadata.items():
            ctx.writer.add_bytes(f"{TUF_METADATA}{name}", data, "application/json")

        removed_files = sorted(set(base_files) - set(files))
        ctx.extra_manifest["base"] = (
            None
            if base is None
            else {
                "stateDigest": base.digest,
                "runId": base.state.run_id,
                "sequence": base.state.sequence,
            }
        )
        ctx.extra_manifest["mirror"] = {
            "stateDigest": state.digest,
            "sequence": state.sequence,
            "removed": removed_files,
            "carried": sorted(p for p in files if p not in ctx.writer.files),
            "tuf": {
                "rootVersion": root.version,
                "targetsVersion": version,
                "snapshotVersion": version,
                "timestampVersion": version,
            },
        }
        if base is not None:
            # A delta's provenance names what it ships and the state it applies to, not every live document.
            ctx.provenance_keep = {d.sha256 for d in added}
            ctx.extra_dependencies.append(
                {
                    "uri": f"stella:mirror-state/{base.digest}",
                    "digest": {"sha256": base.digest},
                    "name": STATE,
                    "annotations": {"runId": base.state.run_id, "sequence": base.state.sequence},
                }
            )
        records.save(StateRecord(state, live))
        return counts

    @staticmethod
    def _pack_documents(
        ctx: PayloadContext, params: list[Any], base: StateRecord | None, live: dict[str, IndexedDocument]
    ) -> tuple[list[IndexedDocument], set[str]]:
        """Pack the documents the base lacks (all of them without a base), in input order; returns them and the
        digests of every input.

        One sorted pass over the inputs' sizes (no content) decides what is new and where it goes: documents the
        base holds are carried over from it and never read. Then the new documents' purls and aliases are read
        for them alone, and their contents are read once, in storage order, straight into their planned place in
        content-addressed packs of at most ``PACK_LIMIT`` bytes (cut where the in-order writer cut them).
        """
        cursor = ctx.query.cursor()
        try:
            fresh: list[tuple[Any, ...]] = []
            seen: set[str] = set()
            for row in layout_rows(cursor, params):
                sha = row[1]
                if sha in seen:
                    continue
                seen.add(sha)
                ctx.input_done(row[5])
                if base is not None and sha in base.documents:
                    live[sha] = base.documents[sha]
                    continue
                fresh.append(row)
            ordinals = [row[0] for row in fresh]
            purls = Children(sorted_rows(cursor, PURLS, [*params, ordinals]), 1)
            aliases = Children(sorted_rows(cursor, ALIASES, [*params, ordinals]), 1)
            placement = Placement()
            # Each new document as a tuple until its pack's name (its digest) is known: 200k of them are held.
            packs: list[list[tuple[Any, ...]]] = []
            sizes: list[int] = []
            for ordinal, sha, kind, media_type, fmt, document_id, size, subject, rowid in fresh:
                if not sizes or sizes[-1] >= PACK_LIMIT:
                    packs.append([])
                    sizes.append(0)
                found = aliases.get((ordinal,))
                packs[-1].append(
                    (
                        sha,
                        kind,
                        fmt,
                        document_id,
                        media_type,
                        subject or "",
                        tuple(_purls([r[1] for r in purls.get((ordinal,)) or ()])),
                        sizes[-1],
                        size,
                        tuple(r[1] for r in found) if found else (),
                    )
                )
                placement.place(rowid, sha, len(packs) - 1, sizes[-1], size)
                sizes[-1] += size
            del fresh
            added: list[IndexedDocument] = []
            with contextlib.ExitStack() as stack:
                files: list[ScatteredFile] = [
                    stack.enter_context(
                        ctx.writer.scattered_content_addressed(RAW_DIR, PACK_SUFFIX, MIRROR_PACK, size, tag=str(k))
                    )
                    for k, size in enumerate(sizes)
                ]
                scatter_contents(ctx, cursor, placement, files, only_placed=base is not None)
            for pack, docs in zip(files, packs, strict=True):
                assert pack.path is not None
                added.extend(
                    IndexedDocument(
                        sha256=sha,
                        kind=kind,
                        format=fmt,
                        document_id=document_id,
                        media_type=media_type,
                        subject=subject,
                        purls=purl_list,
                        pack=pack.path,
                        offset=offset,
                        size=size,
                        aliases=alias_list,
                    )
                    for sha, kind, fmt, document_id, media_type, subject, purl_list, offset, size, alias_list in docs
                )
            return added, seen
        finally:
            cursor.close()

    @staticmethod
    def _jsonl_zst(ctx: PayloadContext, sql: str, params: list[Any], level: int) -> bytes:
        out = io.BytesIO()
        for record in stream(ctx.query, sql, params):
            out.write(canonical_json(record) + b"\n")
        return zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True).compress(
            out.getvalue()
        )


FULL = Mirror("full")
DELTA = Mirror("delta")
