"""Version order where it is well defined: SemVer 2.0 precedence and PEP 440 (via ``packaging``).

Each key function returns a sortable key, or raises ``ValueError`` for a version outside its scheme; callers
that cannot order every version in play leave things as published rather than guess.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from packaging.version import InvalidVersion, Version

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
#: Distinct versions remembered per key function: a feed names the same fixes again and again, and parsing
#: (PEP 440's above all) costs more than the rest of a lookup. Keys are immutable, so sharing them is safe.
CACHE_SIZE = 1 << 13


@lru_cache(maxsize=CACHE_SIZE)
def semver_key(version: str) -> tuple[Any, ...]:
    """SemVer precedence (build metadata ignored); OSV's ``"0"`` ("since the first version") sorts first."""
    if version == "0":
        return (0, 0, 0), 0, ()
    match = _SEMVER.match(version)
    if match is None:
        raise ValueError(version)
    core = tuple(int(match.group(n)) for n in (1, 2, 3))
    pre = match.group(4)
    if pre is None:
        return core, 1, ()
    return core, 0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))


@lru_cache(maxsize=CACHE_SIZE)
def pep440_key(version: str) -> Version:
    """PEP 440 order (``packaging``); legacy, non-PEP 440 versions raise ``ValueError``."""
    try:
        return Version(version)
    except InvalidVersion:
        raise ValueError(version) from None
