"""What the start-up work left out of `stella verify` still behaves as it did where it is used: the receive
registry's freshness policies are the risk verifier's, the verify metric's result labels are the failure classes,
and the home's log file (whose handler is made by the first line logged) is written, 0600 in a 0700 directory, and
rotated, with nothing created in a home that does not exist."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from core.failure import FailureClass
from services import metrics, receive
from tests.conftest import ROOT
from verify.risk import FreshnessPolicy, verify_risk_bundle


def test_the_receive_registry_offers_the_risk_verifiers_policies() -> None:
    assert tuple(str(p) for p in FreshnessPolicy) == receive.FRESHNESS_POLICIES
    assert str(FreshnessPolicy.BLOCK) == receive.DEFAULT_FRESHNESS_POLICY
    assert verify_risk_bundle.__kwdefaults__["policy"] is FreshnessPolicy.BLOCK
    assert receive.ReceiveRequest(Path("b")).policy == receive.DEFAULT_FRESHNESS_POLICY
    (policy,) = [o for o in receive.RISK.options if o.field == "policy"]
    assert policy.choices == receive.FRESHNESS_POLICIES and policy.default == receive.DEFAULT_FRESHNESS_POLICY


def test_the_verify_metrics_result_labels_are_verified_and_each_failure_class() -> None:
    assert metrics.verify_results() == ("verified", *(c.value for c in FailureClass))


# Configures the logs of the home named first, says whether logging.handlers was loaded (or the redaction patterns
# compiled), logs one line (and, with
# a second argument, 40 more of 200 bytes into a 4 KiB file keeping 2 backups), then says it again.
LOGS = """
import json, logging, sys
from pathlib import Path
from core.home import Home
from services import logs
logs.configure(Home(Path(sys.argv[1])), **({"max_bytes": 4096, "backups": 2} if len(sys.argv) > 2 else {}))
before = "logging.handlers" in sys.modules or logs._patterns.cache_info().currsize > 0  # nor the redaction
log = logging.getLogger("stella.test")
log.info("first line")
for n in range(40 if len(sys.argv) > 2 else 0):
    log.info("line %d %s", n, "x" * 200)
logging.shutdown()
print(json.dumps({"before": before, "after": "logging.handlers" in sys.modules}))
"""


def _log(home: Path, *more: str) -> dict[str, bool]:
    run = subprocess.run(
        [sys.executable, "-c", LOGS, str(home), *more], capture_output=True, text=True, cwd=ROOT, check=True
    )
    found: dict[str, bool] = json.loads(run.stdout)
    return found


def test_the_log_file_handler_is_made_by_the_first_line_and_writes_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert _log(home) == {"before": False, "after": True}
    log = home / "logs" / "stella.jsonl"
    (line,) = log.read_text().splitlines()
    assert json.loads(line)["message"] == "first line"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700


def test_a_home_that_does_not_exist_gets_no_log(tmp_path: Path) -> None:
    _log(tmp_path / "absent")
    assert not (tmp_path / "absent").exists()


def test_the_log_rotates_through_the_lazily_made_handler(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _log(home, "rotate")
    files = sorted(p.name for p in (home / "logs").iterdir())
    assert files == ["stella.jsonl", "stella.jsonl.1", "stella.jsonl.2"]
    for path in (home / "logs").iterdir():
        assert 0 < path.stat().st_size < 4096
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    last = json.loads((home / "logs" / "stella.jsonl").read_text().splitlines()[-1])
    assert last["message"].startswith("line 39 ")
