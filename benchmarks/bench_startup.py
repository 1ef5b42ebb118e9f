"""Start-up benchmark: how long `stella` takes before it does anything, each figure against its same-run baseline.

- `stella --version`, `stella --help`, `stella verify --help` and `stella export --help` against `python -c pass`
  (the interpreter's own start): the target is within 0.15 s of it, so the top-level parser imports no command
  module and a command's parser none of the modules its run needs (`stella export --help` is over it: the export
  command's module still imports the export service, the store and the adapters to build its parser).
- `stella verify` of a sample bundle (built in a temporary home as scripts/demo.sh does), with the project modules
  and third-party packages it loads: a receiver's verification loads the verifier, not the store or the UI.
- the TUI's first paint against a bare Textual app's (a Static in an App): the target is within 0.4 s of it, the
  store's figures arriving after; the time until the dashboard shows them is printed too.

Every figure is the median of ``--runs`` runs of a fresh process, measured from just before it is spawned. The
project's bytecode is cached (in a private pycache under the work directory), as an installed stella or the binary
has it; ``--no-bytecode-cache`` measures a start that compiles every module from source instead.

With ``--before REV`` the command-line figures are also taken, in the same run and alternating, from the tree of
git revision REV (exported with ``git archive`` into the work directory, run with the same interpreter and
packages), and printed beside the current ones: a before/after of a start-up change. ``--quick`` takes only the
command-line figures (no sample bundle, no TUI).

    python benchmarks/bench_startup.py [--runs 15] [--workdir DIR] [--before REV] [--quick] [--no-bytecode-cache]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
VERSION_TARGET = 0.15
PAINT_TARGET = 0.4

# The driver that runs `stella ARGS` and records what it imported: the same one the start-up test enforces with.
sys.path.insert(0, str(ROOT))
from tests.unit.test_startup_imports import DRIVER as LOADED  # noqa: E402

# Opens the bare app or stella's (on the home named second) headless at 80x24 and prints, as JSON, the seconds from
# T0 (the parent's clock just before spawning) to the first screen update the app renders, and, for stella, to the
# dashboard showing the store's figures; then exits.
PAINT = """
import json, os, sys, time
T0 = float(os.environ["T0"])
marks = {}
if sys.argv[1] == "bare":
    from textual.app import App
    from textual.widgets import Static

    class Bare(App[None]):
        def compose(self):
            yield Static("hello")

    app = Bare()
else:
    from pathlib import Path
    from app.tui.app import StellaApp
    from core.home import Home

    app = StellaApp(Home(Path(sys.argv[2])))
    shown = app.first_screen_shown

    def figures_shown():
        marks.setdefault("figures", time.time() - T0)
        shown()
        app.exit()

    app.first_screen_shown = figures_shown
display = app._display

def first_paint(screen, renderable):
    if renderable is not None and not app._batch_count and "paint" not in marks:
        marks["paint"] = time.time() - T0
        if sys.argv[1] == "bare":
            app.call_later(app.exit)
    return display(screen, renderable)

app._display = first_paint
app.run(headless=True, size=(80, 24))
print(json.dumps(marks))
"""


def stella_cmd() -> list[str]:
    script = Path(sys.executable).parent / "stella"
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from app.cli import run; run()"]


def cache_bytecode(workdir: Path) -> None:
    """Let the children keep compiled bytecode in a private pycache, as an installed stella has it."""
    ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    ENV["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")


def timed(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    """The median wall time of ``runs`` runs of ``cmd`` (output discarded; a failure stops the benchmark)."""
    return statistics.median(times_of(cmd, runs, env))


def times_of(cmd: list[str], runs: int, env: dict[str, str] | None = None, cwd: Path = ROOT) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd, env=env or ENV)
        times.append(time.perf_counter() - start)
    return times


def export_revision(rev: str, workdir: Path) -> Path:
    """The tree of git revision ``rev``, exported (read-only: ``git archive``) under ``workdir``."""
    sha = subprocess.run(["git", "rev-parse", rev], check=True, capture_output=True, text=True, cwd=ROOT).stdout
    tree = workdir / f"tree-{sha.strip()[:12]}"
    if not tree.is_dir():
        tree.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", sha.strip()], check=True, capture_output=True, cwd=ROOT).stdout
        subprocess.run(["tar", "x", "-C", str(tree)], input=archive, check=True)
    return tree


def command_line(runs: int, before: Path | None) -> dict[str, tuple[float, float | None]]:
    """Median seconds of each command-line figure, now and (with ``before``) in that tree, alternating runs."""
    now_cmd = [sys.executable, "-c", "from app.cli import run; run()"]
    figures = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "stella --version": [*now_cmd, "--version"],
        "stella --help": [*now_cmd, "--help"],
        "stella verify --help": [*now_cmd, "verify", "--help"],
        "stella export --help": [*now_cmd, "export", "--help"],
    }
    before_env = {**ENV, "PYTHONPATH": str(before)} if before is not None else None
    now: dict[str, list[float]] = {name: [] for name in figures}
    then: dict[str, list[float]] = {name: [] for name in figures}
    for _ in range(runs):
        for name, cmd in figures.items():
            now[name] += times_of(cmd, 1)
            if before is not None:
                then[name] += times_of(cmd, 1, before_env, cwd=before)
    return {
        name: (statistics.median(now[name]), statistics.median(then[name]) if then[name] else None) for name in figures
    }


def build_bundle(home: Path) -> tuple[Path, Path]:
    """The demo's json:raw bundle of the samples, signed with a fresh key; returns it and the public key."""
    env = {**ENV, "STELLA_HOME": str(home)}
    stella = stella_cmd()
    samples = sorted(str(p) for p in (ROOT / "samples").iterdir() if p.is_dir())
    bundle, pub = home / "samples-json-raw.tar.zst", home / "demo-signer.pub"
    for args in (
        ["import", "--quiet", *samples],
        ["keys", "generate", "demo-signer"],
        ["keys", "export-public", "demo-signer", "--out", str(pub)],
        ["export", "run", "--profile", "json:raw", "--key", "demo-signer", "--out", str(bundle)],
    ):
        subprocess.run([*stella, *args], check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=env)
    return bundle, pub


def loaded_by(args: list[str], workdir: Path) -> dict[str, object]:
    record = workdir / "loaded.json"
    subprocess.run(
        [sys.executable, "-c", LOADED, str(record), *args], check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=ENV
    )
    loaded: dict[str, object] = json.loads(record.read_text())
    return loaded


def paints(which: str, home: Path, runs: int) -> dict[str, float]:
    """The median of each mark of ``runs`` headless runs of the bare app or stella's TUI."""
    marks: dict[str, list[float]] = {}
    for _ in range(runs):
        env = {**ENV, "T0": repr(time.time()), "STELLA_HOME": str(home)}
        out = subprocess.run(
            [sys.executable, "-c", PAINT, which, str(home)],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
        )
        for name, value in json.loads(out.stdout.strip().splitlines()[-1]).items():
            marks.setdefault(name, []).append(value)
    return {name: statistics.median(values) for name, values in marks.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per figure (the median is printed)")
    parser.add_argument("--workdir", type=Path, help="where the sample home goes (default: a temporary directory)")
    parser.add_argument("--before", metavar="REV", help="also time the command line of git revision REV")
    parser.add_argument("--quick", action="store_true", help="the command-line figures only (no bundle, no TUI)")
    parser.add_argument("--no-bytecode-cache", action="store_true", help="compile every module at every start")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        workdir = (args.workdir or Path(tmp)).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        if not args.no_bytecode_cache:
            cache_bytecode(workdir)
        before = export_revision(args.before, workdir) if args.before else None
        runs = args.runs
        subprocess.run([sys.executable, "-c", "import app.cli"], check=True, cwd=ROOT, env=ENV)  # warm the caches
        figures = command_line(runs, before)
        if not args.quick:
            home = workdir / "home"
            bundle, pub = build_bundle(home)
            stella = stella_cmd()
            verify = timed([*stella, "verify", str(bundle), "--key", str(pub)], runs)
            loaded = loaded_by(["verify", str(bundle), "--key", str(pub)], workdir)
            bare = paints("bare", home, runs)
            tui = paints("stella", home, runs)

    cache = "compiled at every start" if args.no_bytecode_cache else "bytecode cached, as installed"
    print(f"stella start-up, median of {runs} runs each, seconds ({cache})")
    python = figures["python -c pass"][0]
    head = f"  {'':29} {'now':>6}"
    if before is not None:
        head += f"  {'before':>6} ({args.before})"
    print(head)
    for name, (took, then) in figures.items():
        line = f"  {name:29} {took:6.3f}"
        if then is not None:
            line += f"  {then:6.3f}"
        if name != "python -c pass":
            verdict = "ok" if took - python <= VERSION_TARGET else "OVER"
            line += f"  +{took - python:.3f} over python -c pass (target +{VERSION_TARGET}: {verdict})"
        else:
            line += "  (the floor)"
        print(line)
    if args.quick:
        return 0
    project, third = list(loaded["project"]), list(loaded["third_party"])  # type: ignore[call-overload]
    print(f"  stella verify (sample bundle) {verify:6.3f}  +{verify - python:.3f} over python -c pass")
    print(f"    loads {len(project)} project modules: {', '.join(project)}")
    print(f"    and {len(third)} third-party packages: {', '.join(third)}")
    print(f"  bare Textual app, first paint {bare['paint']:6.3f}")
    verdict = "ok" if tui["paint"] - bare["paint"] <= PAINT_TARGET else "OVER"
    print(
        f"  stella tui, first paint       {tui['paint']:6.3f}  +{tui['paint'] - bare['paint']:.3f} over the bare app "
        f"(target +{PAINT_TARGET}: {verdict})"
    )
    if "figures" in tui:
        print(
            f"  stella tui, figures shown     {tui['figures']:6.3f}  (the dashboard's store figures, after the paint)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
