"""The JSON-lines log file under the home, rotated by size: :class:`logging.handlers.RotatingFileHandler`, created
0600 in a 0700 directory, and only in a home that exists.

A module of its own so that :mod:`logging.handlers` (which brings :mod:`socket` and :mod:`pickle`) is imported by
the first line a run writes to its log (:class:`services.logs.HomeLogHandler` opens it then), not by every start of
the command line: ``stella verify`` of a good bundle writes none.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path
from typing import Any

from core.home import Home


class RotatingHomeLog(logging.handlers.RotatingFileHandler):
    """``path`` (``HOME/logs/stella.jsonl``), rotated by size; writes only into a home that exists (a receiver that
    merely verifies a bundle gets no home created by its logs), and creates the directory (0700) and file (0600)."""

    def __init__(self, home: Home, path: Path, max_bytes: int, backups: int) -> None:
        self.home = home
        self.directory = path.parent
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True)

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is None:
            if not self.home.root.is_dir():
                return
            try:
                self.directory.mkdir(mode=0o700, exist_ok=True)
            except OSError:
                return  # logs never fail a command
        super().emit(record)

    def _open(self) -> Any:
        """The current file, created 0600 (also after each rollover)."""
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)

    def handleError(self, record: logging.LogRecord) -> None:
        pass  # a full disk under the log must not turn into a traceback on the terminal
