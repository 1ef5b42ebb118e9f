"""Fixture documents as the import pipeline sees them, shared by the adapter tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from core.sources import Candidate


class FixtureDocs:
    """Loads documents from one fixture folder, as is or edited."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def load(self, rel: str) -> Candidate:
        p = self.root / rel
        return Candidate(path=str(p), data=p.read_bytes())

    def edited(self, rel: str, change: Callable[[dict[str, Any]], object]) -> Candidate:
        """A fixture with ``change(doc)`` applied, for rules no corpus sample breaks."""
        doc = orjson.loads((self.root / rel).read_bytes())
        change(doc)
        return Candidate(path=f"edited-{rel}", data=orjson.dumps(doc))
