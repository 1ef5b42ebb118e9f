"""The advisories of a Trivy run, read from the store as three flat, ordered tables and merged per advisory.

The records are those :data:`adapters.profiles._records.ADVISORIES` gives, for the fields the Trivy mapping reads
(same order, same values): the advisory row, then its severities and affected packages as lists of dicts, ``None``
fields dropped, times in RFC 3339. ``ADVISORIES`` builds the lists with one correlated subquery per advisory,
which DuckDB answers by scanning both child tables again for every window of inputs: the time grows with the
square of the store. Here each table is joined to the run's inputs once per part, sorted by (input ordinal,
advisory ID, the list's own order) and written by DuckDB as an Arrow IPC stream into the build's scratch directory,
without a Python object per row; :func:`part_records` then merges the three streams of a part, batch by batch.

A run is cut into parts of consecutive input ordinals (:func:`write_parts`), so that another process can turn one
part into records while this one reads the next: a part is a few files, readable without the store.

Ties: the lists' orders are ``ADVISORIES``'s, completed with the row's position in its table (its ``rowid``, the
order the importer wrote the record's entries in), so rows that agree on every sort key (an OSV record's several
``versions`` lists of one package) keep the record's order, as ``ADVISORIES`` gives them, and the DB's bytes never
depend on how DuckDB happened to sort equal keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc

from adapters.profiles._trivy_mapping import AFFECTED_FIELDS, SEVERITY_FIELDS

#: Rows per Arrow batch, written and read: large enough that the per-batch cost vanishes, small enough to keep
#: memory flat.
BATCH_ROWS = 8192

_ADVISORY_ROWS = """
SELECT i.ordinal, a.advisory_id, a.document_sha256, a.modified, a.published, a.withdrawn, a.summary, a.aliases,
       a.cwes
  FROM export_inputs i
  JOIN advisories a ON a.tenant = i.tenant AND a.document_sha256 = i.document_sha256
 WHERE i.run_id = $run AND i.tenant = $tenant AND i.kind = 'advisory' AND i.ordinal >= $lo AND i.ordinal < $hi
 ORDER BY i.ordinal, a.advisory_id, a.rowid
"""

_SEVERITY_ROWS = """
SELECT i.ordinal, s.advisory_id, s.type, s.score, s.base_score
  FROM export_inputs i
  JOIN advisory_severities s ON s.tenant = i.tenant AND s.document_sha256 = i.document_sha256
 WHERE i.run_id = $run AND i.tenant = $tenant AND i.kind = 'advisory' AND i.ordinal >= $lo AND i.ordinal < $hi
 ORDER BY i.ordinal, s.advisory_id, s.type, s.score, s.rowid
"""

_AFFECTED_ROWS = """
SELECT i.ordinal, p.advisory_id, p.ecosystem, p.name, p.purl, p.range_type, p.introduced, p.fixed, p.last_affected,
       p."limit", p.versions, p.status
  FROM export_inputs i
  JOIN affected_packages p ON p.tenant = i.tenant AND p.document_sha256 = i.document_sha256
 WHERE i.run_id = $run AND i.tenant = $tenant AND i.kind = 'advisory' AND i.ordinal >= $lo AND i.ordinal < $hi
 ORDER BY i.ordinal, p.advisory_id, p.ecosystem, p.name, p.introduced, p.fixed, p.last_affected, p.status,
          p.rowid
"""


@dataclass(frozen=True)
class Part:
    """The rows of one range of input ordinals, as three Arrow IPC stream files."""

    advisories: Path
    severities: Path
    affected: Path


def last_ordinal(cursor: Any, run_id: str, tenant: str) -> int:
    """The run's highest input ordinal, -1 when it has none."""
    rows = cursor.execute(
        "SELECT max(ordinal) FROM export_inputs WHERE run_id = ? AND tenant = ?", [run_id, tenant]
    ).fetchall()
    return -1 if not rows or rows[0][0] is None else int(rows[0][0])


def write_part(cursor: Any, run_id: str, tenant: str, lo: int, hi: int, path: Path) -> Part:
    """Write the rows of the inputs with ordinals ``lo`` to ``hi - 1`` as a :class:`Part` named ``path.*``.

    One query at a time, each written out before the next starts, so only one sort holds the store's memory.
    """
    params = {"run": run_id, "tenant": tenant, "lo": lo, "hi": hi}
    part = Part(path.with_suffix(".advisories"), path.with_suffix(".severities"), path.with_suffix(".affected"))
    for sql, target in (
        (_ADVISORY_ROWS, part.advisories),
        (_SEVERITY_ROWS, part.severities),
        (_AFFECTED_ROWS, part.affected),
    ):
        reader = cursor.sql(sql, params=params).to_arrow_reader(BATCH_ROWS)
        with pa.OSFile(str(target), "wb") as sink, pyarrow.ipc.new_stream(sink, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
    return part


def write_parts(cursor: Any, run_id: str, tenant: str, directory: Path, count: int) -> list[Part]:
    """The run cut into ``count`` parts of consecutive input ordinals (as equal as the ordinals allow)."""
    end = last_ordinal(cursor, run_id, tenant) + 1
    step = max(1, -(-end // count))
    return [
        write_part(cursor, run_id, tenant, lo, min(lo + step, end), directory / f"part-{n}")
        for n, lo in enumerate(range(0, max(end, 1), step))
    ]


def _time(value: datetime) -> str:
    """As ``_records._plain`` writes a time: whole seconds, RFC 3339 with ``Z``."""
    return value.isoformat(timespec="seconds") + "Z"  # the microseconds dropped, as replace(microsecond=0)


def _rows(path: Path) -> Iterator[tuple[Any, ...]]:
    """The rows of an Arrow IPC stream file, batch by batch, as tuples of Python values."""
    with pa.OSFile(str(path), "rb") as source:
        for batch in pyarrow.ipc.open_stream(source):
            yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)


def _groups(
    path: Path, fields: tuple[str, ...], *, as_tuples: bool = False
) -> Iterator[tuple[tuple[int, str], list[Any]]]:
    """((ordinal, advisory ID), that advisory's rows as dicts without ``None`` fields), in the file's order; with
    ``as_tuples``, each row as the tuple of its ``fields`` (None where the dict would lack the field)."""
    key: tuple[int, str] | None = None
    items: list[Any] = []
    with pa.OSFile(str(path), "rb") as source:
        for batch in pyarrow.ipc.open_stream(source):
            ordinals, ids, *columns = (column.to_pylist() for column in batch.columns)
            for ordinal, advisory_id, values in zip(ordinals, ids, zip(*columns, strict=True), strict=True):
                if key is None or ordinal != key[0] or advisory_id != key[1]:
                    if key is not None:
                        yield key, items
                    key, items = (ordinal, advisory_id), []
                if as_tuples:
                    items.append(values)
                else:
                    items.append({name: value for name, value in zip(fields, values, strict=True) if value is not None})
    if key is not None:
        yield key, items


class _Children:
    """One child table's groups, consumed in step with the advisory rows (both ordered by the same key)."""

    def __init__(self, groups: Iterator[tuple[tuple[int, str], list[dict[str, Any]]]]) -> None:
        self._groups = groups
        self._current = next(groups, None)

    def of(self, key: tuple[int, str]) -> list[dict[str, Any]] | None:
        """The rows of ``key``; groups before it (rows of no selected advisory) are passed over. A group stays
        current until a later key is asked for, so two advisory rows with one key get the same children."""
        while self._current is not None and self._current[0] < key:
            self._current = next(self._groups, None)
        if self._current is not None and self._current[0] == key:
            return self._current[1]
        return None


def part_records(part: Part, *, tuples: bool = False) -> Iterator[dict[str, Any]]:
    """The advisories of a part in input order, each as the record the Trivy mapping takes; with ``tuples``, its
    severities and affected packages as tuples of the mapping's ``SEVERITY_FIELDS`` and ``AFFECTED_FIELDS``
    (which it also takes: no dict is made and read back per row)."""
    severities = _Children(_groups(part.severities, SEVERITY_FIELDS, as_tuples=tuples))
    affected = _Children(_groups(part.affected, AFFECTED_FIELDS, as_tuples=tuples))
    for ordinal, advisory_id, document, modified, published, withdrawn, summary, aliases, cwes in _rows(
        part.advisories
    ):
        record: dict[str, Any] = {"advisoryId": advisory_id, "documentSha256": document}
        if modified is not None:
            record["modified"] = _time(modified)
        if published is not None:
            record["published"] = _time(published)
        if withdrawn is not None:
            record["withdrawn"] = _time(withdrawn)
        if summary is not None:
            record["summary"] = summary
        if aliases is not None:
            record["aliases"] = aliases
        if cwes is not None:
            record["cwes"] = cwes
        key = (ordinal, advisory_id)
        items = severities.of(key)
        if items is not None:
            record["severities"] = items
        items = affected.of(key)
        if items is not None:
            record["affected"] = items
        yield record


def advisory_records(cursor: Any, run_id: str, tenant: str, directory: Path) -> Iterator[dict[str, Any]]:
    """Every advisory of the run in input order, through one part written in ``directory``."""
    for part in write_parts(cursor, run_id, tenant, directory, 1):
        yield from part_records(part)
