"""Snapshot of everything the store holds, minus what legitimately varies (times, source paths)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.home import Home
from core.store import Store
from core.store.tables import TABLES

VOLATILE = {"imported_at", "source_path"}


def store_state(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    with Store.open(Home(home), read_only=True) as store:
        out = {}
        for table, cols in TABLES.items():
            keep = ", ".join(f'"{c}"' for c, _ in cols if c not in VOLATILE)
            out[table] = store.conn.execute(f"SELECT {keep} FROM {table} ORDER BY ALL").fetchall()
        return out


def counts(home: Path) -> dict[str, int]:
    return {t: len(rows) for t, rows in store_state(home).items()}
