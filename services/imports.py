"""Import documents into the store: files, directories and archives, each detected (or forced) and validated.

`stella import` and the TUI's import screen call :func:`import_files`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from adapters.sources.registry import SOURCES, get_format
from core.home import Home
from core.ingest import DEFAULT_TENANT, FileResult, Importer, ImportSummary
from core.progress import Observer
from core.store import Store


def import_files(
    home: Home,
    paths: Sequence[Path],
    *,
    tenant: str = DEFAULT_TENANT,
    format_name: str | None = None,
    observer: Observer | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> ImportSummary:
    """Import every document under ``paths`` into ``tenant``; ``on_result`` hears each file's outcome.

    ``format_name`` skips detection. ``observer`` hears progress and stops the import (raising
    :class:`core.errors.Cancelled`) when it says it is cancelled. The summary's ``exit_code`` is the command's.
    """
    forced = get_format(format_name) if format_name else None
    with Store.open(home) as store:
        importer = Importer(store, SOURCES, tenant=tenant, forced_format=forced, sink=observer, on_result=on_result)
        return importer.run(list(paths))
