"""Where the metrics textfile goes: the home's setting (``metrics.json``) or the file a command names.

A module of its own (:mod:`services.metrics` re-exports it) so that ``stella verify``, which asks it for the
textfile once per run, loads the metric definitions and the collector only when it records an outcome.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from core.errors import BadInputError, UsageError
from core.home import Home


def config_path(home: Home) -> Path:
    """``metrics.json`` in the home: where runs write the textfile unless a command names another."""
    return home.root / "metrics.json"


def configured_textfile(home: Home) -> Path | None:
    """The textfile the home's settings name (None: no metrics are written unless asked)."""
    path = config_path(home)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BadInputError(f"cannot read the metrics settings: {exc.strerror}", path=str(path)) from None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadInputError(f"the metrics settings are not JSON: {exc}", path=str(path)) from None
    textfile = value.get("textfile") if isinstance(value, dict) else None
    if not isinstance(value, dict) or set(value) - {"textfile"} or not isinstance(textfile, str | None):
        raise BadInputError('the metrics settings must be {"textfile": PATH or null}', path=str(path))
    return None if textfile is None else Path(textfile)


def check_textfile(path: Path) -> Path:
    """``path`` resolved, refused (exit 2) unless it ends in ``.prom`` and its directory exists."""
    target = path.expanduser().resolve()
    if target.suffix != ".prom":
        raise UsageError(
            f"{path} does not end in .prom", hint="node_exporter's textfile collector reads only *.prom files"
        )
    if not target.parent.is_dir():
        raise UsageError(f"the directory of {path} does not exist", hint="create it, or name another file")
    return target


def textfile_for(home: Home, explicit: Path | None) -> Path | None:
    """The textfile a command writes: the one it was given, else the home's setting."""
    if explicit is not None:
        return check_textfile(explicit)
    return configured_textfile(home)
