"""Every command the README shows runs as written on the built-in samples.

The README's ```sh blocks are read in order and each command in them (a logical line: continuation lines joined,
comment-only lines dropped) runs in one bash session, as in a user's terminal, in a scratch directory holding a
copy of ``samples/`` (and the devportal sample tree) and a link to the repository's ``.venv``, with a fresh
``STELLA_HOME`` and ``HOME``; each must exit 0.

A block that cannot run in a test (installing on a fresh machine, the whole test suite, a tool that is not stella)
is marked by the line ``<!-- not run: REASON -->`` just before its fence. The marker is for those cases only: a
command a user copies must work on the samples, so nothing else may be skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

README = ROOT / "README.md"
NOT_RUN = re.compile(r"^<!-- not run: (?P<reason>\S.*\S) -->$")
MAX_NOT_RUN = 4
COPIED = ["samples", "tests/fixtures/devportal/portal"]  # what the commands read from the repository
MARK = "@@readme-command "
FAILED = "@@readme-exit-status "  # the quick start, the Trivy run, the TUI and the benchmarks at most


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    commands: list[tuple[int, str]]  # each with the line it starts on
    not_run: str | None  # the reason given by the marker


def _blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```sh":
            i += 1
            continue
        start = i
        previous = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = NOT_RUN.match(previous)
        body: list[str] = []
        i += 1
        while lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        blocks.append(Block(start + 1, _commands(body, start + 2), marker.group("reason") if marker else None))
        i += 1
    return blocks


def _commands(body: list[str], first: int) -> list[tuple[int, str]]:
    commands: list[tuple[int, str]] = []
    pending = ""
    begins = first
    for number, raw in enumerate(body, first):
        if not pending:
            begins = number
        line = pending + raw.strip() if pending else raw.rstrip()
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        pending = ""
        if line.strip() and not line.lstrip().startswith("#"):
            commands.append((begins, line.strip()))
    assert not pending, f"a continuation line ends the block: {pending!r}"
    return commands


def test_the_readme_has_command_blocks_and_marks_few_as_not_run() -> None:
    blocks = _blocks(README.read_text(encoding="utf-8"))
    assert len([b for b in blocks if b.not_run is None]) >= 4
    assert len([b for b in blocks if b.not_run]) <= MAX_NOT_RUN
    assert "<!-- not run" not in re.sub(r"^<!-- not run: \S.*\S -->$", "", README.read_text(), flags=re.M), (
        "a not-run marker must read <!-- not run: REASON -->"
    )


def test_the_quick_start_is_two_commands_the_demo_and_the_test_suite() -> None:
    text = README.read_text(encoding="utf-8")
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    (block,) = _blocks(quick)
    programs = [command.split()[0] for _, command in block.commands]
    assert programs == ["./scripts/demo.sh", "./scripts/test.sh"]
    assert all((ROOT / program).is_file() and os.access(ROOT / program, os.X_OK) for program in programs)


def test_every_readme_command_runs_on_the_samples(tmp_path: Path) -> None:
    work = tmp_path / "work"
    for path in COPIED:
        shutil.copytree(ROOT / path, work / path)
    (work / ".venv").symlink_to(ROOT / ".venv")
    env = {
        **os.environ,
        "STELLA_HOME": str(tmp_path / "stella-home"),
        "HOME": str(tmp_path / "user"),
        "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "COLUMNS": "80",
    }
    (tmp_path / "user").mkdir()
    commands = [
        command
        for block in _blocks(README.read_text(encoding="utf-8"))
        if not block.not_run
        for command in block.commands
    ]
    assert len(commands) >= 30
    # one shell for all of them, as a user's terminal: a variable one command sets is there for the next
    script = ["set -o pipefail"]
    for index, (_, command) in enumerate(commands):
        script += [
            f"echo '{MARK}{index}'",
            command,
            f"status=$?; if [ $status -ne 0 ]; then echo '{FAILED}'$status; exit 1; fi",
        ]
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1800,
        check=False,
    )
    *_, last = result.stdout.split(MARK)
    reached, _, output = last.partition("\n")
    line, command = commands[int(reached)]
    assert result.returncode == 0, f"README.md:{line}: `{command}` failed:\n{output[-3000:]}"
    assert int(reached) == len(commands) - 1
