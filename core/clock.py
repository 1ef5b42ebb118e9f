"""The one place that reads the wall clock, so tests and runs can pin time."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, as naive UTC with microseconds (how the store keeps times)."""
    return datetime.now(UTC).replace(tzinfo=None)


def rfc3339(value: datetime) -> str:
    """Naive-UTC datetime to RFC 3339 with a ``Z``."""
    text = value.replace(tzinfo=None).isoformat(timespec="seconds" if not value.microsecond else "microseconds")
    return text + "Z"
