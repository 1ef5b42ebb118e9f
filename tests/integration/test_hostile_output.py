"""A feed cannot steer the operator's terminal: escapes, newlines, bidi overrides and console markup in imported
fields and file names print as visible text, one record per line, through `stella import`, `stella data list` and
`stella data show`; `--json` keeps the exact data. And `stella data show` takes an id prefix literally."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

# What a hostile feed writes into fields: clear the screen, set the window title, move the cursor up and rewrite
# the line above, a CSI as one C1 byte, a bidi override, and a newline that forges a line of stella's own output.
FORGED = "imported  clean.json"
HOSTILE = f"\x1b[2J\x1b]0;pwned\x07\x1b[1A\r\x9b31m\u202eexe.txt\n{FORGED}"
# Only our own styles may reach a terminal: select-graphic-rendition sequences such as ESC [ 1 ; 32 m.
OUR_STYLES = re.compile(r"\x1b\[[0-9;]*m")


def _advisory(ident: str, summary: str) -> bytes:
    doc = json.loads((ROOT / "samples" / "advisories" / "GO-2020-0001.json").read_bytes())
    doc["id"] = ident
    doc["aliases"] = []
    doc["summary"] = summary
    return json.dumps(doc).encode()


def _hostile_file(tmp_path: Path) -> Path:
    folder = tmp_path / "feed"
    folder.mkdir()
    # The file name itself carries an escape and markup; the id and summary carry the rest.
    path = folder / "a\x1b[31m[link=evil]x[blink].json"
    path.write_bytes(_advisory("GO-2099-\x1b[2J[bold]0001", HOSTILE))
    return path


def _assert_tame(text: str, *, progress: bool = False) -> None:
    """No byte that steers a terminal except our own styles; no forged line. Where the progress bar draws
    (``progress``: rich moves the cursor itself), none of the hostile sequences."""
    bare = OUR_STYLES.sub("", text)
    if progress:
        for raw in ("\x1b[2J", "\x1b]0;", "\x07", "\x1b[31m", "\r", "\x9b", "\u202e"):
            assert raw not in bare, repr(bare)
    else:
        assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", bare), repr(bare)
    assert not any(line.lstrip().startswith("imported") and "clean.json" in line for line in bare.splitlines())


def _run(home: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process, styled as on a terminal (FORCE_COLOR), so its exact output is checked."""
    env = {**os.environ, "STELLA_HOME": str(home), "FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "200"}
    env.pop("NO_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )


def test_import_and_data_commands_show_hostile_fields_as_visible_text(tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = _hostile_file(tmp_path)

    imported = _run(home, "import", path)
    assert imported.returncode == 0, imported.stderr
    _assert_tame(imported.stdout)
    _assert_tame(imported.stderr, progress=True)
    # The document's line, written out on one line, markup as written (the progress display carries it to stderr).
    shown_line = "a\\x1b[31m[link=evil]x[blink].json  osv GO-2099-\\x1b[2J[bold]0001"
    assert shown_line in OUR_STYLES.sub("", imported.stdout + imported.stderr)

    listed = _run(home, "data", "list", "advisories")
    assert listed.returncode == 0, listed.stderr
    _assert_tame(listed.stdout + listed.stderr)
    assert "\\x1b[2J" in listed.stdout

    shown = _run(home, "data", "show", "GO-2099-\x1b[2J[bold]0001")
    assert shown.returncode == 0, shown.stderr
    _assert_tame(shown.stdout + shown.stderr)
    assert "\\u202eexe.txt" in shown.stdout and "\\u009b31m" in shown.stdout
    assert "[bold]0001" in shown.stdout  # markup in data prints as written, never as a style

    missing = _run(home, "data", "show", "GO-2099-\x1b[2J\nerror: forged")
    assert missing.returncode == 3
    _assert_tame(missing.stderr)
    assert len(missing.stderr.splitlines()) == 1


def test_json_output_keeps_the_exact_data(stella: Any, tmp_path: Path) -> None:
    path = _hostile_file(tmp_path)
    res = stella("import", "--json", path)
    assert res.code == 0, res.err
    document = res.json_lines()[0]
    assert document["path"] == str(path)
    assert document["documentId"] == "GO-2099-\x1b[2J[bold]0001"
    page = stella("data", "list", "advisories", "--json").json()
    assert isinstance(page, dict)
    assert page["items"][0]["summary"] == HOSTILE


def test_a_rejected_hostile_file_is_one_line_of_diagnostics(stella: Any, tmp_path: Path) -> None:
    bad = tmp_path / f"x\x1b[1A\r{FORGED}\n.json"
    bad.write_bytes(b'{"not": "a document"\n')
    res = stella("import", bad)
    assert res.code == 3
    _assert_tame(res.out + res.err)
    assert "x\\x1b[1A\\rimported  clean.json\\n.json" in res.err


@pytest.fixture
def one_document(stella: Any) -> str:
    res = stella("import", "--json", ROOT / "samples" / "advisories" / "GO-2020-0001.json")
    assert res.code == 0, res.err
    return str(res.json_lines()[0]["sha256"])


@pytest.mark.parametrize("ident", ["%%%%%%%%", "________", "%_%_%_%_", "\\%%%%%%%%"])
def test_data_show_takes_wildcards_literally(stella: Any, one_document: str, ident: str) -> None:
    res = stella("data", "show", ident)
    assert res.code == 3, res.out
    assert "matches" in res.err and "sha256" not in res.out


def test_data_show_still_finds_a_document_by_its_prefix(stella: Any, one_document: str) -> None:
    for prefix in (one_document[:8], one_document[:8].upper(), one_document):
        shown = stella("data", "show", "--json", prefix).json()
        assert isinstance(shown, dict) and shown["document"]["sha256"] == one_document
    assert stella("data", "show", one_document[:7] + "%").code == 3
