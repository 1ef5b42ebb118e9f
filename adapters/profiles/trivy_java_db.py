"""``trivy:java-db``: a Trivy Java DB (``trivy-java.db``, SQLite) mapping jar SHA-1 digests to Maven coordinates.

Trivy identifies a jar without ``pom.properties`` by its SHA-1 through this DB, then matches the coordinates
against the ``maven::`` buckets of ``trivy.db``. The rows come from the SBOM components of the run that have a
Maven purl (``pkg:maven/GROUP/ARTIFACT@VERSION``) and a SHA-1 hash. Schema and value rules are trivy-java-db's
(trivy-java-db ``pkg/db``): the exact DDL, ``sha1`` as the raw 20-byte digest (a hex string never
matches), ``archive_type`` ``jar`` (or ``aar``), one coordinate per SHA-1.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from adapters.profiles._trivy_mapping import parse_purl
from adapters.profiles._trivy_package import JAVA_DB, plan_schema, schema_of, workdir, write_outputs
from core.bundle import PayloadContext
from core.errors import EnvironmentFailure
from core.store import Store

#: trivy-java-db ``pkg/db/db.go: Init``, verbatim.
SCHEMA = (
    "CREATE TABLE artifacts(id INTEGER PRIMARY KEY, group_id TEXT, artifact_id TEXT)",
    "CREATE TABLE indices(artifact_id INTEGER, version TEXT, sha1 BLOB, archive_type TEXT, "
    "foreign key (artifact_id) references artifacts(id))",
    "CREATE UNIQUE INDEX artifacts_idx ON artifacts(artifact_id, group_id)",
    "CREATE INDEX indices_artifact_idx ON indices(artifact_id)",
    "CREATE UNIQUE INDEX indices_sha1_idx ON indices(sha1)",
)

#: Each input SBOM once (in input order), with its Maven components that carry a SHA-1 (none: one row of NULLs).
COMPONENTS = """
SELECT i.ordinal, i.document_id, c.purl, lower(c.sha1) AS sha1
  FROM export_inputs i
  LEFT JOIN sbom_components c
    ON c.tenant = i.tenant AND c.document_sha256 = i.document_sha256
   AND c.purl LIKE 'pkg:maven/%' AND c.sha1 IS NOT NULL
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'sbom'
 ORDER BY i.ordinal, c.purl, c.sha1
"""

_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_ARCHIVE_TYPES = {"jar", "aar"}


def artifacts_of(rows: list[tuple[str, str]]) -> list[tuple[str, str, str, bytes, str]]:
    """(group, artifact, version, sha1 digest, archive type) per usable row, one per SHA-1 (first by purl wins).

    Rows are (purl, lowercase hex sha1) sorted by sha1 then purl, so the choice never depends on import order.
    Unclassified artifacts are preferred over classified ones, as trivy-java-db's builder does.
    """
    best: dict[str, tuple[bool, str, str, str, str]] = {}
    for purl_text, sha1 in rows:
        purl = parse_purl(purl_text)
        if purl is None or not purl.namespace or not purl.version or not _SHA1.match(sha1 or ""):
            continue
        qualifiers = purl.qualifiers or {}
        archive = str(qualifiers.get("type") or "jar")
        if archive not in _ARCHIVE_TYPES:
            continue
        candidate = (bool(qualifiers.get("classifier")), purl.namespace, purl.name, purl.version, archive)
        current = best.get(sha1)
        if current is None or (current[0] and not candidate[0]):
            best[sha1] = candidate
    return [(g, a, v, bytes.fromhex(sha1), t) for sha1, (_c, g, a, v, t) in sorted(best.items())]


def write_java_db(path: Path, artifacts: list[tuple[str, str, str, bytes, str]]) -> int:
    """Write ``trivy-java.db`` at ``path`` (a new file); returns the number of distinct (group, artifact) rows.

    Artifact ids are assigned in (group, artifact) order and indices inserted in SHA-1 order, then the file is
    vacuumed, so the same rows give the same bytes with the same SQLite library.
    """
    ids: dict[tuple[str, str], int] = {}
    for group, artifact, *_ in sorted(artifacts, key=lambda r: (r[0], r[1])):
        ids.setdefault((group, artifact), len(ids) + 1)
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise EnvironmentFailure(f"cannot create the Java DB: {exc}", path=str(path)) from exc
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("BEGIN")
        for statement in SCHEMA:
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO artifacts(id, group_id, artifact_id) VALUES (?, ?, ?)",
            [(i, g, a) for (g, a), i in ids.items()],
        )
        conn.executemany(
            "INSERT INTO indices(artifact_id, version, sha1, archive_type) VALUES (?, ?, ?, ?)",
            [(ids[(g, a)], v, sha1, t) for g, a, v, sha1, t in artifacts],
        )
        conn.execute("COMMIT")
        conn.execute("VACUUM")
    except sqlite3.Error as exc:
        raise EnvironmentFailure(f"cannot write the Java DB: {exc}", path=str(path)) from exc
    finally:
        conn.close()
    return len(ids)


class TrivyJavaDb:
    """The ``trivy:java-db`` profile."""

    kind = "trivy"
    variant = "java-db"
    encrypted_prefixes: tuple[str, ...] | None = None

    def plan_options(self, requested: dict[str, Any], store: Store) -> dict[str, Any]:
        """Pin the Java DB schema version (default 1); any other version is a usage error."""
        return plan_schema(JAVA_DB, requested, store)

    def write_payload(self, ctx: PayloadContext) -> dict[str, int]:
        version = schema_of(ctx, JAVA_DB)
        found: set[tuple[str, str]] = set()
        cur = ctx.query.execute(COMPONENTS, [ctx.spec.run_id, ctx.spec.tenant])
        ordinal: int | None = None
        document = ""
        while batch := cur.fetchmany(10_000):
            for this, document_id, purl, sha1 in batch:
                if this != ordinal:
                    if ordinal is not None:
                        ctx.input_done(document)
                    ordinal, document = this, str(document_id or "")
                if purl is not None:
                    found.add((str(purl), str(sha1)))
        if ordinal is not None:
            ctx.input_done(document)
        rows = sorted(found, key=lambda r: (r[1], r[0]))
        artifacts = artifacts_of(rows)
        with workdir(ctx) as work:
            db_path = work / JAVA_DB.db_file
            groups = write_java_db(db_path, artifacts)
            facts = write_outputs(ctx, JAVA_DB, db_path, version, work)
        ctx.extra_manifest["trivy"] = facts
        return {"mavenComponents": len(rows), "indices": len(artifacts), "artifacts": groups}


PROFILE = TrivyJavaDb()
