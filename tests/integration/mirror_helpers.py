"""Mirror exports and imports through the CLI fixture, as the mirror tests (integration and tuf-js interop) run them:
a home's key is named ``signer``; ``sender`` holds the receiver's ``mirror`` directory and the ``pub`` key."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def export_mirror(stella: Any, tmp_path: Path, profile: str, *extra: str | Path) -> tuple[Path, dict[str, Any]]:
    """`stella export run --profile PROFILE` into a new bundle under ``tmp_path``: its path and the run (--json)."""
    out = tmp_path / f"{profile.replace(':', '-')}-{len(list(tmp_path.glob('*.tar.zst')))}.tar.zst"
    result = stella("export", "run", "--profile", profile, "--key", "signer", "--out", out, *extra, "--json")
    assert result.code == 0, result.err
    return out, result.json()


def import_mirror(stella: Any, sender: dict[str, Any], bundle: Path, *extra: str | Path) -> dict[str, Any]:
    """`stella mirror import BUNDLE --into MIRROR` with the sender's key: the receipt (--json)."""
    result = stella("mirror", "import", bundle, "--into", sender["mirror"], "--key", sender["pub"], *extra, "--json")
    assert result.code == 0, result.err
    body: dict[str, Any] = result.json()
    return body
