"""Schedules: the calendar grammar, its slots, its systemd form, and the run key of a scheduled run.

A calendar is one of four forms, all in UTC (docs/operations-schedules.md):

| form | slots | systemd ``OnCalendar=`` |
|---|---|---|
| ``daily HH:MM`` | every day at HH:MM | ``*-*-* HH:MM:00 UTC`` |
| ``weekly DAY HH:MM`` | every DAY (mon..sun) at HH:MM | ``Mon *-*-* HH:MM:00 UTC`` |
| ``hourly :MM`` | every hour at minute MM | ``*-*-* *:MM:00 UTC`` |
| ``every N hours`` | at hours 0, N, 2N... of each day (1 <= N <= 23) | ``*-*-* 00,05,10,15,20:00:00 UTC`` (N = 5) |

A trailing ``UTC`` is allowed and changes nothing; any other zone, a cron line or a systemd expression is refused,
so one text means one set of instants whatever engine evaluates it. ``every N hours`` lists its hours rather than
writing systemd's ``00/N``: systemd 252 skips the 00:00 slot of ``00/N`` on the first day of a month.

A slot is the instant a firing belongs to: `run-due` at 02:41 fires the ``daily 02:30`` slot of 02:30, and a run key
derived from it makes a second firing of that slot find it taken.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from core.clock import rfc3339
from core.errors import UsageError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_HHMM = r"([01]\d|2[0-3]):([0-5]\d)"
_DAILY = re.compile(rf"^daily {_HHMM}$")
_WEEKLY = re.compile(rf"^weekly (mon|tue|wed|thu|fri|sat|sun) {_HHMM}$")
_HOURLY = re.compile(r"^hourly :([0-5]\d)$")
_EVERY = re.compile(r"^every ([1-9]|1\d|2[0-3]) hours?$")

_GRAMMAR = "daily HH:MM, weekly DAY HH:MM (DAY: mon..sun), hourly :MM, or every N hours (1-23), in UTC"

#: A schedule name: what its systemd units are named after, so no path or unit-name metacharacter.
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Action(StrEnum):
    """What a schedule does when it fires."""

    EXPORT = "export"
    RETENTION = "retention"


class Trigger(StrEnum):
    """What makes a schedule due."""

    CALENDAR = "calendar"
    IMPORT = "import"


#: The document kinds of a risk feed: `--on-risk-feed-update` fires after either is imported.
RISK_FEED_KINDS = ("epss", "kev")


def check_name(name: str) -> str:
    """A schedule name: lower-case letters, digits and dashes, starting with a letter or digit, at most 63."""
    if not _NAME.match(name):
        raise UsageError(
            f"schedule name {name!r} is not allowed",
            hint="lower-case letters, digits and '-', starting with a letter or digit, at most 63 characters",
        )
    return name


@dataclass(frozen=True)
class Calendar:
    """A parsed calendar. ``hours`` are the hours of the day it fires at; ``weekday`` (0 = Monday) limits it to one
    day of the week; ``minute`` is the minute of each of those hours."""

    text: str
    hours: tuple[int, ...]
    minute: int
    weekday: int | None = None

    @classmethod
    def parse(cls, text: str) -> Calendar:
        """Parse ``text`` (exactly one of the four forms, single spaces, lower case); anything else is exit 2."""
        body = text.strip()
        if body.endswith(" UTC"):
            body = body[: -len(" UTC")]
        if m := _DAILY.match(body):
            return cls(f"daily {m[1]}:{m[2]} UTC", (int(m[1]),), int(m[2]))
        if m := _WEEKLY.match(body):
            return cls(f"weekly {m[1]} {m[2]}:{m[3]} UTC", (int(m[2]),), int(m[3]), WEEKDAYS.index(m[1]))
        if m := _HOURLY.match(body):
            return cls(f"hourly :{m[1]} UTC", tuple(range(24)), int(m[1]))
        if m := _EVERY.match(body):
            n = int(m[1])
            return cls(f"every {n} hours UTC", tuple(range(0, 24, n)), 0)
        raise UsageError(f"calendar {text!r} is not understood", hint=f"write {_GRAMMAR}")

    def on_calendar(self) -> str:
        """The systemd ``OnCalendar=`` expression with the same slots."""
        minute = f"{self.minute:02d}"
        if self.weekday is not None:
            return f"{WEEKDAYS[self.weekday].capitalize()} *-*-* {self.hours[0]:02d}:{minute}:00 UTC"
        if len(self.hours) == 24:
            return f"*-*-* *:{minute}:00 UTC"
        if len(self.hours) == 1:
            return f"*-*-* {self.hours[0]:02d}:{minute}:00 UTC"
        return f"*-*-* {','.join(f'{h:02d}' for h in self.hours)}:00:00 UTC"  # not 00/N: see the module

    def _day_slots(self, day: datetime) -> list[datetime]:
        """The slots on the UTC day starting at ``day`` (midnight), in order."""
        if self.weekday is not None and day.weekday() != self.weekday:
            return []
        return [day + timedelta(hours=h, minutes=self.minute) for h in self.hours]

    def slot_at_or_before(self, at: datetime) -> datetime:
        """The latest slot at or before ``at`` (naive UTC)."""
        day = at.replace(hour=0, minute=0, second=0, microsecond=0)
        for _ in range(8):
            earlier = [s for s in self._day_slots(day) if s <= at]
            if earlier:
                return earlier[-1]
            day -= timedelta(days=1)
        raise AssertionError("every calendar has a slot each week")  # pragma: no cover

    def next_after(self, at: datetime) -> datetime:
        """The first slot strictly after ``at`` (naive UTC)."""
        day = at.replace(hour=0, minute=0, second=0, microsecond=0)
        for _ in range(8):
            later = [s for s in self._day_slots(day) if s > at]
            if later:
                return later[0]
            day += timedelta(days=1)
        raise AssertionError("every calendar has a slot each week")  # pragma: no cover


def run_key(tenant: str, profile_id: str, revision: int, schedule: str, slot: datetime) -> str:
    """The idempotency key of a scheduled run: sha256 over tenant, profile, revision, schedule and slot (RFC 3339),
    one a line. The same slot of the same schedule always gives the same key."""
    text = "\n".join([tenant, profile_id, str(revision), schedule, rfc3339(slot)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Schedule:
    """A stored schedule (a row of ``schedules``)."""

    tenant: str
    name: str
    action: Action
    trigger: Trigger
    calendar: Calendar | None
    import_kinds: tuple[str, ...]
    profile_id: str | None
    key_name: str | None
    selectors: tuple[str, ...]
    providers: tuple[str, ...]
    created_at: datetime
    created_by: str

    def when_text(self) -> str:
        """When it fires, as a user reads it."""
        if self.calendar is not None:
            return self.calendar.text
        return "after an import of " + " or ".join(self.import_kinds)

    def what_text(self) -> str:
        """What it does, as a user reads it."""
        if self.action is Action.RETENTION:
            return "retention prune"
        sel = "".join(f" --selector {s}" for s in self.selectors)
        sel += "".join(f" --provider {p}" for p in self.providers)
        return f"export run --profile {self.profile_id} --key {self.key_name}{sel}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "name": self.name,
            "action": str(self.action),
            "trigger": str(self.trigger),
            "calendar": None if self.calendar is None else self.calendar.text,
            "onCalendar": None if self.calendar is None else self.calendar.on_calendar(),
            "importKinds": list(self.import_kinds),
            "profile": self.profile_id,
            "key": self.key_name,
            "selectors": list(self.selectors),
            "providers": list(self.providers),
            "createdAt": rfc3339(self.created_at),
            "createdBy": self.created_by,
        }
