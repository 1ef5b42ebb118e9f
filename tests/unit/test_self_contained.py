"""The project stands on its own: nothing in the repository points at files outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Ways the tree once cited material that lives outside the repository.
OUTSIDE = re.compile(r"DESIGN\.md|\.\./shared|shared/research|shared/corpus")


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    files = [ROOT / name for name in out.decode().split("\0") if name]
    return [f for f in files if f.is_file() and f.suffix in {".py", ".md", ".sh", ".toml", ".txt", ".spec", ".tcss"}]


def test_no_file_cites_material_outside_the_repository() -> None:
    hits = []
    for path in _tracked_text_files():
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "references outside the repository:\n" + "\n".join(hits)


def test_the_architecture_map_exists_and_names_every_top_level_package() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    for package in ("app/", "services/", "adapters/", "verify/", "core/"):
        assert package in text
