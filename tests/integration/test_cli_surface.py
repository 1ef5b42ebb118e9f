"""What the `stella` command shows a new operator: how it starts, how its tables read at 80 columns and in a pipe."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, CliResult

Stella = Callable[..., CliResult]
SAMPLES = ROOT / "samples"
STELLA = [sys.executable, "-m", "app.cli"]


def _run(*args: str, home: Path, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STELLA_HOME": str(home), "COLUMNS": str(columns)}
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        env.pop(name, None)
    return subprocess.run([*STELLA, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def _read_until(fd: int, wanted: bytes, seconds: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + seconds
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


@pytest.mark.parametrize("home_args", [["--home", "{home}"], ["--home={home}"]])
def test_stella_with_only_a_home_on_a_terminal_opens_the_tui(tmp_path: Path, home_args: list[str]) -> None:
    args = [arg.format(home=tmp_path / "home") for arg in home_args]
    controller, terminal = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    process = subprocess.Popen(
        [*STELLA, *args], cwd=ROOT, env=env, stdin=terminal, stdout=terminal, stderr=terminal, close_fds=True
    )
    os.close(terminal)
    try:
        screen = _read_until(controller, b"palette", 60)
        assert b"usage:" not in screen
        assert b"\x1b[?1049h" in screen  # the TUI took the terminal's alternate screen
        assert b"palette" in screen  # and drew its footer
        os.write(controller, b"\x11")  # ctrl+q
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)


def test_stella_with_only_a_home_not_on_a_terminal_prints_usage(tmp_path: Path) -> None:
    result = _run("--home", str(tmp_path / "home"), home=tmp_path / "home")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: stella")


def test_tui_refuses_json(stella: Stella) -> None:
    result = stella("tui", "--json")
    assert result.code == 2
    assert "--json is not accepted" in result.err


def _runs_and_profiles(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    assert _run("import", "--quiet", str(SAMPLES / "advisories"), home=home).returncode == 0
    assert _run("keys", "generate", "release", home=home).returncode == 0
    out = tmp_path / "b.tar.zst"
    assert (
        _run("export", "run", "--profile", "json:raw", "--key", "release", "--out", str(out), home=home).returncode == 0
    )
    return home


def _identifiers(home: Path) -> list[str]:
    runs = _run("export", "runs", "--json", home=home)
    (run,) = [r["runId"] for r in json.loads(runs.stdout)["runs"]]
    return [run, "attestation:bundle", "GHSA-mp6f-p9gp-vpj9", "risk:simulation"]


def test_tables_in_a_pipe_at_80_columns_keep_every_identifier_whole(tmp_path: Path) -> None:
    home = _runs_and_profiles(tmp_path)
    shown = "".join(
        _run(*args, home=home, columns=80).stdout
        for args in (["export", "runs"], ["export", "profile", "list"], ["data", "list", "advisories"])
    )
    for identifier in _identifiers(home):
        assert identifier in shown
    assert "Apache Log4j2 2.0-beta9 through" in shown  # in a pipe, prose is not wrapped either


def test_tables_on_an_80_column_terminal_keep_every_identifier_whole(tmp_path: Path) -> None:
    home = _runs_and_profiles(tmp_path)
    shown = b""
    for args in (["export", "runs"], ["export", "profile", "list"], ["data", "list", "advisories"]):
        controller, terminal = pty.openpty()
        env = {**os.environ, "STELLA_HOME": str(home), "COLUMNS": "80", "LINES": "24", "TERM": "dumb"}
        process = subprocess.Popen([*STELLA, *args], cwd=ROOT, env=env, stdout=terminal, stderr=terminal)
        os.close(terminal)
        shown += _read_until(controller, b"\xe2\x94\x94", 60)  # the table's last line starts with └
        process.wait(timeout=60)
        os.close(controller)
    text = shown.decode()
    for identifier in _identifiers(home):
        assert identifier in text
    assert "Apache Log4j2" in text and "(exclu" in text  # prose still wraps at the terminal's width


def test_import_json_is_json_lines_and_says_so(tmp_path: Path) -> None:
    help_text = " ".join(_run("import", "--help", home=tmp_path / "home", columns=200).stdout.split())
    assert "With --json the output is JSON Lines" in help_text
    result = _run("import", "--json", str(SAMPLES / "advisories"), home=tmp_path / "home")
    assert result.returncode == 0
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert {e["event"] for e in events[:-1]} == {"document"} and events[-1]["event"] == "summary"
    assert events[-1]["imported"] == len(events) - 1


def test_data_show_gives_a_summary_before_the_json_and_json_alone_with_json(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _run("import", "--quiet", str(SAMPLES / "advisories"), home=home).returncode == 0
    shown = _run("data", "show", "GHSA-mp6f-p9gp-vpj9", home=home)
    head, _, body = shown.stdout.partition("\n\n")
    assert shown.returncode == 0
    assert head.splitlines()[0].split() == ["document", "GHSA-mp6f-p9gp-vpj9"]
    assert "summary      Array size is not checked in sized-chunks" in head
    assert "revisions    2 " in head and "affected     crates.io/sized-chunks" in head
    assert json.loads(body)["document"]["document_id"] == "GHSA-mp6f-p9gp-vpj9"
    only_json = _run("data", "show", "GHSA-mp6f-p9gp-vpj9", "--json", home=home)
    assert json.loads(only_json.stdout) == json.loads(body)


@pytest.mark.parametrize("from_end", [2, 9], ids=["content-checksum", "last-block"])
def test_verify_calls_a_flipped_byte_in_the_zstd_stream_an_integrity_failure(tmp_path: Path, from_end: int) -> None:
    home = _runs_and_profiles(tmp_path)
    assert _run("keys", "export-public", "release", "--out", str(tmp_path / "release.pub"), home=home).returncode == 0
    data = bytearray((tmp_path / "b.tar.zst").read_bytes())
    data[-from_end] ^= 0x01  # the frame ends with its 4-byte content checksum, after the last block
    flipped = tmp_path / "flipped.tar.zst"
    flipped.write_bytes(bytes(data))
    result = _run("verify", str(flipped), "--key", str(tmp_path / "release.pub"), home=home)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "zstd stream is corrupt" in result.stdout + result.stderr


def test_import_of_the_samples_directory_imports_every_sample_and_skips_its_sources_note(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = _run("import", "samples/", home=home)
    assert result.returncode == 0, result.stderr
    assert "skipped   samples/SOURCES.md  documentation, not a document" in result.stdout
    assert ", 0 rejected, 1 skipped into tenant default" in result.stdout
    events = [
        json.loads(line) for line in _run("import", "--json", "samples/", home=tmp_path / "h2").stdout.splitlines()
    ]
    assert [e["path"] for e in events if e.get("outcome") == "skipped"] == ["samples/SOURCES.md"]
    assert events[-1]["skipped"] == 1 and events[-1]["rejected"] == 0
    named = _run("import", "samples/SOURCES.md", home=home)  # given by name, it is read, and is no document
    assert named.returncode == 3


def test_profile_create_help_says_what_base_is(tmp_path: Path) -> None:
    shown = " ".join(_run("export", "profile", "create", "--help", home=tmp_path / "h", columns=200).stdout.split())
    assert "--base BUILTIN the builtin profile to vary: json:raw" in shown and "json:policy (the same plus" in shown
    assert "changes only those given with --set" in shown
    assert "record_types, compression_level, redaction_allowlist, signing_key, encryption_recipients" in shown


def test_the_verify_hint_after_a_build_names_the_real_public_key_and_works(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _run("import", "--quiet", str(SAMPLES / "advisories"), home=home).returncode == 0
    assert _run("keys", "generate", "release", home=home).returncode == 0
    built = _run(
        "export", "run", "--profile", "json:raw", "--key", "release", "--out", str(tmp_path / "b.tar.zst"), home=home
    )
    (hint,) = [line.strip() for line in built.stdout.splitlines() if "verify with:" in line]
    command = hint.removeprefix("verify with: stella ").split()
    assert command[-2:] == ["--key", str(home / "keys" / "release.pub")]
    assert _run(*command, home=home).returncode == 0


def test_the_demo_home_is_ignored_by_git() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".demo-home/store.duckdb"], cwd=ROOT, check=False)
    assert ignored.returncode == 0


def test_data_list_kev_and_epss_show_each_cve_once_from_the_newest_catalog(tmp_path: Path) -> None:
    home = tmp_path / "home"
    kev = json.loads((SAMPLES / "risk" / "known_exploited_vulnerabilities.json").read_text())
    newer = {**kev, "catalogVersion": "2025.08.26", "dateReleased": kev["dateReleased"].replace("08-25", "08-26")}
    (tmp_path / "kev-newer.json").write_text(json.dumps(newer))
    assert _run("import", "--quiet", str(SAMPLES / "risk"), str(tmp_path / "kev-newer.json"), home=home).returncode == 0
    listed = json.loads(_run("data", "list", "kev", "--json", "--limit", "5000", home=home).stdout)
    assert listed["total"] == len(kev["vulnerabilities"]) == len({i["cve_id"] for i in listed["items"]})
    assert {i["catalog"] for i in listed["items"]} == {"2025.08.26"}
    table = _run("data", "list", "kev", "--limit", "3", home=home).stdout
    assert "catalog" in table and "2025.08.26" in table
    epss = json.loads(_run("data", "list", "epss", "--json", home=home).stdout)
    assert {i["score_date"] for i in epss["items"]} == {"2025-02-20T00:00:00Z"}
    assert "score_date" in _run("data", "list", "epss", home=home).stdout
