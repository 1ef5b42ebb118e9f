"""The workflow services the CLI and the TUI share: what each returns, refuses and leaves behind."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.durations import human_duration, parse_duration
from core.errors import BadInputError, EnvironmentFailure, ExitCode, UsageError
from core.home import Home
from core.keys import KeyAlgorithm
from core.query import ListKind
from core.runs import ExportRun, RunState
from core.store import Store, transaction
from services.data import data_stats, list_data
from services.export import ExportRequest, cancel_export, max_active_runs, read_recipients, run_export, show_run
from services.imports import import_files
from services.keys import export_public_key, generate_key
from services.profiles import create_profile, update_profile
from services.trust import add_trusted_key, list_trusted_keys, remove_trusted_key

SAMPLES = Path(__file__).parent.parent.parent / "samples"


# -- durations ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        (" 2W ", timedelta(weeks=2)),
        ("PT36H", timedelta(hours=36)),
    ],
)
def test_one_duration_grammar(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected == parse_duration(text, "--grace")


@pytest.mark.parametrize("text", ["", "0d", "soon", "7", "P", "-1d", "P1Y"])
def test_a_bad_duration_is_a_usage_error_or_bad_input_naming_its_option(text: str) -> None:
    with pytest.raises(UsageError, match="is not a duration") as usage:
        parse_duration(text)
    assert usage.value.exit_code == ExitCode.USAGE
    with pytest.raises(BadInputError, match=f"^--grace {text!r} is not a positive duration"):
        parse_duration(text, "--grace")


@pytest.mark.parametrize("text", ["2w", "6d", "36h", "90m", "45s"])
def test_human_duration_is_what_parse_duration_reads(text: str) -> None:
    assert human_duration(parse_duration(text)) == text


# -- transactions ---------------------------------------------------------------------------------


def test_a_transaction_rolls_back_on_any_exception_and_commits_otherwise(tmp_path: Path) -> None:
    with Store.open(Home(tmp_path / "home")) as store:
        cur = store.cursor()
        cur.execute("CREATE TABLE t (n INTEGER)")
        with pytest.raises(KeyboardInterrupt), transaction(cur):
            cur.execute("INSERT INTO t VALUES (1)")
            raise KeyboardInterrupt
        with store.transaction() as conn:
            conn.execute("INSERT INTO t VALUES (2)")
        assert store.conn.execute("SELECT list(n) FROM t").fetchone() == ([2],)


# -- keys and trust --------------------------------------------------------------------------------


def test_export_public_into_a_missing_directory_is_an_environment_failure(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    generate_key(home, "k", KeyAlgorithm.ED25519)
    target = tmp_path / "nowhere" / "k.pub"
    with pytest.raises(EnvironmentFailure, match="cannot write the public key") as caught:
        export_public_key(home, "k", target)
    assert caught.value.exit_code == ExitCode.ENVIRONMENT and not target.exists()
    assert export_public_key(home, "k", tmp_path / "k.pub") == (tmp_path / "k.pub").resolve()


def test_cli_export_public_fails_like_the_tui(stella: Any, tmp_path: Path) -> None:
    assert stella("keys", "generate", "k").code == 0
    res = stella("keys", "export-public", "k", "--out", tmp_path / "nowhere" / "k.pub")
    assert res.code == ExitCode.ENVIRONMENT and "cannot write the public key" in res.err


def test_trust_add_list_remove(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    generate_key(home, "k", KeyAlgorithm.ECDSA_P256)
    pub = export_public_key(home, "k", tmp_path / "k.pub")
    with pytest.raises(EnvironmentFailure, match="cannot read public key"):
        add_trusted_key(home, "p", tmp_path / "missing.pem")
    key = add_trusted_key(home, "p", pub, profiles=["json"])
    assert [k.label for k in list_trusted_keys(home)] == ["p"] and key.profiles == ("json",)
    removed = remove_trusted_key(home, "p")
    assert removed is not None and removed.keyid == key.keyid and list_trusted_keys(home) == []


# -- profiles, imports, data ---------------------------------------------------------------------------


def test_profile_update_says_whether_it_made_a_revision(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    created = create_profile(home, "acme", "nightly", "json:raw", ["compression_level=3"])
    assert created.ref == "nightly@1"
    same = update_profile(home, "acme", "nightly", ["compression_level=3"])
    assert not same.changed and same.text == "profile nightly@1 unchanged: same config"
    changed = update_profile(home, "acme", "nightly", ["compression_level=9"])
    assert changed.text == "profile nightly@2 (new revision)" and changed.to_dict()["changed"] is True


def test_import_then_data_pages(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    seen: list[str] = []
    summary = import_files(home, [SAMPLES], tenant="acme", on_result=lambda r: seen.append(r.path))
    assert summary.imported and len(seen) == summary.imported + summary.duplicates + summary.rejected + summary.skipped
    assert summary.rejected == 0 and summary.skipped == 1  # samples/SOURCES.md: documentation, passed by
    assert data_stats(home, "acme")["acme"]["raw_documents"] == summary.imported
    page = list_data(home, ListKind.DOCUMENTS, "acme", limit=2, offset=1)
    assert page.offset == 1 and len(page.items) == 2 and page.total == summary.imported
    assert page.columns == ["kind", "format", "document_id", "subject", "size", "sha256"]


# -- export runs -----------------------------------------------------------------------------------


def test_max_active_runs_refuses_a_bad_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STELLA_MAX_ACTIVE_RUNS", "0")
    with pytest.raises(UsageError, match="STELLA_MAX_ACTIVE_RUNS='0' is not a positive integer"):
        max_active_runs()
    monkeypatch.setenv("STELLA_MAX_ACTIVE_RUNS", "2")
    assert max_active_runs() == 2


def test_recipients_file_with_only_comments_is_refused(tmp_path: Path) -> None:
    listed = tmp_path / "recipients.txt"
    listed.write_text("# nobody\n\n")
    with pytest.raises(BadInputError, match="lists no recipient"):
        read_recipients([], listed)


def test_run_export_reports_the_planned_run_then_builds_it(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    import_files(home, [SAMPLES], tenant="acme")
    generate_key(home, "k", KeyAlgorithm.ED25519)
    planned: list[ExportRun] = []
    request = ExportRequest(
        tenant="acme", profile="json:raw", selectors=("format=osv",), key="k", out=tmp_path / "b.tar.zst"
    )
    done = run_export(home, request, on_planned=planned.append)
    assert [r.run_id for r in planned] == [done.run_id] and planned[0].state is RunState.PENDING
    assert done.state is RunState.SUCCEEDED and done.artifact_path == (tmp_path / "b.tar.zst").resolve()
    detail = show_run(home, done.run_id)
    assert [e.event_type for e in detail.events][:2] == ["planned", "started"]
    assert detail.to_dict()["distributions"][0]["target"] == str(done.artifact_path)


def test_cancel_through_the_store_or_by_request(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    import_files(home, [SAMPLES], tenant="acme")
    generate_key(home, "k", KeyAlgorithm.ED25519)
    from core.planner import plan_run
    from core.profiles import ProfileStore
    from core.selectors import parse_selectors

    with Store.open(home) as store:
        profile = ProfileStore(store).get("acme", "json:raw")
        run = plan_run(store, "acme", profile, parse_selectors([]), key_name="k", out_path=tmp_path / "x.tar.zst")
    asked = cancel_export(home, run.run_id, store_in_use=True)
    assert asked.run is None and asked.request is not None and asked.request.is_file()
    assert asked.text == f"asked run {run.run_id} to stop"
    assert asked.to_dict() == {"runId": run.run_id, "cancelRequested": str(asked.request)}
    done = cancel_export(home, run.run_id)
    assert done.run is not None and done.run.state is RunState.ABORTED
    assert done.text == f"run {run.run_id} is aborted" and done.to_dict()["state"] == "aborted"
