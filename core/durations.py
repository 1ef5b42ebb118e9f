"""Durations as users write them (``90m``, ``12h``, ``7d``, ``2w``, or ISO 8601 ``P7D``) and as stella prints them."""

from __future__ import annotations

import re
from datetime import timedelta

from core.errors import BadInputError, UsageError

_SHORT = re.compile(r"^(\d+)([smhdw])$")
_ISO = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def _seconds(text: str) -> int | None:
    value = text.strip()
    short = _SHORT.match(value.lower())
    if short:
        return int(short.group(1)) * _UNITS[short.group(2)]
    iso = _ISO.match(value.upper())
    if iso and value.upper() not in ("P", "PT") and any(iso.groups()):
        w, d, h, m, s = (int(g or 0) for g in iso.groups())
        return w * 604800 + d * 86400 + h * 3600 + m * 60 + s
    return None


def parse_duration(text: str, what: str | None = None) -> timedelta:
    """``90m``, ``12h``, ``7d``, ``2w`` (or ISO 8601 ``P7D``, ``PT12H``) as a positive :class:`timedelta`.

    Anything else is refused: naming ``what`` (the option that carried it, e.g. ``--grace``) as bad input (exit 3)
    when it is given, else as a usage error (exit 2).
    """
    seconds = _seconds(text)
    if seconds is not None and seconds > 0:
        return timedelta(seconds=seconds)
    if what is not None:
        raise BadInputError(f"{what} {text!r} is not a positive duration", hint="write e.g. 90m, 12h, 7d, 2w or P7D")
    raise UsageError(f"{text!r} is not a duration", hint="a positive number with s, m, h, d or w, e.g. 7d")


def human_duration(value: timedelta) -> str:
    """``7d``, ``12h``, ``2w``: a duration in the largest unit that divides it (what :func:`parse_duration` reads)."""
    seconds = int(value.total_seconds())
    for unit, size in _UNITS.items():
        if unit != "s" and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
