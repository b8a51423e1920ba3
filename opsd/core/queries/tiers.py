"""How long query-statistics snapshots keep their 5-minute resolution (pure): a month of snapshots for 5,000
statements would otherwise take gigabytes. Snapshots younger than ``FINE`` stay as taken; older ones are merged
into one per hour of ``[opsd] timezone``, and those older than ``HOURLY`` into one per day (their deltas summed, the
window of the merged snapshot from the first one's start to the last one's end). Totals over any window of whole
hours (of whole days, further back) are the same as before the merge; only the resolution goes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

FINE = timedelta(hours=26)  # "the last 24 hours" at full resolution
HOURLY = timedelta(days=8)  # "the last 7 days" by the hour; beyond, by the day


@dataclass(frozen=True)
class Taken:
    id: int
    node: str
    taken_at: datetime


def _floor(at: datetime, step: str, tz: tzinfo) -> datetime:
    local = at.astimezone(tz)
    if step == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _next(start: datetime, step: str, tz: tzinfo) -> datetime:
    """The next bucket's start (a day is a calendar day: 23 or 25 hours across a DST change)."""
    if step == "hour":
        return (start.astimezone(UTC) + timedelta(hours=1)).astimezone(tz)
    day = start.date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def buckets(snapshots: Iterable[Taken], now: datetime, tz: tzinfo) -> list[list[Taken]]:
    """Groups of snapshots of one node to merge, oldest first: each a whole hour (between ``HOURLY`` and
    ``FINE`` old) or a whole day (older than ``HOURLY``) holding more than one snapshot."""
    hourly_edge, daily_edge = now - FINE, now - HOURLY
    groups: dict[tuple[str, datetime], list[Taken]] = {}
    for s in sorted(snapshots, key=lambda s: (s.taken_at, s.id)):
        step = "day" if s.taken_at < daily_edge else "hour" if s.taken_at < hourly_edge else None
        if step is None:
            continue
        start = _floor(s.taken_at, step, tz)
        edge = daily_edge if step == "day" else hourly_edge
        if _next(start, step, tz) <= edge:
            groups.setdefault((s.node, start), []).append(s)
    return [g for _, g in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])) if len(g) > 1]


def merged_log_state(states: Iterable[str]) -> str:
    """One state for a merged window: the same as each part's, else unknown (a part not known complete)."""
    seen = set(states)
    return seen.pop() if len(seen) == 1 else "unknown"


def merged_problems(parts: Iterable[list[str]], limit: int = 20) -> list[str]:
    out: list[str] = []
    for problems in parts:
        out += [p for p in problems if p not in out]
    return out if len(out) <= limit else [*out[:limit - 1], f"and {len(out) - limit + 1} more problem(s)"]
