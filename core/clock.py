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


def parse_at(text: str | None) -> datetime | None:
    """An ``--at TIME`` value (RFC 3339) as naive UTC; ``None`` when not given.

    Air-gapped clocks drift, so receivers evaluate expiry at a stated time. Naive times are taken as UTC; zoned
    times are converted to UTC.
    """
    from core.errors import UsageError

    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at {text!r} is not an RFC 3339 time", hint="e.g. 2026-11-22T12:00:00Z") from None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value
