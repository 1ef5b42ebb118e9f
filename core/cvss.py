"""CVSS base scores and qualitative ratings for v2, v3.x and v4.0 vectors.

Scores come from the ``cvss`` library (RedHat's implementation of the FIRST specifications). Ratings follow
each version's own qualitative scale: v3.x and v4.0 share None 0.0, Low 0.1-3.9, Medium 4.0-6.9, High 7.0-8.9,
Critical 9.0-10.0; v2 has no Critical (NVD: Low 0.1-3.9, Medium 4.0-6.9, High 7.0-10.0). A score of 0.0 rates 0
(Trivy: UNKNOWN).
"""

from __future__ import annotations

from functools import lru_cache

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

#: Trivy's severity integers: 0 unknown, 1 low, 2 medium, 3 high, 4 critical.
LOW, MEDIUM, HIGH, CRITICAL = 1, 2, 3, 4

_SCORERS = {"CVSS_V2": CVSS2, "CVSS_V3": CVSS3, "CVSS_V4": CVSS4}
_LABELS = {"CVSS_V2": "CVSS v2", "CVSS_V3": "CVSS v3", "CVSS_V4": "CVSS v4"}


@lru_cache(maxsize=4096)  # a feed repeats a few thousand distinct vectors; parsing one costs ~100 us
def base_score(kind: str, vector: str) -> float:
    """The base score of an OSV-style ``CVSS_V2`` / ``CVSS_V3`` / ``CVSS_V4`` vector.

    Raises ``ValueError`` naming the problem for an unknown kind or a malformed vector (a missing mandatory
    metric, an unknown value).
    """
    scorer = _SCORERS.get(kind)
    if scorer is None:
        raise ValueError(f"{kind!r} is not a CVSS type (CVSS_V2, CVSS_V3, CVSS_V4)")
    try:
        parsed = scorer(vector)
        score = parsed.scores()[0] if kind == "CVSS_V3" else parsed.base_score
    except CVSSError as exc:
        raise ValueError(f"invalid {_LABELS[kind]} vector {vector!r}: {exc}") from None
    return float(score)


def rating(kind: str, score: float) -> int:
    """The qualitative rating (1 low .. 4 critical, 0 none) of a base score on its version's scale."""
    if kind == "CVSS_V2":
        if score >= 7.0:
            return HIGH
        if score >= 4.0:
            return MEDIUM
        return LOW if score > 0 else 0
    if score >= 9.0:
        return CRITICAL
    if score >= 7.0:
        return HIGH
    if score >= 4.0:
        return MEDIUM
    return LOW if score > 0 else 0
