"""The backup window (``[schedule] backup_window = "01:00-05:00"``, in opsd.timezone) and the forecast of the
next full backup's end, from the backups the repository holds: its speed (bytes of database a second, the
median of the recent fulls) and the database's growth (least squares over the recent backups' sizes).

Pure: times in, times out. A window may cross midnight ("23:00-04:00")."""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

RECENT_FULLS = 5
GROWTH_SPAN = timedelta(days=30)


@dataclass(frozen=True)
class BackupWindow:
    start: time
    end: time
    text: str

    def around(self, t: datetime, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
        """The occurrence of the window that contains ``t`` (None: ``t`` is outside every occurrence)."""
        local = t.astimezone(tz)
        for day in (local.date() - timedelta(days=1), local.date()):
            ws = datetime.combine(day, self.start, tz)
            we = datetime.combine(day if self.end > self.start else day + timedelta(days=1), self.end, tz)
            if ws <= local < we:
                return ws, we
        return None

    def next_after(self, t: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The occurrence containing ``t``, or else the next one to open after it."""
        got = self.around(t, tz)
        if got is not None:
            return got
        local = t.astimezone(tz)
        for day in (local.date(), local.date() + timedelta(days=1)):
            ws = datetime.combine(day, self.start, tz)
            if ws > local:
                we = datetime.combine(day if self.end > self.start else day + timedelta(days=1), self.end, tz)
                return ws, we
        raise AssertionError("unreachable: a window opens every day")


def parse_window(text: str) -> BackupWindow | None:
    """"HH:MM-HH:MM" (None for ""); raises ValueError for anything else."""
    text = text.strip()
    if not text:
        return None
    m = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", text)
    if m is None:
        raise ValueError(f"backup window {text!r}: expected HH:MM-HH:MM, e.g. 01:00-05:00")
    h1, m1, h2, m2 = (int(x) for x in m.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"backup window {text!r}: not a time of day")
    start, end = time(h1, m1), time(h2, m2)
    if start == end:
        raise ValueError(f"backup window {text!r}: it opens and closes at the same time")
    return BackupWindow(start, end, f"{start:%H:%M}-{end:%H:%M}")


@dataclass(frozen=True)
class Done:
    """A backup the repository holds: when, what type, the database's size (bytes)."""

    type: str
    start: datetime
    stop: datetime
    size: int

    @property
    def seconds(self) -> float:
        return max((self.stop - self.start).total_seconds(), 0.001)


@dataclass(frozen=True)
class Forecast:
    start: datetime  # the next full backup's scheduled start
    size: int  # the database's size then (bytes)
    seconds: float
    end: datetime
    rate: float  # bytes of database a second (median of the recent fulls)
    growth_per_day: float  # bytes
    fulls: int  # how many full backups the rate comes from


def growth_per_day(backups: Sequence[Done], now: datetime) -> float:
    """Least-squares slope of the database size over the backups of the last 30 days (0 with fewer than two)."""
    pts = [((b.stop - now).total_seconds() / 86400, float(b.size)) for b in backups if now - b.stop <= GROWTH_SPAN]
    if len(pts) < 2:
        return 0.0
    mx = statistics.fmean(x for x, _ in pts)
    my = statistics.fmean(y for _, y in pts)
    den = sum((x - mx) ** 2 for x, _ in pts)
    return 0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in pts) / den


def forecast(backups: Sequence[Done], next_start: datetime, now: datetime) -> Forecast | None:
    """The next full backup's end (None: no full backup to learn the speed from)."""
    fulls = sorted((b for b in backups if b.type == "full" and b.size > 0), key=lambda b: b.stop)[-RECENT_FULLS:]
    if not fulls:
        return None
    rate = statistics.median(b.size / b.seconds for b in fulls)
    newest = max(backups, key=lambda b: b.stop)
    growth = growth_per_day(backups, now)
    days = max((next_start - newest.stop).total_seconds() / 86400, 0.0)
    size = max(int(newest.size + growth * days), 0)
    seconds = size / rate if rate > 0 else 0.0
    return Forecast(next_start, size, seconds, next_start + timedelta(seconds=seconds), rate, growth, len(fulls))
