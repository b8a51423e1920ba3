"""Schedule and duration syntax, parsed purely (no scheduler is started here).

A schedule is either a 5-field cron expression (``"0 1 * * *"``, in ``opsd.timezone``),
an interval (``"30s"``, ``"5m"``, ``"1h"``, ``"1d"``), or ``""`` (disabled).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

_DURATION = re.compile(
    r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*(?:(\d+)\s*s)?\s*(?:(\d+)\s*ms)?\s*$")


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"``, ``"300ms"`` or a number of seconds (a timedelta passes
    through)."""
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("must not be negative")
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("must not be negative")
        return timedelta(seconds=value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m and any(m.groups()):
            d, h, mi, s, ms = (int(g) if g else 0 for g in m.groups())
            return timedelta(days=d, hours=h, minutes=mi, seconds=s, milliseconds=ms)
    raise ValueError(f"invalid duration {value!r}: use e.g. '90s', '15m', '1h30m', '2d', '300ms' or a number of "
                     "seconds")


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: ``kind`` is ``cron`` or ``interval``."""

    expr: str
    kind: str
    interval: timedelta | None = None

    def trigger(self, tz: ZoneInfo) -> CronTrigger | IntervalTrigger:
        if self.kind == "interval":
            assert self.interval is not None
            return IntervalTrigger(seconds=self.interval.total_seconds(), timezone=tz)
        return CronTrigger.from_crontab(self.expr, timezone=tz)

    def previous_fire(self, now: datetime) -> datetime | None:
        """The last time this schedule fired at or before ``now`` (cron only; None for intervals)."""
        if self.kind != "cron":
            return None
        trig = CronTrigger.from_crontab(self.expr, timezone=now.tzinfo)
        for window in (timedelta(hours=2), timedelta(days=2), timedelta(days=9), timedelta(days=33),
                       timedelta(days=370)):
            t = trig.get_next_fire_time(None, now - window)
            last: datetime | None = None
            while t is not None and t <= now:
                last = t
                t = trig.get_next_fire_time(t, t + timedelta(seconds=1))
            if last is not None:
                return last
        return None

    def period(self, now: datetime) -> timedelta:
        """The gap between the two most recent fire times (the interval, for interval schedules)."""
        if self.interval is not None:
            return self.interval
        last = self.previous_fire(now)
        if last is None:
            return timedelta(days=366)
        before = self.previous_fire(last - timedelta(seconds=1))
        return (last - before) if before is not None else timedelta(days=366)


def parse_schedule(expr: str) -> Schedule | None:
    """None for ``""`` (disabled); raises ValueError naming the accepted forms."""
    expr = expr.strip()
    if not expr:
        return None
    if len(expr.split()) == 5:
        try:
            CronTrigger.from_crontab(expr, timezone=ZoneInfo("UTC"))
        except ValueError as e:
            raise ValueError(f"invalid cron expression {expr!r}: {e}") from None
        return Schedule(expr=expr, kind="cron")
    try:
        td = parse_duration(expr)
    except ValueError:
        raise ValueError(
            f"invalid schedule {expr!r}: use a 5-field cron expression ('0 1 * * *'), an interval ('30s', '5m'),"
            " or '' to disable"
        ) from None
    if td.total_seconds() < 1:
        raise ValueError(f"invalid schedule {expr!r}: interval must be at least 1s")
    return Schedule(expr=expr, kind="interval", interval=td)
