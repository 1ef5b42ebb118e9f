"""Normalized rows as the JSONL records json:raw ships, streamed in the run's input order.

Two ways to the same records. :func:`stream` runs one of the SQL statements below (``ADVISORIES``, ``VEX``,
``SBOMS``) over windows of input ordinals, with the nested lists built by DuckDB. Each window re-joins whole tables,
so its cost grows with the store: fine for a few thousand inputs, quadratic for hundreds of thousands.
:func:`advisory_records`, :func:`vex_records` and :func:`sbom_records` give the same dicts from one pass: each
table is read once, sorted by (input ordinal, ...) with DuckDB's external sort (it spills instead of growing), and
the parent rows are merged with their child rows in Python, group by group. Every sorted result is drained at once
into an anonymous temporary file (Arrow IPC, in order) under one lock, :data:`SORTS`, so only one sort holds DuckDB's
memory at a time: several at once (records beside the raw packs' layout) do not fit the store's memory limit at
200,000 advisories. ``tests/integration/test_records_one_pass.py`` compares the
two ways on real fixtures.
"""

from __future__ import annotations

import contextlib
import marshal
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from typing import IO, Any

from core.canonical import canonical_json, canonical_json_of_plain, plain_float

BATCH = 2000
#: Rows fetched per round trip by the one-pass readers.
FETCH = 4096


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value.replace(microsecond=0) if value.microsecond else value).isoformat() + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    return value


def stream(cursor: Any, sql: str, params: list[Any]) -> Iterator[dict[str, Any]]:
    """Rows of ``sql`` (params: run id, tenant) as dicts, None fields dropped, times in RFC 3339.

    The query runs over windows of ``BATCH`` input ordinals (``i.ordinal >= ? AND i.ordinal < ?``), so
    DuckDB aggregates one window at a time: memory stays flat however many documents the run has.
    """
    row = cursor.execute("SELECT max(ordinal) FROM export_inputs WHERE run_id = ? AND tenant = ?", params).fetchone()
    last = -1 if row is None or row[0] is None else int(row[0])
    for lo in range(0, last + 1, BATCH):
        cur = cursor.execute(sql, [*params, lo, lo + BATCH])
        names = [d[0] for d in cur.description]
        while rows := cur.fetchmany(BATCH):
            for values in rows:
                yield {n: _plain(v) for n, v in zip(names, values, strict=True) if v is not None}


ADVISORIES = """
SELECT i.tenant, a.advisory_id AS "advisoryId", a.document_sha256 AS "documentSha256",
       a.source_format AS "sourceFormat", a.modified, a.published, a.withdrawn, a.summary, a.aliases, a.related,
       a.cwes,
       (SELECT list({'type': s.type, 'score': s.score, 'baseScore': s.base_score, 'source': s.source}
               ORDER BY s.type, s.score)
          FROM advisory_severities s
         WHERE s.tenant = a.tenant AND s.document_sha256 = a.document_sha256 AND s.advisory_id = a.advisory_id)
         AS severities,
       (SELECT list({'ecosystem': p.ecosystem, 'name': p.name, 'purl': p.purl, 'rangeType': p.range_type,
                     'introduced': p.introduced, 'fixed': p.fixed, 'lastAffected': p.last_affected,
                     'limit': p."limit", 'versions': p.versions, 'status': p.status, 'productId': p.product_id}
               ORDER BY p.ecosystem, p.name, p.introduced, p.fixed, p.last_affected, p.status)
          FROM affected_packages p
         WHERE p.tenant = a.tenant AND p.document_sha256 = a.document_sha256 AND p.advisory_id = a.advisory_id)
         AS affected
  FROM export_inputs i
  JOIN advisories a ON a.tenant = i.tenant AND a.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'advisory' AND i.ordinal >= ? AND i.ordinal < ?
 ORDER BY i.ordinal, a.advisory_id
"""

VEX = """
SELECT i.tenant, v.document_sha256 AS "documentSha256", v.vex_format AS "vexFormat",
       v.vulnerability_id AS "vulnerabilityId", v.aliases, v.product, v.product_purl AS "productPurl",
       v.subcomponents, v.status, v.justification, v.impact_statement AS "impactStatement",
       v.action_statement AS "actionStatement", v.statement_time AS "timestamp"
  FROM export_inputs i
  JOIN vex_statements v ON v.tenant = i.tenant AND v.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'vex' AND i.ordinal >= ? AND i.ordinal < ?
 ORDER BY i.ordinal, v.vulnerability_id, v.product, v.status
"""

SBOMS = """
SELECT i.tenant, d.document_sha256 AS "documentSha256", d.sbom_format AS "sbomFormat",
       d.spec_version AS "specVersion", d.serial_number AS "serialNumber",
       {'name': d.subject_name, 'version': d.subject_version, 'purl': d.subject_purl} AS subject, d.created,
       (SELECT list({'ref': c.ref, 'name': c.name, 'version': c.version, 'purl': c.purl, 'type': c.type,
                     'cpe': c.cpe, 'sha1': c.sha1, 'sha256': c.sha256, 'licenses': c.licenses,
                     'supplier': c.supplier}
               ORDER BY c.name, c.version, c.purl, c.ref)
          FROM sbom_components c WHERE c.tenant = d.tenant AND c.document_sha256 = d.document_sha256)
         AS components
  FROM export_inputs i
  JOIN sbom_documents d ON d.tenant = i.tenant AND d.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'sbom' AND i.ordinal >= ? AND i.ordinal < ?
 ORDER BY i.ordinal
"""

RAW = """
SELECT r.sha256, r.kind, r.media_type, r.format, r.document_id, r.content
  FROM export_inputs i
  JOIN raw_documents r ON r.tenant = i.tenant AND r.sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.ordinal >= ? AND i.ordinal < ?
 ORDER BY i.ordinal
"""


def redact(record: dict[str, Any], allowlist: list[str] | None) -> dict[str, Any]:
    """Keep only the dotted paths in ``allowlist`` (``None`` keeps everything); lists are entered transparently."""
    if allowlist is None:
        return record
    tree: dict[str, Any] = {}
    for path in allowlist:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    kept: dict[str, Any] = _keep(record, tree)
    return kept


def _keep(value: Any, tree: dict[str, Any]) -> Any:
    if not tree:
        return value
    if isinstance(value, list):
        return [_keep(v, tree) for v in value]
    if isinstance(value, dict):
        return {k: _keep(v, tree[k]) for k, v in value.items() if k in tree}
    return value


# -- one pass per table: the same records as ``stream`` over ADVISORIES, VEX and SBOMS ---------------------------

_ADVISORY_ROWS = """
SELECT i.ordinal, a.advisory_id, i.tenant, a.document_sha256, a.source_format, a.modified, a.published,
       a.withdrawn, a.summary, a.aliases, a.related, a.cwes
  FROM export_inputs i
  JOIN advisories a ON a.tenant = i.tenant AND a.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'advisory'
 ORDER BY i.ordinal, a.advisory_id
"""

_SEVERITY_ROWS = """
SELECT i.ordinal, s.advisory_id, s.type, s.score, s.base_score, s.source
  FROM export_inputs i
  JOIN advisory_severities s ON s.tenant = i.tenant AND s.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'advisory'
 ORDER BY i.ordinal, s.advisory_id, s.type, s.score, s.base_score, s.source
"""

_AFFECTED_ROWS = """
SELECT i.ordinal, p.advisory_id, p.ecosystem, p.name, p.purl, p.range_type, p.introduced, p.fixed,
       p.last_affected, p."limit", p.versions, p.status, p.product_id
  FROM export_inputs i
  JOIN affected_packages p ON p.tenant = i.tenant AND p.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'advisory'
 ORDER BY i.ordinal, p.advisory_id
"""

_SBOM_ROWS = """
SELECT i.ordinal, i.tenant, d.document_sha256, d.sbom_format, d.spec_version, d.serial_number, d.subject_name,
       d.subject_version, d.subject_purl, d.created
  FROM export_inputs i
  JOIN sbom_documents d ON d.tenant = i.tenant AND d.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'sbom'
 ORDER BY i.ordinal
"""

_COMPONENT_ROWS = """
SELECT i.ordinal, c.ref, c.name, c.version, c.purl, c.type, c.cpe, c.sha1, c.sha256, c.licenses, c.supplier
  FROM export_inputs i
  JOIN sbom_components c ON c.tenant = i.tenant AND c.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'sbom'
 ORDER BY i.ordinal, c.name, c.version, c.purl, c.ref, c.type, c.cpe, c.sha1, c.sha256, c.licenses, c.supplier
"""

_ONE_PASS_VEX = VEX.replace(" AND i.ordinal >= ? AND i.ordinal < ?", "")


#: Held while a large query runs (a sort drained into its spool, the one scan of raw contents): one at a time in
#: the store's memory, which two of them overflow at 200,000 advisories.
SORTS = threading.Lock()


def sorted_rows(cursor: Any, sql: str, params: list[Any], *, times: tuple[int, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The rows of the sorted query ``sql``, drained now (under :data:`SORTS`) and handed back in order, lazily.

    The columns at ``times`` (times and dates) become their RFC 3339 text (as :func:`stream` writes them). The
    query runs on a cursor made from ``cursor`` (under the lock, so threads never make cursors at the same time).
    """
    return sorted_result(cursor, sql, params, times=times)[1]


def sorted_result(
    cursor: Any, sql: str, params: list[Any], *, times: tuple[int, ...] = ()
) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
    """:func:`sorted_rows` with the column names.

    The result is drained as Arrow record batches into an Arrow IPC stream in an anonymous temporary file: the
    drain (which holds :data:`SORTS`) is then mostly DuckDB's and pyarrow's C++ work, without the GIL, and rows
    become Python tuples only once, as they are read back. A result with a column type whose Python value could
    differ between DuckDB's rows and Arrow's (anything but booleans, integers, floats, text, dates, timestamps and
    lists of those) takes the row path: fetched rows, spooled with marshal.
    """
    # Unlinked at once: nothing is left behind, even on a kill; closed by the reader, or here on failure.
    spool: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        # A cursor of its own, closed once drained: a finished result still holds its sorted blocks in memory.
        with SORTS, contextlib.closing(cursor.cursor()) as cur:
            relation = cur.sql(sql, params=params)
            names = list(relation.columns)
            if all(_arrow_safe(str(t)) for t in relation.types):
                _drain_arrow(relation, spool)
                rows = _unspool_arrow(spool, times)
            else:
                cur.execute(sql, params)
                while batch := cur.fetchmany(FETCH):
                    if times:
                        batch = [_text_times(row, times) for row in batch]
                    data = marshal.dumps(batch)
                    spool.write(len(data).to_bytes(8, "little") + data)
                rows = _unspool(spool)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return names, rows


#: DuckDB column types whose Python values are the same whether fetched as rows or read from Arrow.
_ARROW_SAFE = frozenset(
    {"BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
    | {"DOUBLE", "FLOAT", "VARCHAR", "DATE", "TIMESTAMP"}
)
#: Rows per Arrow record batch drained from DuckDB (a batch is read back FETCH rows at a time).
ARROW_BATCH = 16384


def _arrow_safe(kind: str) -> bool:
    while kind.endswith("[]"):
        kind = kind[:-2]
    return kind in _ARROW_SAFE


def _drain_arrow(relation: Any, spool: IO[bytes]) -> None:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    reader = relation.to_arrow_reader(ARROW_BATCH)
    with ipc.new_stream(pa.PythonFile(spool, mode="w"), reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)


def _unspool_arrow(spool: IO[bytes], times: tuple[int, ...]) -> Iterator[tuple[Any, ...]]:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    with spool:
        # The system allocator: a batch's buffers go back to the OS when it is done with, where the default pool
        # (mimalloc) keeps them, and the process stays that much larger for the rest of the build and the seal.
        for batch in ipc.open_stream(pa.PythonFile(spool, mode="r"), memory_pool=pa.system_memory_pool()):
            for start in range(0, batch.num_rows, FETCH):
                part = batch.slice(start, FETCH)
                columns = [column.to_pylist() for column in part.columns]
                for i in times:
                    columns[i] = [None if v is None else _plain(v) for v in columns[i]]
                yield from zip(*columns, strict=True)


def _text_times(row: tuple[Any, ...], times: tuple[int, ...]) -> tuple[Any, ...]:
    values = list(row)
    for i in times:
        if values[i] is not None:
            values[i] = _plain(values[i])
    return tuple(values)


def _unspool(spool: IO[bytes]) -> Iterator[tuple[Any, ...]]:
    # Length-prefixed batches: marshal.load on a file object reads in tiny steps, loads on one read does not.
    with spool:
        while head := spool.read(8):
            batch = marshal.loads(spool.read(int.from_bytes(head, "little")))  # noqa: S302 (our own file)
            yield from batch


class Children:
    """The rows of an ordered child query, grouped by their first ``width`` columns and found by that key.

    Keys are asked for in ascending order (the parents' order); a group is not consumed when found, so two
    parents with the same key get the same children, as the correlated subqueries give them.
    """

    def __init__(self, rows: Iterable[tuple[Any, ...]], width: int) -> None:
        self._rows = iter(rows)
        self._width = width
        self._row = next(self._rows, None)
        self._key: tuple[Any, ...] | None = None
        self._group: list[tuple[Any, ...]] = []

    def _advance(self) -> None:
        first = self._row
        assert first is not None
        self._key = first[: self._width]
        self._group = [first]
        for row in self._rows:
            if row[: self._width] != self._key:
                self._row = row
                return
            self._group.append(row)
        self._row = None

    def get(self, key: tuple[Any, ...]) -> list[tuple[Any, ...]] | None:
        while self._key is None or self._key < key:
            if self._row is None:
                self._key, self._group = None, []
                return None
            self._advance()
        return self._group if self._key == key else None


def _put(record: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        record[name] = value


def advisory_records(
    cursor: Any, params: list[Any], drained: Callable[[], None] | None = None
) -> Iterator[dict[str, Any]]:
    """The records of :data:`ADVISORIES` for a run (params: run id, tenant), in one pass over each table.

    ``drained`` is called once the three sorted queries are drained into their spools (the store is then free for
    another large query) and before the first record is made."""
    severities = Children(sorted_rows(cursor, _SEVERITY_ROWS, params), 2)
    affected = Children(sorted_rows(cursor, _AFFECTED_ROWS, params), 2)
    rows = sorted_rows(cursor, _ADVISORY_ROWS, params, times=(5, 6, 7))
    if drained is not None:
        drained()
    for row in rows:
        ordinal, advisory_id, tenant, sha, fmt, modified, published, withdrawn, summary, aliases, related, cwes = row
        record: dict[str, Any] = {"tenant": tenant, "advisoryId": advisory_id, "documentSha256": sha}
        record["sourceFormat"] = fmt
        _put(record, "modified", modified)
        _put(record, "published", published)
        _put(record, "withdrawn", withdrawn)
        _put(record, "summary", summary)
        _put(record, "aliases", aliases)
        _put(record, "related", related)
        _put(record, "cwes", cwes)
        key = (ordinal, advisory_id)
        found = severities.get(key)
        if found is not None:
            record["severities"] = [_severity(r) for r in found]
        found = affected.get(key)
        if found is not None:
            record["affected"] = [_affected(r) for r in sorted(found, key=_affected_order)]
        yield record


def advisory_json(record: dict[str, Any]) -> bytes:
    """:func:`core.canonical.canonical_json` of a record of :func:`advisory_records` (or a redaction of one).

    Such a record is plain JSON by construction (ASCII keys; strings, lists of strings, None) except for the
    severities' ``baseScore`` (a DOUBLE): when every one of those is a float orjson writes as RFC 8785 does, the
    record is serialised without walking it again; otherwise the checked path decides.
    """
    for severity in record.get("severities", ()):
        score = severity.get("baseScore") if type(severity) is dict else 0.0
        if score is not None and (type(score) is not float or not plain_float(score)):
            return canonical_json(record)
    return canonical_json_of_plain(record)


def _severity(row: tuple[Any, ...]) -> dict[str, Any]:
    _, _, kind, score, base_score, source = row
    item: dict[str, Any] = {"type": kind, "score": score}
    _put(item, "baseScore", base_score)
    _put(item, "source", source)
    return item


_AFFECTED_FIELDS = (
    "ecosystem",
    "name",
    "purl",
    "rangeType",
    "introduced",
    "fixed",
    "lastAffected",
    "limit",
    "versions",
    "status",
    "productId",
)


def _nulls_last(value: Any) -> tuple[bool, Any]:
    return (value is None, "" if value is None else value)


def _affected_order(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """ADVISORIES' order of an advisory's affected packages: ecosystem, name, introduced, fixed, last affected,
    status (NULLs last, strings by code point as DuckDB's binary collation), then every other field, so that ties
    there still come out in one order (the list aggregate left them to the sort)."""
    _, _, ecosystem, name, purl, range_type, introduced, fixed, last, limit, versions, status, product = row
    listed = None if versions is None else tuple(_nulls_last(v) for v in versions)
    # Flat (is None, value or "") pairs: the same order as a tuple of _nulls_last pairs, without a call per field.
    return (
        ecosystem is None,
        "" if ecosystem is None else ecosystem,
        name is None,
        "" if name is None else name,
        introduced is None,
        "" if introduced is None else introduced,
        fixed is None,
        "" if fixed is None else fixed,
        last is None,
        "" if last is None else last,
        status is None,
        "" if status is None else status,
        range_type is None,
        "" if range_type is None else range_type,
        purl is None,
        "" if purl is None else purl,
        limit is None,
        "" if limit is None else limit,
        listed is None,
        "" if listed is None else listed,
        product is None,
        "" if product is None else product,
    )


def _affected(row: tuple[Any, ...]) -> dict[str, Any]:
    """The non-null fields of an affected-package row, named as in :data:`_AFFECTED_FIELDS` and in that order
    (spelled out: about twice as fast as a comprehension over the names, once per affected row)."""
    _, _, ecosystem, name, purl, range_type, introduced, fixed, last, limit, versions, status, product = row
    item: dict[str, Any] = {}
    if ecosystem is not None:
        item["ecosystem"] = ecosystem
    if name is not None:
        item["name"] = name
    if purl is not None:
        item["purl"] = purl
    if range_type is not None:
        item["rangeType"] = range_type
    if introduced is not None:
        item["introduced"] = introduced
    if fixed is not None:
        item["fixed"] = fixed
    if last is not None:
        item["lastAffected"] = last
    if limit is not None:
        item["limit"] = limit
    if versions is not None:
        item["versions"] = versions
    if status is not None:
        item["status"] = status
    if product is not None:
        item["productId"] = product
    return item


def vex_records(cursor: Any, params: list[Any], drained: Callable[[], None] | None = None) -> Iterator[dict[str, Any]]:
    """The records of :data:`VEX` for a run, in one ordered query (``drained`` as in :func:`advisory_records`)."""
    names, rows = sorted_result(cursor, _ONE_PASS_VEX, params, times=(12,))
    if drained is not None:
        drained()
    for values in rows:
        yield {n: _plain(v) for n, v in zip(names, values, strict=True) if v is not None}


_COMPONENT_FIELDS = ("ref", "name", "version", "purl", "type", "cpe", "sha1", "sha256", "licenses", "supplier")


def sbom_records(cursor: Any, params: list[Any], drained: Callable[[], None] | None = None) -> Iterator[dict[str, Any]]:
    """The records of :data:`SBOMS` for a run, in one pass over each table (``drained`` as in
    :func:`advisory_records`)."""
    components = Children(sorted_rows(cursor, _COMPONENT_ROWS, params), 1)
    rows = sorted_rows(cursor, _SBOM_ROWS, params, times=(9,))
    if drained is not None:
        drained()
    for row in rows:
        ordinal, tenant, sha, fmt, spec_version, serial, name, version, purl, created = row
        record: dict[str, Any] = {"tenant": tenant, "documentSha256": sha, "sbomFormat": fmt}
        record["specVersion"] = spec_version
        _put(record, "serialNumber", serial)
        record["subject"] = {k: v for k, v in (("name", name), ("version", version), ("purl", purl)) if v is not None}
        _put(record, "created", created)
        found = components.get((ordinal,))
        if found is not None:
            record["components"] = [
                {k: v for k, v in zip(_COMPONENT_FIELDS, r[1:], strict=True) if v is not None} for r in found
            ]
        yield record
