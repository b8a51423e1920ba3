"""A month of the fleet for its report: each cluster's drills (passed, failed), its last verdict, and the days it
was overdue (a day counts when any part of it was past ``drill_every`` since the last passed drill)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from opsd.core.records.fleet import ClusterEntry, DrillSummary


@dataclass(frozen=True)
class ClusterMonth:
    cluster: str
    stanza: str
    passed: int
    failed: int
    last: DrillSummary | None  # the last drill of the month, or before it
    overdue_days: tuple[date, ...]
    overdue_now: bool


@dataclass(frozen=True)
class FleetMonth:
    month: str  # YYYY-MM
    clusters: tuple[ClusterMonth, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.clusters)

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.clusters)

    @property
    def overdue_days(self) -> int:
        return sum(len(c.overdue_days) for c in self.clusters)


def overdue_spans(registered_at: datetime, passed: Sequence[datetime], every: timedelta,
                  until: datetime) -> list[tuple[datetime, datetime]]:
    """The times the cluster was overdue up to ``until``: from ``every`` after each passed drill (or its joining)
    to the next passed drill."""
    spans, since = [], registered_at
    for t in sorted(p for p in passed if p <= until):
        if t > since + every:
            spans.append((since + every, t))
        since = max(since, t)
    if until > since + every:
        spans.append((since + every, until))
    return spans


def days_touched(spans: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime,
                 tz: ZoneInfo) -> tuple[date, ...]:
    days: set[date] = set()
    for first, last in spans:
        a, b = max(first, start), min(last, end)
        d = a.astimezone(tz).date()
        while a < b and d <= (b - timedelta(microseconds=1)).astimezone(tz).date():
            days.add(d)
            d += timedelta(days=1)
    return tuple(sorted(days))


def fleet_month(month: str, start: datetime, end: datetime, clusters: Sequence[ClusterEntry],
                results: Mapping[str, Sequence[DrillSummary]], *, every: timedelta, now: datetime,
                tz: ZoneInfo) -> FleetMonth:
    until = min(now, end)
    rows = []
    for e in sorted(clusters, key=lambda c: c.cluster):
        drills = sorted(results.get(e.cluster, ()), key=lambda d: d.finished_at)
        within = [d for d in drills if start <= d.finished_at < end]
        before = [d for d in drills if d.finished_at < end]
        spans = overdue_spans(e.registered_at, [d.finished_at for d in drills if d.passed], every, until)
        rows.append(ClusterMonth(
            e.cluster, e.stanza, sum(d.passed for d in within), sum(not d.passed for d in within),
            before[-1] if before else None, days_touched(spans, start, until, tz),
            bool(spans) and spans[-1][1] == until and until == now))
    return FleetMonth(month, tuple(rows))
