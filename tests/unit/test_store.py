"""The store: migrations, version check, one-writer lock, no network, blobs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from core.errors import StoreLockedError, StoreVersionError
from core.home import Home, resolve_home
from core.store import DUCKDB_CONFIG, Store, latest_schema_version
from core.store.tables import TABLES

SEED_TABLES = ["export_profiles", "export_runs", "export_inputs", "export_distributions", "export_events"]


def test_new_store_is_migrated_to_latest_and_has_seed_tables(tmp_path: Path) -> None:
    with Store.open(Home(tmp_path)) as store:
        assert store.schema_version() == latest_schema_version()
        names = {r[0] for r in store.conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert set(SEED_TABLES) <= names
    assert set(TABLES) <= names


def test_every_table_has_a_tenant_column(tmp_path: Path) -> None:
    with Store.open(Home(tmp_path)) as store:
        rows = store.conn.execute(
            "SELECT table_name, list(column_name) FROM information_schema.columns"
            " WHERE table_schema = 'main' AND table_name != 'schema_version' GROUP BY table_name"
        ).fetchall()
    missing = [t for t, cols in rows if "tenant" not in cols]
    assert rows and missing == []


def test_column_specs_match_the_migrated_tables(tmp_path: Path) -> None:
    with Store.open(Home(tmp_path)) as store:
        for table, spec in TABLES.items():
            cols = [r[0] for r in store.conn.execute(f"DESCRIBE {table}").fetchall()]
            assert cols == [c for c, _ in spec], table


def test_store_written_by_newer_version_is_refused(tmp_path: Path) -> None:
    home = Home(tmp_path)
    Store.open(home).close()
    conn = duckdb.connect(str(home.store_path))
    conn.execute("INSERT INTO schema_version VALUES (999, '0999_future.sql', now()::TIMESTAMP, '9.9.9')")
    conn.close()
    with pytest.raises(StoreVersionError) as err:
        Store.open(home)
    assert "schema version 999" in err.value.message
    assert "upgrade stella" in err.value.diagnostics()


def test_second_writer_gets_locked_error_with_pid(tmp_path: Path) -> None:
    home = Home(tmp_path)
    Store.open(home).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import sys, time
                from pathlib import Path
                from core.home import Home
                from core.store import Store
                s = Store.open(Home(Path({str(tmp_path)!r})))
                print("ready", flush=True)
                sys.stdin.readline()
                s.close()
            """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError) as err:
            Store.open(home)
        assert f"store is locked by PID {holder.pid}" in err.value.message
        with pytest.raises(StoreLockedError):
            Store.open(home, read_only=True)
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=30)
    Store.open(home).close()  # released: a writer gets in again


def test_readers_share_the_store(tmp_path: Path) -> None:
    home = Home(tmp_path)
    Store.open(home).close()
    with Store.open(home, read_only=True) as a, Store.open(home, read_only=True) as b:
        assert a.schema_version() == b.schema_version() == latest_schema_version()


def test_duckdb_cannot_reach_files_or_network(tmp_path: Path) -> None:
    assert DUCKDB_CONFIG["autoinstall_known_extensions"] is False
    assert DUCKDB_CONFIG["autoload_known_extensions"] is False
    with Store.open(Home(tmp_path)) as store:
        with pytest.raises(duckdb.Error):
            store.conn.execute("SELECT * FROM read_csv('/etc/hostname')").fetchall()
        with pytest.raises(duckdb.Error):
            store.conn.execute("SELECT * FROM read_parquet('https://example.com/x.parquet')").fetchall()


def test_blobs_are_content_addressed_and_atomic(tmp_path: Path) -> None:
    with Store.open(Home(tmp_path)) as store:
        sha = "ab" * 32
        assert store.put_blob(sha, b"hello") is True
        assert store.put_blob(sha, b"hello") is False
        assert store.blob_path(sha).read_bytes() == b"hello"
        assert store.blob_path(sha).parent.name == "ab"
        assert not [p for p in store.blob_path(sha).parent.iterdir() if p.name.startswith(".tmp-")]


def test_home_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STELLA_HOME", str(tmp_path / "env"))
    assert resolve_home(str(tmp_path / "flag")).root == tmp_path / "flag"
    assert resolve_home(None).root == tmp_path / "env"
    monkeypatch.delenv("STELLA_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert resolve_home(None).root == tmp_path / "xdg" / "stella"
