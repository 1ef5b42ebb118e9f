"""Migration 0005 and the locker's SQL: a store made before the locker gains its tables, and ids resolve per tenant."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from core.errors import ExitCode, NotFoundError, UsageError
from core.evidence_store import EvidenceBundle, EvidenceStore
from core.home import Home
from core.store import DUCKDB_CONFIG, Store, load_migrations

AT = datetime(2026, 12, 1, 12, 0, 0)


def _bundle(tenant: str, evidence_id: str) -> EvidenceBundle:
    return EvidenceBundle(
        tenant=tenant,
        evidence_id=evidence_id,
        kind="run",
        subject="run-x",
        created_at=AT,
        created_by="tester",
        root_hash="ab" * 32,
        tree_size=1,
        digest="sha256:" + "cd" * 32,
        size=10,
        key_id="ef" * 32,
        timestamped=False,
        redaction_profile="standard",
        custody_head="01" * 32,
        retention_until=AT,
        previous_id=None,
        archive_path="evidence/bundles/x.tgz",
    )


def test_a_store_from_before_the_locker_gains_its_tables(tmp_path: Path) -> None:
    home = Home(tmp_path / "home").ensure()
    conn = duckdb.connect(str(home.store_path), config=dict(DUCKDB_CONFIG))
    conn.execute(
        "CREATE TABLE schema_version (version INTEGER NOT NULL, name VARCHAR NOT NULL,"
        " applied_at TIMESTAMP NOT NULL, tool_version VARCHAR NOT NULL)"
    )
    for mig in load_migrations():
        if mig.version <= 4:
            conn.execute(mig.sql)
            conn.execute("INSERT INTO schema_version VALUES (?, ?, ?, ?)", [mig.version, mig.name, AT, "old"])
    conn.close()
    with Store.open(home) as store:
        assert store.schema_version() >= 5
        names = {r[0] for r in store.conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert {"evidence_bundles", "evidence_artifacts", "evidence_holds", "evidence_custody_events"} <= names
        es = EvidenceStore(store.conn)
        es.insert_bundle(_bundle("a", "ev-20261201T120000Z-00000001"), [])
        es.insert_bundle(_bundle("a", "ev-20261201T120000Z-00000002"), [])
        es.insert_bundle(_bundle("b", "ev-20261201T120000Z-00000003"), [])
        assert es.resolve("a", "ev-20261201T120000Z-00000001") == "ev-20261201T120000Z-00000001"
        with pytest.raises(UsageError) as ambiguous:
            es.resolve("a", "ev-2026")
        assert ambiguous.value.exit_code == ExitCode.USAGE
        with pytest.raises(NotFoundError) as other:  # tenant b's bundle does not exist for tenant a
            es.resolve("a", "ev-20261201T120000Z-00000003")
        assert "tenant 'a'" in other.value.message
        assert [b.evidence_id for b in es.list("b")] == ["ev-20261201T120000Z-00000003"]
        assert es.used_bytes("a") == 20 and es.used_bytes("c") == 0
        assert es.settings("c").quota_bytes is None
