"""The schedule calendar grammar: strict parsing, slots, and the systemd form systemd itself agrees with."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime

import pytest

from core.errors import UsageError
from core.schedule import Calendar, run_key
from tests.conftest import require_tool

CALENDARS = [
    "daily 02:00 UTC",
    "daily 23:59",
    "weekly sun 00:00 UTC",
    "weekly wed 13:45",
    "hourly :00",
    "hourly :59 UTC",
    "every 1 hours",
    "every 5 hours",
    "every 7 hours UTC",
    "every 23 hours",
]


@pytest.mark.parametrize(
    "text",
    [
        "30 2 * * *",  # cron
        "*-*-* 02:30:00",  # systemd
        "daily 2:00",
        "daily 24:00",
        "daily 02:60",
        "Daily 02:00",
        "daily  02:00",
        "daily 02:00 CET",
        "daily 02:00 UTC+1",
        "weekly monday 02:00",
        "weekly 02:00",
        "hourly 15",
        "hourly :60",
        "every 0 hours",
        "every 24 hours",
        "every 5 minutes",
        "",
    ],
)
def test_anything_outside_the_grammar_is_refused(text: str) -> None:
    with pytest.raises(UsageError) as err:
        Calendar.parse(text)
    assert err.value.exit_code == 2
    assert "daily HH:MM" in err.value.diagnostics()  # the message says what is accepted


def test_slots() -> None:
    at = datetime(2027, 1, 5, 2, 41)  # a Tuesday
    assert Calendar.parse("daily 02:30").slot_at_or_before(at) == datetime(2027, 1, 5, 2, 30)
    assert Calendar.parse("daily 02:30").next_after(at) == datetime(2027, 1, 6, 2, 30)
    assert Calendar.parse("daily 03:00").slot_at_or_before(at) == datetime(2027, 1, 4, 3, 0)
    assert Calendar.parse("weekly mon 03:00").slot_at_or_before(at) == datetime(2027, 1, 4, 3, 0)
    assert Calendar.parse("weekly tue 03:00").slot_at_or_before(at) == datetime(2026, 12, 29, 3, 0)
    assert Calendar.parse("hourly :41").slot_at_or_before(at) == at  # a slot at exactly `at` is due
    assert Calendar.parse("hourly :42").slot_at_or_before(at) == datetime(2027, 1, 5, 1, 42)
    assert Calendar.parse("every 5 hours").slot_at_or_before(at) == datetime(2027, 1, 5, 0, 0)
    assert Calendar.parse("every 5 hours").slot_at_or_before(datetime(2027, 1, 4, 23, 59)) == datetime(2027, 1, 4, 20)
    assert Calendar.parse("every 5 hours").next_after(datetime(2027, 1, 4, 20)) == datetime(2027, 1, 5, 0, 0)


def test_canonical_text_and_trailing_utc() -> None:
    assert Calendar.parse("daily 02:00") == Calendar.parse("daily 02:00 UTC")
    assert Calendar.parse("every 6 hours").text == "every 6 hours UTC"


def _systemd_elapses(tool: str, expr: str, base: datetime, n: int) -> list[datetime]:
    stamp = int(base.replace(tzinfo=UTC).timestamp())
    out = subprocess.run(
        [tool, "calendar", f"--base-time=@{stamp}", f"--iterations={n}", expr],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TZ": "UTC", "LC_ALL": "C"},
    ).stdout
    times = re.findall(r"(?:Next elapse|Iter\. #\d+): \w{3} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", out)
    assert len(times) == n, out
    return [datetime.fromisoformat(t) for t in times]


@pytest.mark.parametrize("text", CALENDARS)
def test_systemd_fires_at_the_same_slots(text: str) -> None:
    tool = require_tool("systemd-analyze")
    cal = Calendar.parse(text)
    # Month ends are where systemd 252's own `00/N` repetition skips a slot; a leap day; a Sunday night.
    bases = (
        datetime(2027, 1, 5, 2, 41, 7),
        datetime(2027, 1, 31, 19),
        datetime(2028, 2, 28, 23),
        datetime(2027, 3, 28),
    )
    for base in bases:
        ours = []
        at = base
        for _ in range(6):
            at = cal.next_after(at)
            ours.append(at)
        assert _systemd_elapses(tool, cal.on_calendar(), base, 6) == ours, (text, cal.on_calendar(), base)


def test_systemd_refuses_what_it_does_not_understand() -> None:
    """The check above can fail: systemd-analyze rejects an expression that is not its own."""
    tool = require_tool("systemd-analyze")
    res = subprocess.run([tool, "calendar", "30 2 * * *"], capture_output=True, text=True)
    assert res.returncode != 0


def test_run_key_is_deterministic_and_covers_every_part() -> None:
    slot = datetime(2027, 1, 5, 2, 30)
    key = run_key("default", "json:raw", 1, "nightly", slot)
    assert key == run_key("default", "json:raw", 1, "nightly", slot)
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    others = {
        run_key("other", "json:raw", 1, "nightly", slot),
        run_key("default", "json:policy", 1, "nightly", slot),
        run_key("default", "json:raw", 2, "nightly", slot),
        run_key("default", "json:raw", 1, "weekly", slot),
        run_key("default", "json:raw", 1, "nightly", slot.replace(day=6)),
    }
    assert key not in others and len(others) == 5
