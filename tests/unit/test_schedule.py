from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from opsd.core.schedule import parse_duration, parse_schedule
from opsd.core.units import format_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("15m", 900), ("15min", 900), ("1h30m", 5400), ("2d", 172800), (45, 45), ("1d2h", 93600),
    ("300ms", 0.3),
])
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["", "soon", "5 weeks", -1, "1x"])
def test_bad_durations(bad: str | int) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_schedule_forms() -> None:
    assert parse_schedule("") is None
    cron = parse_schedule("0 1 * * *")
    assert cron is not None and cron.kind == "cron"
    interval = parse_schedule("30s")
    assert interval is not None and interval.kind == "interval" and interval.interval == timedelta(seconds=30)
    with pytest.raises(ValueError, match="5-field cron"):
        parse_schedule("daily")
    with pytest.raises(ValueError, match="invalid cron"):
        parse_schedule("0 25 * * *")


def test_previous_fire_and_period_in_the_configured_timezone() -> None:
    tz = ZoneInfo("Europe/Berlin")
    sched = parse_schedule("0 1 * * *")
    assert sched is not None
    now = datetime(2026, 11, 25, 12, 0, tzinfo=tz)
    assert sched.previous_fire(now) == datetime(2026, 11, 25, 1, 0, tzinfo=tz)
    early = datetime(2026, 11, 25, 0, 30, tzinfo=tz)
    assert sched.previous_fire(early) == datetime(2026, 11, 24, 1, 0, tzinfo=tz)
    assert sched.period(now) == timedelta(days=1)
    weekly = parse_schedule("0 3 * * 0")
    assert weekly is not None and weekly.period(now) == timedelta(days=7)
    every_minute = parse_schedule("* * * * *")
    assert every_minute is not None
    assert every_minute.previous_fire(datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC)) == datetime(
        2026, 1, 1, 10, 0, tzinfo=UTC)


def test_format_duration() -> None:
    assert format_duration(5.04) == "5.0s"
    assert format_duration(timedelta(hours=26)) == "1d2h"
    assert format_duration(3725) == "1h2m5s"
