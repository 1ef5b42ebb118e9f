"""Start-up benchmark: how long `stella` takes before it does anything, each figure against its same-run baseline.

- `stella --version` and `stella --help` against `python -c pass` (the interpreter's own start): the target is
  within 0.15 s of it, so the top-level parser must import no command module.
- `stella verify` of a sample bundle (built in a temporary home as scripts/demo.sh does), with the project modules
  and third-party packages it loads: a receiver's verification loads the verifier, not the store or the UI.
- the TUI's first paint against a bare Textual app's (a Static in an App): the target is within 0.4 s of it, the
  store's figures arriving after; the time until the dashboard shows them is printed too.

Every figure is the median of ``--runs`` runs of a fresh process, measured from just before it is spawned.

    python benchmarks/bench_startup.py [--runs 15] [--workdir DIR]
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


def timed(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    """The median wall time of ``runs`` runs of ``cmd`` (output discarded; a failure stops the benchmark)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env or ENV)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        workdir = (args.workdir or Path(tmp)).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        home = workdir / "home"
        bundle, pub = build_bundle(home)
        stella, runs = stella_cmd(), args.runs

        python = timed([sys.executable, "-c", "pass"], runs)
        version = timed([*stella, "--version"], runs)
        help_ = timed([*stella, "--help"], runs)
        verify = timed([*stella, "verify", str(bundle), "--key", str(pub)], runs)
        loaded = loaded_by(["verify", str(bundle), "--key", str(pub)], workdir)
        bare = paints("bare", home, runs)
        tui = paints("stella", home, runs)

    print(f"stella start-up, median of {runs} runs each, seconds")
    print(f"  python -c pass                {python:6.3f}")
    for name, took in (("stella --version", version), ("stella --help", help_)):
        verdict = "ok" if took - python <= VERSION_TARGET else "OVER"
        print(
            f"  {name:29} {took:6.3f}  +{took - python:.3f} over python -c pass (target +{VERSION_TARGET}: {verdict})"
        )
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
