"""Every invalid sample, through the real `stella import`: rejected with a reason, store unchanged.

A few files in the corpus's invalid/ folders are not import-time failures, and are listed below with why:
they fail verification or policy checks that run later, or their defect cannot be seen offline. Their
adapter tests document each case; here they must import, so the list cannot silently grow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES
from tests.integration.state import store_state

NOT_IMPORT_TIME = {
    # Signature / transparency-log / builder-policy failures: structurally valid, verified later.
    "dsse/invalid/binary-linux-amd64-expired-cert.intoto.jsonl",
    "dsse/invalid/binary-linux-amd64-untrusted-builder.intoto.jsonl",
    "sigstore-bundle/invalid/bundle_cve_2022_36056.txt.sigstore",
    "sigstore-bundle/invalid/invalid-dsse-sig.intoto.sigstore",
    "sigstore-bundle/invalid/mismatch-tlog.intoto.sigstore",
    # "package Gradi0 does not exist in PyPI": needs the registry, which an offline importer cannot ask.
    "osv/invalid/nopackage-GHSA-9v2f-6vcg-3hgv.json",
    # osv-linter's "range events must be distinct" (one empty GIT interval): a lint finding, imported with a warning.
    "osv/invalid/nondistinct-CVE-2018-5407.json",
    # Every dependency ref resolves (components may lack a bom-ref); Trivy's own test imports it too.
    "cyclonedx/invalid/bom-missing-refs.json",
}

INVALID = sorted(
    str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/invalid/*") if p.is_file() and p.name != "SOURCES.md"
)


def test_the_exception_list_names_real_files() -> None:
    assert set(INVALID) >= NOT_IMPORT_TIME


@pytest.mark.parametrize("rel", [r for r in INVALID if r not in NOT_IMPORT_TIME])
def test_invalid_sample_is_rejected_and_store_unchanged(stella: Any, home: Path, rel: str) -> None:
    assert stella("data", "stats").code == 0
    before = store_state(home)
    res = stella("import", "--json", FIXTURES / rel)
    assert res.code == 3, res.out
    docs = [e for e in res.json_lines() if e.get("event") == "document"]
    assert len(docs) == 1 and docs[0]["outcome"] == "rejected"
    assert len(str(docs[0]["reason"])) > 10
    assert store_state(home) == before


@pytest.mark.parametrize("rel", sorted(NOT_IMPORT_TIME))
def test_verification_time_failures_import_as_unverified(stella: Any, rel: str) -> None:
    res = stella("import", "--json", FIXTURES / rel)
    assert res.code == 0, res.out
