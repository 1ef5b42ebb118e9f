"""The local DuckDB store: raw documents (immutable, keyed by sha256), normalized rows, export tables.

One connection per store; threads take their own cursor (``Store.cursor()``). DuckDB's
extension auto-install/auto-load and all external file/network access are switched off, so the
store can never reach for the network. DuckDB itself is imported when a store is opened, not with
this module: an import's worker processes build rows with ``core.store.tables`` and never open a
store. Blobs too big for rows live in ``blobs/sha256/<hex>``.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from core import __version__
from core.clock import utcnow
from core.errors import EnvironmentFailure, NotFoundError, StoreLockedError, StoreVersionError
from core.home import Home
from core.store.lock import StoreLock
from core.store.tables import NORMALIZED_TABLES, TABLES, RowBatch

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

#: Raw documents larger than this go to the blob directory instead of a BLOB column.
BLOB_THRESHOLD = 1 << 20
#: How large the WAL may grow during :meth:`Store.bulk_writes` before DuckDB checkpoints it.
BULK_CHECKPOINT = os.environ.get("STELLA_BULK_CHECKPOINT", "64MB")
BULK_MEMORY = os.environ.get("STELLA_BULK_MEMORY", "64MB")
#: DuckDB's own checkpoint_threshold (16 MiB): the WAL size past which a commit checkpoints outside bulk_writes.
DEFAULT_CHECKPOINT_BYTES = 16 << 20

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@contextlib.contextmanager
def transaction(cur: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All-or-nothing on ``cur`` (the store's connection, or a thread's cursor from :meth:`Store.cursor`).

    BEGIN, then COMMIT when the block ends, ROLLBACK when it raises anything (Ctrl-C included). The one place a
    transaction is opened.
    """
    cur.execute("BEGIN TRANSACTION")
    try:
        yield cur
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")


DUCKDB_CONFIG: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "enable_external_access": False,
    # DuckDB's default buffer pool is 80% of RAM; the store's working set is small, and memory must stay
    # flat as data grows (large sorts spill to the temp directory beside the store instead).
    "memory_limit": os.environ.get("STELLA_DB_MEMORY", "128MB"),
    "threads": 2,
}


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The numbered, forward-only migrations shipped with this version, in order."""
    found = []
    for entry in resources.files("core.store.migrations").iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda mig: mig.version)
    return found


def latest_schema_version() -> int:
    return load_migrations()[-1].version


class Store:
    """An open store. Use :meth:`open` as a context manager."""

    def __init__(self, home: Home, conn: duckdb.DuckDBPyConnection, lock: StoreLock, *, read_only: bool) -> None:
        self.home = home
        self.conn = conn
        self.read_only = read_only
        self._lock = lock

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, home: Home, *, read_only: bool = False) -> Store:
        """Open (and create or migrate, when writable) the store under ``home``.

        Readers share the lock; a writer holds it alone. A reader of a store that does not exist
        yet, or that needs a migration, briefly opens it as a writer first.
        """
        home.ensure()
        if read_only and not cls._is_current(home):
            cls.open(home, read_only=False).close()
        lock = StoreLock(home.lock_path, exclusive=not read_only).acquire()
        try:
            conn = cls._connect(home, read_only=read_only)
        except BaseException:
            lock.release()
            raise
        store = cls(home, conn, lock, read_only=read_only)
        try:
            store._check_and_migrate()
        except BaseException:
            store.close()
            raise
        return store

    @staticmethod
    def _connect(home: Home, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        import duckdb

        try:
            return duckdb.connect(str(home.store_path), read_only=read_only, config=dict(DUCKDB_CONFIG))
        except duckdb.IOException as exc:
            text = str(exc)
            pid = re.search(r"PID (\d+)", text)
            if "lock" in text.lower():
                who = f"PID {pid.group(1)}" if pid else "another process"
                raise StoreLockedError(f"store is locked by {who}", path=str(home.store_path)) from None
            raise EnvironmentFailure(f"cannot open the store: {text}", path=str(home.store_path)) from None
        except duckdb.Error as exc:
            raise EnvironmentFailure(
                f"cannot open the store: {exc}",
                path=str(home.store_path),
                hint="the file may be damaged or not a stella store",
            ) from None

    @staticmethod
    def _is_current(home: Home) -> bool:
        if not home.store_path.exists():
            return False
        import duckdb

        try:
            with StoreLock(home.lock_path, exclusive=False):
                conn = duckdb.connect(str(home.store_path), read_only=True, config=dict(DUCKDB_CONFIG))
                try:
                    row = conn.execute("SELECT max(version), count(DISTINCT version) FROM schema_version").fetchone()
                finally:
                    conn.close()
        except (duckdb.Error, StoreLockedError):
            return True  # let the real open report the problem
        if row is None or row[0] is None:
            return False
        # Current only with no gap: a migration missing below the newest one is still applied.
        latest = latest_schema_version()
        return int(row[0]) >= latest and int(row[1]) >= latest

    def _check_and_migrate(self) -> None:
        current = self.schema_version()
        known = load_migrations()
        newest = known[-1].version
        if current > newest:
            raise StoreVersionError(
                f"this store has schema version {current}, newer than this stella {__version__} supports ({newest})",
                path=str(self.home.store_path),
                hint="upgrade stella, or use another --home",
            )
        applied = {int(r[0]) for r in self.conn.execute("SELECT DISTINCT version FROM schema_version").fetchall()}
        missing = [mig for mig in known if mig.version not in applied]
        if not missing:
            return
        if self.read_only:
            raise StoreVersionError(
                "the store needs a migration but was opened read-only", path=str(self.home.store_path)
            )
        # In version order; a gap below the newest applied version (a home that ran a development build whose
        # migrations were numbered differently) is filled too, rather than left without its tables.
        for mig in missing:
            with transaction(self.conn) as conn:
                conn.execute(mig.sql)
                conn.execute(
                    "INSERT INTO schema_version VALUES (?, ?, ?, ?)",
                    [mig.version, mig.name, utcnow(), __version__],
                )

    def schema_version(self) -> int:
        """The store's schema version (0 for an empty file)."""
        exists = self.conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).fetchone()
        if not exists or not exists[0]:
            if self.read_only:
                return 0
            self.conn.execute(
                "CREATE TABLE schema_version (version INTEGER NOT NULL, name VARCHAR NOT NULL,"
                " applied_at TIMESTAMP NOT NULL, tool_version VARCHAR NOT NULL)"
            )
            return 0
        row = self.conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        import duckdb

        with contextlib.suppress(duckdb.Error):
            self.conn.close()
        self._lock.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for another thread (DuckDB connections are not shared across threads)."""
        return self.conn.cursor()

    def transaction(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        """All-or-nothing on the store's connection: commit on success, roll back on any exception."""
        return transaction(self.conn)

    @contextlib.contextmanager
    def bulk_writes(self) -> Iterator[None]:
        """Many transactions in a row (an import): DuckDB checkpoints its WAL into the file less often meanwhile.

        By default every 16 MiB of WAL is checkpointed at the commit that crosses it, and a checkpoint's cost grows
        with the store, so a large import spent most of its writing time in checkpoints. Inside this block the WAL
        may grow to :data:`BULK_CHECKPOINT` and DuckDB's memory is held to :data:`BULK_MEMORY` (rows not yet
        checkpointed otherwise fill its whole limit); when the block ends the WAL is checkpointed once, so the store
        is left as compact as before, and both settings are restored. Commits stay commits: a kill loses nothing
        committed.
        """
        memory = self.conn.execute("SELECT current_setting('memory_limit')").fetchone()
        self.conn.execute(f"SET checkpoint_threshold = '{BULK_CHECKPOINT}'")
        self.conn.execute(f"SET memory_limit = '{BULK_MEMORY}'")
        try:
            yield
            # Checkpoint once, as DuckDB would have at a commit by default, only if the log grew past its default
            # threshold: a small import leaves the store as it always did (a checkpoint needs room for new blocks
            # beside the old ones, and one that fails, on a full disk, invalidates the open database).
            wal = Path(f"{self.home.store_path}.wal")
            if wal.exists() and wal.stat().st_size >= DEFAULT_CHECKPOINT_BYTES:
                self.conn.execute("CHECKPOINT")  # within the import's memory limit
        finally:
            self.conn.execute("RESET checkpoint_threshold")
            if memory is not None:
                self.conn.execute(f"SET memory_limit = '{memory[0]}'")

    # -- raw documents and blobs -----------------------------------------------------------
    def existing_digests(
        self, tenant: str, digests: Iterable[str], *, cur: duckdb.DuckDBPyConnection | None = None
    ) -> set[str]:
        """Which of ``digests`` the tenant already holds (``cur``: another thread's cursor)."""
        wanted = list(digests)
        if not wanted:
            return set()
        rows = (
            (cur or self.conn)
            .execute(
                "SELECT sha256 FROM raw_documents WHERE tenant = ? AND list_contains(?, sha256)",
                [tenant, wanted],
            )
            .fetchall()
        )
        return {r[0] for r in rows}

    def has_documents(self, tenant: str) -> bool:
        """Whether the tenant holds any raw document."""
        return (
            self.conn.execute("SELECT 1 FROM raw_documents WHERE tenant = ? LIMIT 1", [tenant]).fetchone() is not None
        )

    def blob_path(self, sha256: str) -> Path:
        return self.home.blobs_dir / sha256[:2] / sha256

    def put_blob(self, sha256: str, data: bytes) -> bool:
        """Write a content-addressed blob atomically; return True if it was new."""
        target = self.blob_path(sha256)
        if target.exists():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            Path(tmp).replace(target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                Path(tmp).unlink()
            raise EnvironmentFailure(f"cannot write blob: {exc.strerror}", path=str(target)) from exc
        return True

    def remove_blob(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.blob_path(sha256).unlink()

    def raw_bytes(self, tenant: str, sha256: str) -> bytes:
        """The document exactly as imported."""
        row = self.conn.execute(
            "SELECT content FROM raw_documents WHERE tenant = ? AND sha256 = ?", [tenant, sha256]
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no document with sha256 {sha256} for tenant {tenant!r}")
        if row[0] is not None:
            return bytes(row[0])
        return self.blob_path(sha256).read_bytes()

    def write_batch(self, batch: RowBatch, *, cur: duckdb.DuckDBPyConnection | None = None) -> None:
        """Insert every row of ``batch`` (call inside :meth:`transaction`; ``cur``: another thread's cursor)."""
        self.write_tables(batch.arrow_tables(), cur=cur)

    def write_tables(self, tables: Mapping[str, pa.Table], *, cur: duckdb.DuckDBPyConnection | None = None) -> None:
        """Insert Arrow tables of rows, by store table, with the columns of :data:`core.store.tables.TABLES`
        (call inside :meth:`transaction`; ``cur``: another thread's cursor)."""
        conn = cur or self.conn
        for table, arrow in tables.items():
            cols = ", ".join(f'"{c}"' for c, _ in TABLES[table])
            # A relation, not conn.register(): a registered Arrow table stays alive until the transaction ends
            # (even once unregistered), so a transaction of many batches (a large EPSS file) would grow without bound.
            conn.from_arrow(arrow).query("_batch", f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _batch")

    # -- reading ---------------------------------------------------------------------------
    def tenants(self) -> list[str]:
        rows = self.conn.execute("SELECT DISTINCT tenant FROM raw_documents ORDER BY tenant").fetchall()
        return [r[0] for r in rows]

    def stats(self, tenant: str | None = None) -> dict[str, dict[str, int]]:
        """Row counts per tenant and table (raw documents counted per kind too)."""
        out: dict[str, dict[str, int]] = {}
        where = "WHERE tenant = ?" if tenant else ""
        params = [tenant] if tenant else []
        for t_name in ["raw_documents", *NORMALIZED_TABLES]:
            for ten, count in self.conn.execute(
                f"SELECT tenant, count(*) FROM {t_name} {where} GROUP BY tenant", params
            ).fetchall():
                out.setdefault(ten, {})[t_name] = int(count)
        for ten, kind, count in self.conn.execute(
            f"SELECT tenant, kind, count(*) FROM raw_documents {where} GROUP BY tenant, kind", params
        ).fetchall():
            out.setdefault(ten, {})[f"documents.{kind}"] = int(count)
        for ten, count in self.conn.execute(
            f"SELECT tenant, count(DISTINCT advisory_id) FROM advisories {where} GROUP BY tenant", params
        ).fetchall():
            out.setdefault(ten, {})["advisories.distinct_ids"] = int(count)
        return out
