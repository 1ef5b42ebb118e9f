"""Structured logs: JSON lines in the home (rotated by size), human lines on the terminal only when asked.

The core and the services log through the standard :mod:`logging` module under the ``stella`` logger; the command
line calls :func:`configure` once. Every line carries the fields of :data:`core.log_fields.FIELDS` (None when not
known there) plus ``trace_id``, the run's correlation id as its spans spell it.

stdlib :mod:`logging` rather than structlog: the fields come from a context variable either way, the JSON formatter
is a few lines, rotation is :class:`logging.handlers.RotatingFileHandler`, and structlog would add a dependency
whose import pulls ``rich.traceback`` (~190 ms) into every command.

Nothing secret reaches a line: :class:`Redactor` replaces the values of secret-looking environment variables
(``STELLA_PASSWORD``, anything named ``*PASSWORD*``, ``*PASSPHRASE*``, ``*SECRET*``, ``*TOKEN*``), secrets the
process registered (:func:`register_secret`: a payload passphrase read from a file), PEM private keys, age
identities, bearer and basic credentials, JWTs and ``password=...``-style pairs, in the message and every field.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from core import log_fields
from core.home import Home

if TYPE_CHECKING:
    from services.log_file import RotatingHomeLog

#: The JSON-lines log in the home, and how it rotates: 10 MiB a file, the current one and 5 older ones.
LOG_DIR = "logs"
LOG_NAME = "stella.jsonl"
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5
#: Levels ``--log-level`` takes.
LEVELS = ("debug", "info", "warning", "error")
REDACTED = "[redacted]"
#: Shorter values are not matched as text (a 2-character "secret" would redact half of every line).
MIN_SECRET = 6

#: What :func:`redact` replaces, and with what (compiled by the first line logged, see :func:`_patterns`).
_PATTERNS: tuple[tuple[str, int, str], ...] = (
    (r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.S, REDACTED),
    (r"AGE-SECRET-KEY-1[0-9A-Z]+", re.IGNORECASE, REDACTED),
    (r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*", 0, REDACTED),  # a JWT, a DPoP proof
    (r"(?i)\b(bearer|basic|dpop)\s+[A-Za-z0-9._~+/=-]{8,}", 0, rf"\1 {REDACTED}"),
    (
        r"(?i)\b(password|passphrase|passwd|secret|token|api[_-]?key|authorization)(\s*[=:]\s*)"
        r"(?:\"[^\"]*\"|'[^']*'|\S+)",
        0,
        rf"\1\2{REDACTED}",
    ),
)


@functools.cache
def _secret_env() -> re.Pattern[str]:
    """Environment variables whose values are secrets (matched on the upper-cased name)."""
    return re.compile(r"PASSWORD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY|API_KEY")


@functools.cache
def _patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    """:data:`_PATTERNS` compiled, once: here rather than at import, so a run that logs nothing (``stella verify``
    of a good bundle) does not compile them."""
    return tuple((re.compile(pattern, flags), replacement) for pattern, flags, replacement in _PATTERNS)


_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | bytes | None) -> None:
    """From now on, ``value`` never appears in a log line (a passphrase read from a file)."""
    if value is None:
        return
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    text = text.strip()
    if len(text) >= MIN_SECRET:
        with _secrets_lock:
            _secrets.add(text)


def _env_secrets() -> set[str]:
    secret = _secret_env()
    return {v.strip() for k, v in os.environ.items() if secret.search(k.upper()) and len(v.strip()) >= MIN_SECRET}


def redact(text: str) -> str:
    """``text`` with every known secret and secret-looking value replaced by ``[redacted]``."""
    with _secrets_lock:
        known = _secrets | _env_secrets()
    for secret in sorted(known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _patterns():
        text = pattern.sub(replacement, text)
    return text


class Redactor(logging.Filter):
    """Renders each record's message once, redacted, so no handler ever formats the raw arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: log what there is rather than lose the line
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        for name in log_fields.FIELDS:
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, redact(value))
        return True


class RunFields(logging.Filter):
    """Puts the run's fields (:func:`core.log_fields.current`) on every record that does not carry its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in log_fields.current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class LevelGate(logging.Filter):
    """Lets through records at ``level`` or above, and (``incident``) every record of a run in incident mode."""

    def __init__(self, level: int, *, incident: bool) -> None:
        super().__init__()
        self.level = level
        self.incident = incident

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level or (self.incident and log_fields.debug_forced())


def _trace_id(correlation_id: Any) -> str | None:
    if not isinstance(correlation_id, str):
        return None
    import uuid  # here: a run that writes no JSON line does not load it

    try:
        return uuid.UUID(correlation_id).hex
    except ValueError:
        return None


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the run fields and ``trace_id``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in log_fields.FIELDS:
            line[name] = getattr(record, name, None)
        line["trace_id"] = _trace_id(line["correlation_id"])
        if record.exc_text:
            line["exception"] = record.exc_text
        return orjson.dumps(line).decode("utf-8")


class HumanLines(logging.Formatter):
    """``20:14:03 info  plan     run-... message``: what ``-v`` shows on the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        phase = getattr(record, "phase", None) or "-"
        run = getattr(record, "run_id", None) or "-"
        code = getattr(record, "error_code", None)
        tail = f" [{code}]" if code else ""
        return f"{when} {record.levelname.lower():<7} {phase:<10} {run} {record.getMessage()}{tail}"


class HomeLogHandler(logging.Handler):
    """``HOME/logs/stella.jsonl``, rotated by size; writes only into a home that exists (a receiver that merely
    verifies a bundle gets no home created by its logs), and creates the directory (0700) and file (0600).

    The file's handler (:class:`services.log_file.RotatingHomeLog`, a :class:`logging.handlers.RotatingFileHandler`)
    is made for the first record this handler's filters let through, so a run that logs nothing does not import
    :mod:`logging.handlers`; every record goes through it, formatted with this handler's formatter."""

    def __init__(self, home: Home, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        super().__init__()
        self.home = home
        self.max_bytes = max_bytes
        self.backups = backups
        self._file: RotatingHomeLog | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self._file is None:
            from services.log_file import RotatingHomeLog

            self._file = RotatingHomeLog(self.home, log_path(self.home), self.max_bytes, self.backups)
        self._file.setFormatter(self.formatter)
        self._file.emit(record)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()

    def handleError(self, record: logging.LogRecord) -> None:
        pass  # a full disk under the log must not turn into a traceback on the terminal


def log_path(home: Home) -> Path:
    return home.root / LOG_DIR / LOG_NAME


_configured: list[logging.Handler] = []


def configure(
    home: Home | None,
    *,
    file_level: str = "info",
    terminal_level: str | None = None,
    max_bytes: int = MAX_BYTES,
    backups: int = BACKUPS,
) -> None:
    """Route the ``stella`` logger: JSON lines at ``file_level`` into ``home``'s log, and human lines at
        ``terminal_level`` to stderr when one is given (``-v``, ``--log-level``). The file rotates at ``max_bytes``,
    keeping ``backups`` older files. Calling it again replaces both."""
    root = logging.getLogger("stella")
    for handler in _configured:
        root.removeHandler(handler)
        handler.close()
    _configured.clear()
    root.setLevel(logging.DEBUG)
    root.propagate = False
    handlers: list[tuple[logging.Handler, logging.Formatter, LevelGate]] = []
    levels = logging.getLevelNamesMapping()
    if home is not None:
        gate = LevelGate(levels[file_level.upper()], incident=True)
        handlers.append((HomeLogHandler(home, max_bytes, backups), JsonLines(), gate))
    if terminal_level is not None:
        gate = LevelGate(levels[terminal_level.upper()], incident=False)
        handlers.append((logging.StreamHandler(sys.stderr), HumanLines(), gate))
    for handler, formatter, gate in handlers:
        handler.addFilter(gate)
        handler.addFilter(RunFields())
        handler.addFilter(Redactor())
        handler.setFormatter(formatter)
        root.addHandler(handler)
        _configured.append(handler)
    if not handlers:
        root.addHandler(logging.NullHandler())
