"""Property tests: import is idempotent, and the final state does not depend on order or batching."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.sources.registry import SOURCES
from core.home import Home
from core.ingest import Importer
from core.store import Store
from tests.conftest import ROOT
from tests.integration.state import store_state

# Small real documents of several formats, including two revisions of one advisory.
POOL = sorted(
    p for p in (ROOT / "samples").rglob("*") if p.is_file() and p.name != "SOURCES.md" and p.stat().st_size < 200_000
)


def _import(home: Path, groups: list[list[Path]], batch_size: int) -> None:
    with Store.open(Home(home)) as store:
        for group in groups:
            Importer(store, SOURCES, batch_size=batch_size).run(group)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chosen=st.lists(st.sampled_from(POOL), min_size=1, max_size=len(POOL)),
    data=st.data(),
    batch_size=st.integers(min_value=1, max_value=7),
)
def test_final_state_is_order_and_batch_independent_and_idempotent(
    chosen: list[Path], data: st.DataObject, batch_size: int
) -> None:
    shuffled = data.draw(st.permutations(chosen))
    cut = data.draw(st.integers(min_value=0, max_value=len(shuffled)))
    tmp = Path(tempfile.mkdtemp())
    try:
        reference, candidate = tmp / "ref", tmp / "cand"
        _import(reference, [sorted(set(chosen))], batch_size=1000)
        # Shuffled, with duplicates, split across two imports, small batches, then everything again.
        _import(candidate, [shuffled[:cut], shuffled[cut:], shuffled], batch_size=batch_size)
        assert store_state(candidate) == store_state(reference)
    finally:
        shutil.rmtree(tmp)
