"""What `stella` loads to start: `--version` and `--help` load no command, and `stella verify` of a real bundle loads
the verifier and nothing of the writer, the store, the adapters or the UI libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.cli import COMMANDS, build_parser
from tests.conftest import ROOT

# Runs `stella ARGS` in this interpreter, then writes what it imported to the file named first: project modules in
# full, third-party packages by their top-level name, standard-library modules in full.
DRIVER = """
import json, sys
out, argv = sys.argv[1], sys.argv[2:]
from app.cli import main
try:
    code = main(argv)
except SystemExit as exc:
    code = exc.code or 0
project = ("app", "core", "verify", "services", "adapters")
top = {m.split(".")[0] for m in sys.modules}
with open(out, "w") as fh:
    json.dump({
        "code": code,
        "project": sorted(m for m in sys.modules if m.split(".")[0] in project),
        "third_party": sorted(t for t in top - set(sys.stdlib_module_names) - set(project) if not t.startswith("_")),
        "stdlib": sorted(m for m in sys.modules if m.split(".")[0] in sys.stdlib_module_names),
    }, fh)
"""
UI_AND_STORE = {"duckdb", "pyarrow", "textual", "rich"}
API = {"fastapi", "starlette", "uvicorn", "anyio", "httpx", "pydantic", "h11"}  # only `stella serve` loads them


def loaded_by(tmp_path: Path, *args: str | Path) -> dict[str, Any]:
    record = tmp_path / "loaded.json"
    run = subprocess.run(
        [sys.executable, "-c", DRIVER, str(record), *map(str, args)], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr
    loaded: dict[str, Any] = json.loads(record.read_text())
    return loaded


@pytest.mark.parametrize("option", ["--version", "--help"])
def test_version_and_help_load_no_command(tmp_path: Path, option: str) -> None:
    loaded = loaded_by(tmp_path, option)
    assert loaded["code"] == 0
    assert not UI_AND_STORE & set(loaded["third_party"]), loaded["third_party"]
    assert not API & set(loaded["third_party"]), loaded["third_party"]
    assert "cryptography" not in loaded["third_party"]
    assert not [m for m in loaded["project"] if m.startswith(("adapters", "app.commands", "app.tui", "services"))]


@pytest.fixture
def bundle(stella: Any, tmp_path: Path) -> tuple[Path, Path]:
    """A signed json:raw bundle of the sample advisories and its signer's public key."""
    assert stella("import", "--quiet", ROOT / "samples" / "advisories").code == 0
    assert stella("keys", "generate", "signer").code == 0
    pub = tmp_path / "signer.pub"
    assert stella("keys", "export-public", "signer", "--out", pub).code == 0
    out = tmp_path / "bundle.tar.zst"
    res = stella("export", "run", "--profile", "json:raw", "--key", "signer", "--out", out)
    assert res.code == 0, res.err
    return out, pub


def test_stella_verify_loads_the_verifier_and_nothing_else(tmp_path: Path, bundle: tuple[Path, Path]) -> None:
    archive, pub = bundle
    loaded = loaded_by(tmp_path, "verify", archive, "--key", pub)
    assert loaded["code"] == 0
    assert not UI_AND_STORE & set(loaded["third_party"]), loaded["third_party"]
    heavy = [
        m
        for m in loaded["project"]
        if m.startswith(("adapters", "core.store", "app.tui")) or m in ("core.bundle", "core.ingest")
    ]
    assert heavy == [], f"stella verify loaded {heavy}"
    assert "verify.bundle" in loaded["project"]  # the driver saw the verification itself


#: What `stella verify` of a good bundle does not need, and once loaded: the log file's rotating handler (and the
#: socket and pickle modules logging.handlers brings; the file is opened by the first line a run logs, and a good
#: verification logs none), the risk verifier (the receive registry spells out its freshness policies), the failure
#: classes and the metric definitions (services.metrics is loaded to record an outcome, when a textfile is set), and
#: TUF with boto3.
NOT_ON_THE_VERIFY_PATH = {
    "project": {"verify.risk", "verify.extract", "core.contract.risk", "core.failure", "core.tuf_home"}
    | {"services.log_file", "services.metrics"},
    "stdlib": {"logging.handlers", "socket", "pickle"},
    "third_party": {"tuf", "boto3", "botocore", "securesystemslib"},
}


def test_stella_verify_leaves_out_what_it_does_not_use(tmp_path: Path, bundle: tuple[Path, Path]) -> None:
    archive, pub = bundle
    loaded = loaded_by(tmp_path, "verify", archive, "--key", pub)
    assert loaded["code"] == 0
    back = {kind: sorted(names & set(loaded[kind])) for kind, names in NOT_ON_THE_VERIFY_PATH.items()}
    assert back == {kind: [] for kind in NOT_ON_THE_VERIFY_PATH}, f"stella verify loaded {back}"
    assert "services.logs" in loaded["project"] and "services.metrics_settings" in loaded["project"]  # still used


def test_stella_inspect_loads_no_more_than_verify(tmp_path: Path, bundle: tuple[Path, Path]) -> None:
    """`stella inspect` reads the manifest through the verifier's archive reader: nothing of the writer, the store,
    the adapters or the UI libraries, and no module `stella verify` itself does not load."""
    archive, pub = bundle
    inspected = loaded_by(tmp_path, "inspect", archive)
    assert inspected["code"] == 0
    assert not UI_AND_STORE & set(inspected["third_party"]), inspected["third_party"]
    verified = loaded_by(tmp_path, "verify", archive, "--key", pub)
    own = {"app.commands.inspect", "services.inspect"}
    extra = sorted(set(inspected["project"]) - set(verified["project"]) - own)
    assert extra == [], f"stella inspect loaded {extra}, which stella verify does not"
    assert set(inspected["third_party"]) <= set(verified["third_party"])


def test_help_lists_each_command_with_the_help_its_module_registers() -> None:
    """`stella --help` reads the static table; the full parser of each command says the same."""
    listed = build_parser().format_help()
    for name in COMMANDS:
        assert build_parser(name).format_help() == listed, f"the help of {name!r} differs from app.cli.COMMANDS"


def test_the_tui_opens_without_the_store_or_the_other_screens() -> None:
    """The dashboard paints first; the store, DuckDB and the other screens load after (in its worker, or when shown)."""
    code = "import json, sys\nimport app.tui.app\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    screens = {"app.tui.screens", "app.tui.screens.base", "app.tui.screens.dashboard"}
    early = [
        m
        for m in json.loads(out.stdout)
        if m.split(".")[0] in {"duckdb", "pyarrow", "adapters"}
        or (m.startswith(("core.store", "app.commands", "app.tui.screens")) and m not in screens)
    ]
    assert early == []
