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

The sender keeps a record of each state it built (``HOME/mirror/states/<digest>.arrow``: the state, and its
live documents or, for a delta, what it put and removed beside its base's record) so that ``--base`` can name a
run id, a ``state.json`` file or a receiver's import receipt, and the delta can be computed without the base bundle
at hand. A delta run pins only the documents its base lacks (and the removals, as a run option): planning compares
the selection with the base's live documents in the store, so neither planning nor building reads, pins or records
the documents that did not change.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc
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
from core.planner import Narrowing
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

#: A record's columns: one row per live document (a full record), or per document a delta put or removed (a chained
#: record). Only what a later delta needs: which documents are live, their kinds (the counts) and packs (the files).
_WORDS = pa.dictionary(pa.int32(), pa.string())
RECORD_SCHEMA = pa.schema([("op", _WORDS), ("sha256", pa.string()), ("kind", _WORDS), ("pack", _WORDS)])
#: The schema metadata key holding a record's header: the state, and the base record it chains from.
_HEADER = b"stella.mirror-record"
#: A chained record is compacted into a full one past this many records since the last full one, or once its chain
#: holds more rows than a quarter of the live documents: loading a base reads at most that much beyond a full record.
MAX_CHAIN = 16
#: The live documents a delta's planning read, held for its build (records never change once written).
_HELD: dict[str, LiveDocuments] = {}


@dataclass(frozen=True)
class StateRecord:
    """A state this home built, as its record's header tells: the state and, for a chained record, the record it
    extends (``chain_base``), how many chained records lead back to a full one (``depth``) and their rows."""

    state: MirrorState
    chain_base: str | None = None
    depth: int = 0
    chain_rows: int = 0

    @property
    def digest(self) -> str:
        return self.state.digest


def _words(values: list[str | None]) -> pa.Array:
    return pa.array(values, pa.string()).dictionary_encode()


def record_rows(ops: list[str], shas: list[str], kinds: list[str | None], packs: list[str | None]) -> pa.Table:
    """Rows of a record (op, sha256, kind, pack), as it stores them."""
    return pa.table(
        [_words(list(ops)), pa.array(shas, pa.string()), _words(kinds), _words(packs)], schema=RECORD_SCHEMA
    )


def live_table(shas: list[str], kinds: list[str], packs: list[str]) -> pa.Table:
    """A full record's rows: every live document put."""
    return record_rows(["put"] * len(shas), shas, list(kinds), list(packs))


@dataclass(frozen=True)
class LiveDocuments:
    """A state's live documents as its records list them: a full record's rows, less the documents that the chained
    records after it put or removed, plus those they put (``changes``: each such document's last put or removal)."""

    full: pa.Table
    changes: pa.Table

    def register(self, cursor: Any, name: str) -> None:
        """Make ``name`` a view of the live documents (sha256, kind, pack) on ``cursor``: resolved in the store."""
        cursor.register(f"{name}_full", self.full)
        cursor.register(f"{name}_changes", self.changes)
        cursor.execute(
            f"CREATE OR REPLACE TEMP VIEW {name} AS"
            f" SELECT sha256, kind, pack FROM {name}_full"
            f"  WHERE sha256 NOT IN (SELECT sha256 FROM {name}_changes)"
            f" UNION ALL SELECT sha256, kind, pack FROM {name}_changes WHERE op = 'put'"
        )

    def table(self) -> pa.Table:
        """The live documents as a full record's rows."""
        if not self.changes.num_rows:
            return self.full
        touched = pc.is_in(self.full["sha256"], value_set=self.changes["sha256"].combine_chunks())
        puts = self.changes.filter(pc.equal(self.changes["op"].cast(pa.string()), "put"))
        return pa.concat_tables([self.full.filter(pc.invert(touched)), puts]).combine_chunks()


class StateRecords:
    """``HOME/mirror/states``: every mirror state this home built, by digest; ``runs/`` maps run ids to them.

    A record (``<digest>.arrow``, an Arrow IPC file) lists the state's live documents (sha256, kind, pack), or, for
    a delta, only what it put and removed beside the record of its base (a chain, compacted past :data:`MAX_CHAIN`),
    so that a delta reads and writes what changed, not the whole store. The state itself is in the header. Records
    of earlier versions (``<digest>.jsonl.zst``: the state, then every live document) are read as full records.
    """

    def __init__(self, home: Home) -> None:
        self.dir = home.root / "mirror" / "states"
        self.runs = home.root / "mirror" / "runs"

    def save(self, state: MirrorState, rows: pa.Table, base: StateRecord | None = None) -> None:
        """Record ``state`` with ``rows``: every live document (``base`` None), or what a delta put and removed
        beside ``base``'s record."""
        chain = None
        if base is not None:
            chain = {"base": base.digest, "depth": base.depth + 1, "rows": base.chain_rows + rows.num_rows}
        header = {"version": 2, "state": state.to_dict(), "chain": chain}
        table = rows.replace_schema_metadata({_HEADER: orjson.dumps(header)})
        path = self.dir / f"{state.digest}.arrow"
        run = self.runs / f"{state.run_id}.json"
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.runs.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_suffix(".tmp")
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            tmp.replace(path)
            run.write_text(json.dumps({"stateDigest": state.digest}) + "\n", encoding="utf-8")
        except OSError as exc:
            raise EnvironmentFailure(f"cannot record the mirror state: {exc.strerror}", path=str(path)) from exc

    def save_delta(
        self, state: MirrorState, base: StateRecord, removed: list[str], added: list[IndexedDocument]
    ) -> None:
        """Record a delta's state: chained to its base's record, or compacted into a full record past the bound."""
        none: list[str | None] = [None] * len(removed)
        rows = record_rows(
            ["remove"] * len(removed) + ["put"] * len(added),
            removed + [d.sha256 for d in added],
            none + [d.kind for d in added],
            none + [d.pack for d in added],
        )
        documents = int(state.counts.get("documents", 0))
        if base.depth + 1 <= MAX_CHAIN and (base.chain_rows + rows.num_rows) * 4 <= documents:
            self.save(state, rows, base)
            return
        live = self.live(base.digest).table()
        if removed:
            live = live.filter(pc.invert(pc.is_in(live["sha256"], value_set=pa.array(removed, pa.string()))))
        puts = live_table([d.sha256 for d in added], [d.kind for d in added], [d.pack for d in added])
        self.save(state, pa.concat_tables([live, puts]).combine_chunks())

    def load(self, digest: str) -> StateRecord:
        """The header of the record of state ``digest``: the state, and what its record chains from."""
        return self._read(digest, rows=False)[0]

    def live(self, digest: str, *, keep: bool = False) -> LiveDocuments:
        """Every live document of state ``digest``: its full record, and what the chained records after it changed.

        ``keep`` holds them for the next call (a delta's planning, for its build in the same process); a call
        without it takes what is held and holds nothing."""
        path = str(self.dir / digest)
        live = _HELD.pop(path, None)
        if live is None:
            live = self._resolve(digest)
        if keep:
            _HELD.clear()
            _HELD[path] = live
        return live

    def _resolve(self, digest: str) -> LiveDocuments:
        chained: list[pa.Table] = []
        record, rows = self._read(digest, rows=True)
        while record.chain_base is not None:
            chained.append(rows)
            record, rows = self._read(record.chain_base, rows=True)
        latest: dict[str, tuple[str, str | None, str | None]] = {}
        for table in reversed(chained):  # oldest first: a later put or removal wins
            columns = [table[name].to_pylist() for name in ("op", "sha256", "kind", "pack")]
            for op, sha, kind, pack in zip(*columns, strict=True):
                latest[sha] = (op, kind, pack)
        changes = record_rows(
            [v[0] for v in latest.values()],
            list(latest),
            [v[1] for v in latest.values()],
            [v[2] for v in latest.values()],
        )
        return LiveDocuments(rows, changes)

    def _read(self, digest: str, *, rows: bool) -> tuple[StateRecord, pa.Table]:
        path = self.dir / f"{digest}.arrow"
        if not path.is_file() and (self.dir / f"{digest}.jsonl.zst").is_file():
            return self._read_v1(digest, rows=rows)
        try:
            # Mapped, not read: the columns are the file's pages (the map lives as long as the table).
            reader = pa.ipc.open_file(pa.memory_map(str(path)))
            header = orjson.loads(reader.schema.metadata[_HEADER])
            table = reader.read_all() if rows else RECORD_SCHEMA.empty_table()
        except FileNotFoundError:
            raise NotFoundError(
                f"this home did not build mirror state {digest[:12]}",
                hint="a delta needs a base this home exported; build a mirror:full bundle to start a new chain",
            ) from None
        except (OSError, pa.ArrowException, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            raise BadInputError(f"cannot read the mirror state record: {exc}", path=str(path)) from None
        state = MirrorState.from_bytes(canonical_json(header["state"]), source=str(path))
        chain = header.get("chain")
        if chain is None:
            return StateRecord(state), table
        return StateRecord(state, str(chain["base"]), int(chain["depth"]), int(chain["rows"])), table

    def _read_v1(self, digest: str, *, rows: bool) -> tuple[StateRecord, pa.Table]:
        """A record of the first format: the state on the first line, then every live document (JSON Lines)."""
        path = self.dir / f"{digest}.jsonl.zst"
        try:
            with path.open("rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as reader:
                if not rows:
                    first, body = io.BufferedReader(reader).readline(), b""
                else:
                    data = reader.read()
                    end = data.find(b"\n") + 1 or len(data)
                    first, body = data[:end], data[end:]
            header = orjson.loads(first)
            state = MirrorState.from_bytes(canonical_json(header["state"]), source=str(path))
            docs = [orjson.loads(line) for line in body.splitlines()]
        except (OSError, zstandard.ZstdError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise BadInputError(f"cannot read the mirror state record: {exc}", path=str(path)) from None
        try:
            table = live_table(
                [str(d["sha256"]) for d in docs], [str(d["kind"]) for d in docs], [str(d["pack"]) for d in docs]
            )
        except (KeyError, TypeError) as exc:
            raise BadInputError(f"mirror state record is malformed: {exc!r}", path=str(path)) from None
        return StateRecord(state), table

    def digest_of_run(self, bundle_run_id: str) -> str | None:
        path = self.runs / f"{bundle_run_id}.json"
        if not path.is_file():
            return None
        digest: str = json.loads(path.read_text(encoding="utf-8"))["stateDigest"]
        return digest


def resolve_base(store: Store, text: str) -> StateRecord:
    """The state named by ``--base``: a run id, a ``manifests/state.json`` file, or an import receipt (its record's
    header: the live documents are read when the delta is planned and built)."""
    records = StateRecords(store.home)
    path = Path(text).expanduser()
    if path.is_file():
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BadInputError(f"cannot read --base: {exc.strerror}", path=str(path)) from None
        if is_receipt(data):
            body = read_receipt(data, TrustStore(store.home).list(), source=str(path))
            return records.load(str(body["stateDigest"]))
        state = MirrorState.from_bytes(data, source=str(path))
        return records.load(state.digest)
    if not text.startswith("run-"):
        raise UsageError(f"--base {text!r} is neither a file nor a run id", hint="give a run id, state.json or receipt")
    run = RunEngine(store).get_run(text)
    if run.state is not RunState.SUCCEEDED:
        raise UsageError(f"run {text} is {run.state}, not succeeded: its bundle never shipped")
    digest = records.digest_of_run(run.bundle_run_id)
    if digest is None:
        raise UsageError(f"run {text} did not build a mirror state", hint="name a mirror:full or mirror:delta run")
    return records.load(digest)


# -- the profile ---------------------------------------------------------------------------------

#: The base state's live documents (sha256), registered on a cursor beside the store's tables.
_BASE = "mirror_base_live"
#: The selection a delta is planned over, held for the planning transaction.
_SELECTION = "mirror_delta_selection"

#: A delta's new documents: the run's inputs its base lacks, laid out as ``layout_rows`` lays out every input.
FRESH_LAYOUT = f"""
SELECT i.ordinal, r.sha256, r.kind, r.media_type, r.format, r.document_id, r.size, i.subject, r.rowid
  FROM export_inputs i
  JOIN raw_documents r ON r.tenant = i.tenant AND r.sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.document_sha256 NOT IN (SELECT sha256 FROM {_BASE})
 ORDER BY i.ordinal
"""

#: The documents a delta removes, registered beside the base's.
_REMOVED = "mirror_removed"

#: The base's live documents a delta keeps, by kind and pack: its counts and the packs it carries over.
CARRIED = f"""
SELECT kind, pack, count(*) FROM {_BASE} WHERE sha256 NOT IN (SELECT sha256 FROM {_REMOVED}) GROUP BY kind, pack
"""

#: The base's documents that are not inputs of the run: what a delta planned with every live document removes.
GONE = f"""
SELECT sha256 FROM {_BASE}
 WHERE sha256 NOT IN (SELECT document_sha256 FROM export_inputs WHERE run_id = ? AND tenant = ?)
 ORDER BY sha256
"""


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

    def narrow_inputs(self, options: Mapping[str, Any], store: Store) -> Narrowing | None:
        """How a delta narrows its inputs (:func:`core.planner.plan_run`): it pins the documents its base lacks, and
        the policy documents its policy files are made of, not every live document; the base's documents that the
        selection no longer has are pinned as the option ``removed``. The comparison runs in the store, against the
        base's live documents as its record lists them."""
        base = options.get("base")
        if self.variant != "delta" or not isinstance(base, dict):
            return None
        live = StateRecords(store.home).live(str(base["stateDigest"]), keep=True)

        def narrow(cur: Any, sql: str, params: dict[str, Any]) -> tuple[str, dict[str, Any], int, dict[str, Any]]:
            live.register(cur, _BASE)
            cur.execute(f"CREATE OR REPLACE TEMP TABLE {_SELECTION} AS SELECT * FROM ({sql}) s", params)
            row = cur.execute(f"SELECT count(*) FROM {_SELECTION}").fetchone()
            removed = cur.execute(
                f"SELECT sha256 FROM {_BASE} WHERE sha256 NOT IN (SELECT sha256 FROM {_SELECTION}) ORDER BY sha256"
            ).fetchall()
            narrowed = (
                f"SELECT * FROM {_SELECTION}"
                f" WHERE sha256 NOT IN (SELECT sha256 FROM {_BASE}) OR kind IN ('policy', 'findings')"
            )
            return (
                narrowed,
                {"tenant": params["tenant"]},
                int(row[0]) if row else 0,
                {"removed": [r[0] for r in removed]},
            )

        return narrow

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

        base_files = base.state.file_map() if base is not None else {}
        kinds: dict[str, int] = {}
        live_packs: set[str] = set()
        carried = 0
        with contextlib.closing(ctx.query.cursor()) as cursor:
            if base is None:
                added = self._pack_documents(ctx, params, cursor, delta=False)
                removed_docs: list[str] = []
            else:
                records.live(base.digest).register(cursor, _BASE)
                pinned = spec.options.get("removed")
                # A delta planned before deltas pinned only their changes has every live document as an input.
                removed_docs = (
                    [str(r[0]) for r in cursor.execute(GONE, params).fetchall()]
                    if pinned is None
                    else [str(sha) for sha in pinned]
                )
                cursor.register(_REMOVED, pa.table({"sha256": pa.array(removed_docs, pa.string())}))
                for kind, pack, n in cursor.execute(CARRIED).fetchall():
                    carried += int(n)
                    kinds[f"documents.{kind}"] = kinds.get(f"documents.{kind}", 0) + int(n)
                    live_packs.add(str(pack))
                # Last: packing may leave a result open on the cursor (its sorted reads), so the queries come first.
                added = self._pack_documents(ctx, params, cursor, delta=True)
        live_packs.update(d.pack for d in added)

        files: dict[str, StateFile] = {e.path: StateFile(e.path, e.sha256, e.size) for e in ctx.writer.files.values()}
        for pack in live_packs:
            if pack not in files:
                files[pack] = base_files[pack]

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

        counts: dict[str, int] = {"documents": carried + len(added), "added": len(added), "removed": len(removed_docs)}
        counts.update(kinds)
        for doc in added:
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
        if base is None:
            records.save(state, live_table([d.sha256 for d in added], [d.kind for d in added], [d.pack for d in added]))
        else:
            records.save_delta(state, base, removed_docs, added)
        return counts

    @staticmethod
    def _pack_documents(ctx: PayloadContext, params: list[Any], cursor: Any, *, delta: bool) -> list[IndexedDocument]:
        """Pack the inputs the base lacks (every input without a base), in input order, and return them.

        One sorted pass over the inputs' sizes (no content) decides where each goes; a delta's pass reads only the
        inputs its base lacks (compared in the store with the base's live documents), never the others. Then the new
        documents' purls and aliases are read for them alone, and their contents are read once, in storage order,
        straight into their planned place in content-addressed packs of at most ``PACK_LIMIT`` bytes (cut where
        the in-order writer cut them). A delta's ``cursor`` has the base's live documents as a view.
        """
        fresh: list[tuple[Any, ...]] = []
        seen: set[str] = set()
        if not delta:
            rows: Iterable[tuple[Any, ...]] = layout_rows(cursor, params)
        else:
            rows = cursor.execute(FRESH_LAYOUT, params).fetchall()
            row = cursor.execute(
                "SELECT count(DISTINCT document_sha256) FROM export_inputs WHERE run_id = ? AND tenant = ?", params
            ).fetchone()
            ctx.sink.advance((int(row[0]) if row else 0) - len({r[1] for r in rows}))  # inputs carried over
        for row in rows:
            sha = row[1]
            if sha in seen:
                continue
            seen.add(sha)
            ctx.input_done(row[5])
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
            scatter_contents(ctx, cursor, placement, files, only_placed=delta)
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
        return added

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
