"""The registry of source adapters the import pipeline uses.

Order matters for auto-detection: more specific formats come first (a CSAF VEX document is
also a CSAF document; a Sigstore bundle contains a DSSE envelope; GHSA records are OSV).
Adding a format is a new module plus one line here.
"""

from __future__ import annotations

from adapters.sources import (
    csaf,
    cve5,
    cyclonedx,
    dsse,
    epss,
    intoto,
    kev,
    openvex,
    osv,
    policy,
    sigstore_bundle,
    spdx,
)
from core.errors import UsageError
from core.sources import SourceFormat

SOURCES: tuple[SourceFormat, ...] = (
    *sigstore_bundle.FORMATS,
    *dsse.FORMATS,
    *intoto.FORMATS,
    *csaf.FORMATS,  # csaf-vex before csaf
    *cve5.FORMATS,
    *openvex.FORMATS,
    *cyclonedx.FORMATS,  # cyclonedx-vex before cyclonedx
    *spdx.FORMATS,
    *osv.FORMATS,
    *kev.FORMATS,
    *epss.FORMATS,
    *policy.FORMATS,
)


def format_names() -> list[str]:
    """Every ``--format`` value, in detection order."""
    return [s.name for s in SOURCES]


def get_format(name: str) -> SourceFormat:
    """The adapter for ``--format NAME``."""
    for source in SOURCES:
        if source.name == name:
            return source
    raise UsageError(f"unknown format {name!r}", hint="known formats: " + ", ".join(format_names()))
