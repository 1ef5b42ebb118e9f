"""Structured logs: a real run writes JSON lines with its fields into the home's log; -v shows human lines on stderr
and nothing changes without it; secrets (a key's passphrase, an age passphrase, a registry password, tokens, private
keys) never reach the log, the run's events, the timeline, the spans or the metrics textfile; the log rotates."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from core.home import Home
from core.log_fields import FIELDS
from services import logs
from tests.conftest import ROOT

SAMPLES = ROOT / "samples"
KEY_PASSPHRASE = "plum-orchard-4471-kestrel"
AGE_PASSPHRASE = "harbour-lantern-9082-vole"
REGISTRY_PASSWORD = "s3cr3t-registry-pw-55e1"
ACCESS_TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJvcHMifQ.c2lnbmF0dXJlLWJ5dGVz"


def _lines(home: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (home / "logs" / "stella.jsonl").read_text().splitlines()]


@pytest.fixture
def imported(stella: Any) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0


def test_a_run_logs_json_lines_carrying_its_fields(stella: Any, imported: None, home: Path, tmp_path: Path) -> None:
    assert stella("keys", "generate", "k").code == 0
    res = stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "a.tar.zst", "--json")
    assert res.code == 0, res.err
    run = res.json()
    lines = _lines(home)
    for line in lines:
        assert set(FIELDS) | {"time", "level", "logger", "message", "trace_id"} <= set(line)
    mine = [line for line in lines if line["run_id"] == run["runId"]]
    assert {line["phase"] for line in mine} >= {"plan", "resolve", "adapter", "manifest", "sign"}
    for line in mine:
        assert line["tenant"] == "default" and line["profile_kind"] == "json" and line["adapter"] == "json:raw"
        assert line["correlation_id"] == run["correlationId"] and line["error_code"] is None
        assert line["trace_id"] == run["correlationId"].replace("-", "")
    assert all(line["level"] != "debug" for line in lines)  # info unless asked (or an incident is open)
    assert "phase" not in res.err  # without -v the terminal shows what it always did


def test_a_failed_phase_is_logged_with_its_error_code(stella: Any, imported: None, home: Path, tmp_path: Path) -> None:
    assert stella("keys", "generate", "k").code == 0
    missing = tmp_path / "no-such-passphrase"
    res = stella(
        "export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "a.tar.zst",
        "--encrypt-passphrase-file", missing,
    )  # fmt: skip
    assert res.code == 3, res.err
    failed = [line for line in _lines(home) if line["level"] == "error" and line["phase"] == "resolve"]
    assert failed and failed[0]["error_code"] == "bad-input" and failed[0]["run_id"] is not None


def test_v_shows_human_log_lines_on_stderr(stella: Any, imported: None, tmp_path: Path) -> None:
    assert stella("keys", "generate", "k").code == 0
    res = stella("-v", "export", "run", "--profile", "json:raw", "--key", "k", "--out", tmp_path / "a.tar.zst")
    assert res.code == 0, res.err
    shown = [line for line in res.err.splitlines() if " info " in line]
    assert any(" plan " in line and "phase plan done" in line for line in shown)
    assert any(" sign " in line and "run-" in line for line in shown)
    assert "succeeded run-" in res.out  # the normal output is unchanged
    debug = stella("--log-level", "debug", "export", "runs")
    assert debug.code == 0 and "run-" in debug.out


def test_no_secret_reaches_logs_events_timeline_spans_or_metrics(
    stella: Any, imported: None, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "key-pass"
    key_file.write_text(KEY_PASSPHRASE + "\n")
    assert stella("keys", "generate", "locked", "--algorithm", "ed25519", "--passphrase-file", key_file).code == 0
    age_file = tmp_path / "age-pass"
    age_file.write_text(AGE_PASSPHRASE + "\n")
    monkeypatch.setenv("STELLA_PASSWORD", KEY_PASSPHRASE)  # the signing key is unlocked from the environment
    monkeypatch.setenv("STELLA_REGISTRY_PASSWORD", REGISTRY_PASSWORD)
    monkeypatch.setenv("STELLA_TOKEN", ACCESS_TOKEN)
    prom, trace = tmp_path / "stella.prom", tmp_path / "trace.json"
    res = stella(
        "--log-level", "debug", "export", "run", "--profile", "json:raw", "--key", "locked",
        "--out", tmp_path / "a.tar.zst", "--encrypt-passphrase-file", age_file,
        "--metrics-textfile", prom, "--trace-file", trace, "--json",
    )  # fmt: skip
    assert res.code == 0, res.err
    run = res.json()
    assert run["state"] == "succeeded"
    # Whatever a component logs, the redaction filter catches: log the secrets the way careless code would.
    careless = logging.getLogger("stella.test")
    careless.warning("retrying push with password=%s and token %s", REGISTRY_PASSWORD, ACCESS_TOKEN)
    careless.warning("unlocking with %s then %s", KEY_PASSPHRASE, AGE_PASSPHRASE)
    careless.warning("key material -----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----")
    careless.warning("identity AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS")
    shown = stella("export", "show", run["runId"], "--json")
    timeline = stella("timeline", "list", "--run", run["runId"], "--json")
    assert shown.code == 0 and timeline.code == 0
    log_text = (home / "logs" / "stella.jsonl").read_text()
    assert log_text.count("[redacted]") >= 6
    places = {
        "log": log_text,
        "events": shown.out,
        "timeline": timeline.out,
        "spans": trace.read_text(),
        "metrics": prom.read_text(),
        "terminal": res.out + res.err,
    }
    secrets = (KEY_PASSPHRASE, AGE_PASSPHRASE, REGISTRY_PASSWORD, ACCESS_TOKEN, "AGE-SECRET-KEY-1", "MC4CAQAwBQYDK2Vw")
    for place, text in places.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} found in the {place}"
    assert run["runId"] in log_text and run["runId"] in shown.out  # the places were really written


def test_the_log_rotates_by_size_keeping_a_bounded_number_of_files(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    home.root.mkdir()
    logs.configure(home, max_bytes=4096, backups=3)
    try:
        log = logging.getLogger("stella.test")
        for i in range(400):
            log.info("line %d of a long enough message to fill the file quickly", i)
    finally:
        logs.configure(None)
    files = sorted(p.name for p in (home.root / "logs").iterdir())
    assert files == ["stella.jsonl", "stella.jsonl.1", "stella.jsonl.2", "stella.jsonl.3"]
    assert all((home.root / "logs" / f).stat().st_size <= 4096 for f in files)
    assert (home.root / "logs" / "stella.jsonl").stat().st_mode & 0o777 == 0o600
    last = json.loads((home.root / "logs" / "stella.jsonl").read_text().splitlines()[-1])
    assert last["message"].startswith("line 399 ")


def test_no_home_no_log(tmp_path: Path) -> None:
    home = Home(tmp_path / "absent")
    logs.configure(home)
    try:
        logging.getLogger("stella.test").error("a receiver with no home")
    finally:
        logs.configure(None)
    assert not home.root.exists()  # logging never creates a home


def test_a_passphrase_read_from_a_file_is_never_logged(
    stella: Any, imported: None, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STELLA_PASSWORD", raising=False)
    key_file = tmp_path / "key-pass"
    key_file.write_text(KEY_PASSPHRASE + "\n")
    assert stella("keys", "generate", "locked", "--algorithm", "ed25519", "--passphrase-file", key_file).code == 0
    res = stella(
        "export", "run", "--profile", "json:raw", "--key", "locked", "--passphrase-file", key_file,
        "--out", tmp_path / "a.tar.zst",
    )  # fmt: skip
    assert res.code == 0, res.err
    logging.getLogger("stella.test").warning("the key opened with %r", KEY_PASSPHRASE)  # careless code
    text = (home / "logs" / "stella.jsonl").read_text()
    assert "the key opened with '[redacted]'" in text and KEY_PASSPHRASE not in text
