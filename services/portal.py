"""Receive a developer portal bundle: verify it (`stella devportal verify`), or verify it while copying it to a
private directory that only then may be served (`stella devportal serve`; the HTTP server is the CLI's)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from core.home import Home
from core.progress import Observer
from services.trust import trusted_keys
from verify.devportal import PortalReport, materialize_portal, verify_portal


def verify_portal_bundle(
    home: Home, bundle: Path, key_files: Sequence[Path] = (), *, observer: Observer | None = None
) -> PortalReport:
    """Verify a devportal bundle (``bundle.tgz``, or a directory it was extracted to) against ``key_files``, or
    else the home's trust store."""
    return verify_portal(bundle, trusted_keys(home, key_files), observer=observer)


@contextmanager
def verified_portal(
    home: Home, bundle: Path, key_files: Sequence[Path] = (), *, observer: Observer | None = None
) -> Iterator[tuple[PortalReport, Path | None]]:
    """Verify ``bundle`` while copying it into a private temporary directory; yields the report and, only when
    everything verified, the portal directory of that copy (the one to serve). The copy is removed on exit."""
    workdir = Path(tempfile.mkdtemp(prefix="stella-serve-"))
    try:
        yield materialize_portal(bundle, trusted_keys(home, key_files), workdir, observer=observer)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
