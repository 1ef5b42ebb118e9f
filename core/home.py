"""Where the store, keys and trust store live.

Resolution order: an explicit ``--home``, then ``STELLA_HOME``, then the platform's user data
directory (``platformdirs``), e.g. ``~/.local/share/stella`` on Linux.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from core.errors import EnvironmentFailure

ENV_HOME = "STELLA_HOME"


@dataclass(frozen=True)
class Home:
    """The directory tree of one installation's state."""

    root: Path

    @property
    def store_path(self) -> Path:
        return self.root / "store.duckdb"

    @property
    def lock_path(self) -> Path:
        return self.root / "store.lock"

    @property
    def blobs_dir(self) -> Path:
        return self.root / "blobs" / "sha256"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def trust_dir(self) -> Path:
        return self.root / "trust"

    def ensure(self) -> Home:
        """Create the directories (private to the user) if they do not exist."""
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.blobs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise EnvironmentFailure(
                f"cannot create the stella home: {exc.strerror}",
                path=str(self.root),
                hint="choose another directory with --home or STELLA_HOME",
            ) from exc
        return self


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Home:
    """Pick the home directory: ``explicit`` > ``$STELLA_HOME`` > platform default."""
    if explicit:
        return Home(Path(explicit).expanduser().resolve())
    env = os.environ.get(ENV_HOME)
    if env:
        return Home(Path(env).expanduser().resolve())
    return Home(Path(platformdirs.user_data_dir("stella", appauthor=False)))
