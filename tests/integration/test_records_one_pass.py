"""The one-pass record readers give exactly the records of the windowed SQL they replace, on real samples.

``adapters.profiles._records.advisory_records`` / ``vex_records`` / ``sbom_records`` (one sorted pass per table,
merged in Python) against ``stream`` over ``ADVISORIES`` / ``VEX`` / ``SBOMS`` (DuckDB's correlated subqueries
per window of inputs), for a run over every sample (OSV, GHSA, CSAF, CVE 5, OpenVEX, CSAF VEX, CycloneDX, SPDX).
And the mirror's one-pass purls and aliases against its DOCUMENTS query.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.profiles._raw_content import layout_rows
from adapters.profiles._records import (
    ADVISORIES,
    SBOMS,
    VEX,
    Children,
    advisory_records,
    sbom_records,
    sorted_rows,
    stream,
    vex_records,
)
from adapters.profiles.mirror import ALIASES, DOCUMENTS, PURLS, _purls
from core.home import Home
from core.store import Store
from tests.conftest import ROOT

SAMPLES = ROOT / "samples"
FIXTURES = ROOT / "tests" / "fixtures"
#: Real documents of every format the records come from (some fixture files are invalid on purpose: refused).
REAL = ("osv", "osv-real", "ghsa", "csaf", "cve5", "csaf-vex", "openvex", "cyclonedx", "cyclonedx-vex", "spdx")


@pytest.fixture
def run(stella: Any, home: Path, tmp_path: Path) -> tuple[str, str]:
    assert stella("import", "--quiet", *sorted(p for p in SAMPLES.iterdir() if p.is_dir())).code == 0
    assert stella("import", "--quiet", *(FIXTURES / name for name in REAL)).code in (0, 3)
    assert stella("keys", "generate", "k").code == 0
    out = tmp_path / "b.tar.zst"
    result = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", out, "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)["runId"], "default"


@pytest.mark.parametrize(
    ("sql", "reader", "least"),
    [(ADVISORIES, advisory_records, 40), (VEX, vex_records, 5), (SBOMS, sbom_records, 3)],
    ids=["advisories", "vex", "sboms"],
)
def test_one_pass_records_equal_the_windowed_ones(
    run: tuple[str, str], home: Path, sql: str, reader: Any, least: int
) -> None:
    with Store.open(Home(home), read_only=True) as store:
        cursor = store.cursor()
        params = [run[0], run[1]]
        windowed = list(stream(cursor, sql, params))
        one_pass = list(reader(cursor, params))
    assert len(windowed) >= least  # the samples exercise this kind of record
    assert one_pass == windowed


def test_mirror_purls_and_aliases_equal_the_documents_query(run: tuple[str, str], home: Path) -> None:
    with Store.open(Home(home), read_only=True) as store:
        cursor = store.cursor()
        params = [run[0], run[1]]
        expected = {
            row["sha256"]: (_purls(row.get("purls") or []), list(row.get("aliases") or []))
            for row in stream(cursor, DOCUMENTS, params)
        }
        layout = list(layout_rows(cursor, params))
        ordinals = [row[0] for row in layout]
        purls = Children(sorted_rows(cursor, PURLS, [*params, ordinals]), 1)
        aliases = Children(sorted_rows(cursor, ALIASES, [*params, ordinals]), 1)
        got = {
            row[1]: (
                _purls([r[1] for r in purls.get((row[0],)) or ()]),
                [r[1] for r in aliases.get((row[0],)) or ()],
            )
            for row in layout
        }
    assert got == expected
    assert any(p for p, _ in got.values()) and any(a for _, a in got.values())
