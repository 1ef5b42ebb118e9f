"""The sender's mirror state records: a chained record (a delta's puts and removals beside its base's record) resolves
to the live documents a full record lists, chains are compacted past their bound, and first-format records load."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import orjson
import pytest
import zstandard

from adapters.profiles import mirror
from adapters.profiles.mirror import StateRecords, live_table
from core.canonical import canonical_json
from core.errors import NotFoundError
from core.home import Home
from core.mirror_layout import IndexedDocument, MirrorState


def _sha(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def _doc(n: int, pack: str) -> IndexedDocument:
    return IndexedDocument(
        _sha(n), "advisory" if n % 3 else "vex", "osv", f"ID-{n}", "application/json", "", (), pack, 0, 1
    )


def _state(sequence: int, documents: int, base: str | None = None) -> MirrorState:
    return MirrorState(
        tenant="default",
        run_id=f"run-{sequence}",
        created_at="2026-12-08T00:00:00Z",
        sequence=sequence,
        base=base,
        segments=(),
        files=(),
        counts={"documents": documents},
    )


def _live(records: StateRecords, digest: str) -> set[tuple[str, str, str]]:
    """The live documents of ``digest`` resolved in Python, checked against the view a delta resolves them with in
    the store."""
    live = records.live(digest)
    table = live.table()
    resolved = set(zip(*(table[c].to_pylist() for c in ("sha256", "kind", "pack")), strict=True))
    conn = duckdb.connect()
    live.register(conn, "base")
    assert set(conn.execute("SELECT sha256, kind, pack FROM base").fetchall()) == resolved
    assert conn.execute("SELECT count(*) FROM base").fetchone() == (len(resolved),)
    return resolved


def _expected(docs: dict[str, IndexedDocument]) -> set[tuple[str, str, str]]:
    return {(d.sha256, d.kind, d.pack) for d in docs.values()}


@pytest.fixture
def records(tmp_path: Path) -> StateRecords:
    return StateRecords(Home(tmp_path / "home"))


def _full(records: StateRecords, n: int) -> tuple[MirrorState, dict[str, IndexedDocument]]:
    docs = {d.sha256: d for d in (_doc(i, "data/raw/a.pack") for i in range(n))}
    state = _state(0, n)
    records.save(state, live_table(list(docs), [d.kind for d in docs.values()], [d.pack for d in docs.values()]))
    return state, docs


def _delta(
    records: StateRecords,
    base: MirrorState,
    docs: dict[str, IndexedDocument],
    remove: list[int],
    add: list[int],
    pack: str,
) -> tuple[MirrorState, dict[str, IndexedDocument]]:
    removed = sorted(_sha(i) for i in remove)
    added = [_doc(i, pack) for i in add]
    live = {k: v for k, v in docs.items() if k not in removed} | {d.sha256: d for d in added}
    state = _state(base.sequence + 1, len(live), base.digest)
    records.save_delta(state, records.load(base.digest), removed, added)
    return state, live


def test_a_chain_of_deltas_resolves_to_what_a_full_record_lists(
    records: StateRecords, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, docs = _full(records, 100)
    chain = [(state, docs)]
    # removals, re-additions of removed documents, documents put by one delta and removed by the next
    for step, (remove, add) in enumerate([([1, 2], [100, 101]), ([100, 3], [1, 102]), ([101], [2, 3, 103])]):
        state, docs = _delta(records, state, docs, remove, add, f"data/raw/d{step}.pack")
        chain.append((state, docs))
        header = records.load(state.digest)
        assert header.chain_base == chain[-2][0].digest and header.depth == step + 1
        assert header.state == state
        assert _live(records, state.digest) == _expected(docs)
    assert _live(records, chain[1][0].digest) == _expected(chain[1][1])  # every link still resolves on its own

    # The same delta compacted into a full record lists the same documents.
    monkeypatch.setattr(mirror, "MAX_CHAIN", 0)
    compact = StateRecords(Home(records.dir.parent.parent.parent / "other"))
    base_state, base_docs = chain[-2]
    compact.save(base_state, records.live(base_state.digest).table())
    final, final_docs = _delta(compact, base_state, base_docs, [101], [2, 3, 103], "data/raw/d2.pack")
    assert compact.load(final.digest).chain_base is None
    assert _live(compact, final.digest) == _live(records, chain[-1][0].digest) == _expected(final_docs)


def test_chains_are_compacted_past_their_bound(records: StateRecords, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mirror, "MAX_CHAIN", 2)
    state, docs = _full(records, 100)
    depths = []
    for step in range(4):
        state, docs = _delta(records, state, docs, [step], [200 + step], f"data/raw/d{step}.pack")
        depths.append(records.load(state.digest).depth)
        assert _live(records, state.digest) == _expected(docs)
    assert depths == [1, 2, 0, 1]
    # A delta whose chain would hold more rows than a quarter of the live documents is compacted too.
    big, big_docs = _delta(records, state, docs, list(range(10, 40)), [], "data/raw/x.pack")
    assert records.load(big.digest).chain_base is None and _live(records, big.digest) == _expected(big_docs)


def test_a_first_format_record_loads_and_serves_as_a_base(records: StateRecords) -> None:
    docs = {d.sha256: d for d in (_doc(i, "data/raw/a.pack") for i in range(50))}
    state = _state(0, 50)
    lines = [canonical_json({"state": state.to_dict()})] + [canonical_json(docs[s].to_dict()) for s in sorted(docs)]
    records.dir.mkdir(parents=True)
    (records.dir / f"{state.digest}.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b"\n".join(lines)))

    assert records.load(state.digest).state == state
    assert _live(records, state.digest) == _expected(docs)
    delta, live = _delta(records, state, docs, [4], [60], "data/raw/b.pack")
    assert records.load(delta.digest).chain_base == state.digest
    assert _live(records, delta.digest) == _expected(live)


def test_a_record_this_home_did_not_build_is_not_found(records: StateRecords) -> None:
    with pytest.raises(NotFoundError, match="did not build mirror state"):
        records.load("0" * 64)
    state, _ = _full(records, 3)
    header = orjson.loads((records.runs / "run-0.json").read_text())
    assert header == {"stateDigest": state.digest}
