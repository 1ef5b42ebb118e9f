"""`stella evidence verify` on the sample sealed bundles and on each tampered copy: the exit code and the failing
check a user sees are the offline script's, for every case of ``tests/unit/test_evidence_seal.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests import evidence_fixture
from tests.unit.test_evidence_seal import CASES, Verdict, repack, script_verdict
from tests.unit.test_evidence_seal import script as script

FIXTURE = evidence_fixture.FIXTURE
KEY = FIXTURE / "signer.pub"
TSA_CA = FIXTURE / "tsa-ca.pem"


def _cli(stella: Any, path: Path, *extra: str | Path) -> tuple[int, dict[str, Any]]:
    result = stella("evidence", "verify", path, "--key", KEY, "--tsa-cert", TSA_CA, "--json", *extra)
    return result.code, orjson.loads(result.out)


def test_the_samples_verify_check_by_check(stella: Any) -> None:
    for name in evidence_fixture.BUNDLES:
        result = stella("evidence", "verify", FIXTURE / f"{name}.tgz", "--key", KEY, "--tsa-cert", TSA_CA)
        assert result.code == 0, result.err
        for check in ("checksums", "signature", "merkle root", "inclusion proofs", "custody", "timestamp"):
            assert check in result.out + result.err
        code, report = _cli(stella, FIXTURE / f"{name}.tgz")
        assert code == 0 and report["verified"] is True
        assert report["manifest"]["evidenceId"].startswith("ev-sample-")
        assert report["timestamp"]["hash"] == "sha256"


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_tampering_exits_as_the_offline_script_does(name: str, stella: Any, script: Path, tmp_path: Path) -> None:
    bundle, mutate, fix_sums, code, check = CASES[name]
    path = tmp_path / f"{bundle}.tgz"
    path.write_bytes(repack((FIXTURE / f"{bundle}.tgz").read_bytes(), mutate, fix_sums=fix_sums))
    exit_code, report = _cli(stella, path)
    failed = [c["check"] for c in report["checks"] if not c["ok"]]
    assert (exit_code, failed) == (code, [check])
    assert report["verified"] is False and report["exitCode"] == code
    assert script_verdict(script, path, [KEY], [TSA_CA]) == Verdict(exit_code, failed[0])
