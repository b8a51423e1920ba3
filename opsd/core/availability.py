"""Availability from the health probe (pure): how each probe's outcome extends the up/down spans kept in the state
store, and what a month of spans says.

A probe is **up** when the server answered the sample's statement, **down** when opsd could not connect (refused,
no socket, connect timeout, the server starting or shutting down, too many connections), the statement timed out,
or the connection broke under it. Anything else (an authentication or privilege error, a failing query on a server
that answers) proves neither and is not counted. A sample's state holds until the next sample: a span runs from
its first sample to the sample that ended it (the next state's first), or to its own last sample when no sample
followed within ``bound`` (three sampling intervals). Time between spans is **unknown**: opsd was not running or
not sampling; it is never counted as up.

A month: up, down and unknown seconds of [start, min(end, now)); the share up as measured, up / (up + down), and
its lower bound, up / the whole period (unknown counted as down). The target is met when down + unknown fit in the
period's downtime budget ((1 - target) x period), missed when down alone exceeds it, not proven otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opsd.core.records.service import (
    MET,
    MISSED,
    NO_DATA,
    NOT_PROVEN,
    Availability,
    AvailabilityDay,
    AvailabilitySpan,
    Outage,
)

UP, DOWN = "up", "down"
WHAT_MAX = 400  # characters of "what failed" kept on a span


@dataclass(frozen=True)
class Reach:
    """One probe's outcome: ``state`` up or down, and for down what failed (one line)."""

    state: str
    what: str = ""


@dataclass(frozen=True)
class Step:
    """What one probe does to the spans: ``update`` the last span (its new end and what), and/or ``new`` one."""

    update: AvailabilitySpan | None = None
    new: AvailabilitySpan | None = None


def _what(old: str, new: str) -> str:
    """The distinct failures of a down span, in order, up to three and WHAT_MAX characters."""
    parts = [p for p in old.split(" | ") if p]
    if new and new not in parts and len(parts) < 3:
        parts.append(new)
    return " | ".join(parts)[:WHAT_MAX]


def step(last: AvailabilitySpan | None, reach: Reach, at: datetime, bound: timedelta) -> Step:
    """The change one probe at ``at`` makes. A probe not after the last span's end (a clock stepped back) changes
    nothing; one within ``bound`` of it extends it (same state) or ends it there and starts the next; a later one
    starts a new span, the gap left unknown."""
    first = AvailabilitySpan(state=reach.state, start_at=at, end_at=at, what=reach.what[:WHAT_MAX])
    if last is None:
        return Step(new=first)
    if at <= last.end_at:
        return Step()
    if at - last.end_at > bound:
        return Step(new=first)
    if last.state == reach.state:
        return Step(update=last.model_copy(update={"end_at": at, "what": _what(last.what, reach.what)}))
    return Step(update=last.model_copy(update={"end_at": at}), new=first)


def _clip(s: AvailabilitySpan, start: datetime, end: datetime) -> float:
    """Seconds of the span inside [start, end) (real seconds, whatever the timezones)."""
    return max(0.0, (min(s.end_at, end).astimezone(UTC) - max(s.start_at, start).astimezone(UTC)).total_seconds())


def outages(spans: Sequence[AvailabilitySpan], start: datetime, end: datetime, now: datetime,
            bound: timedelta) -> list[Outage]:
    """Each down span that overlaps [start, end), clipped to it. ``ended``: ``up`` (a probe answered again),
    ``unknown`` (no probe followed: opsd stopped sampling while it was down), ``ongoing`` (the last span, probed
    within ``bound`` of now), ``period end`` (it went on past the month)."""
    ordered = sorted(spans, key=lambda s: (s.start_at, s.end_at))
    out = []
    for i, s in enumerate(ordered):
        if s.state != DOWN or s.end_at < start or s.start_at >= end:
            continue
        nxt = ordered[i + 1] if i + 1 < len(ordered) else None
        if s.end_at >= end:
            ended = "period end"
        elif nxt is not None and nxt.start_at == s.end_at:
            ended = "up"
        elif nxt is None and now - s.end_at <= bound:
            ended = "ongoing"
        else:
            ended = "unknown"
        lo, hi = max(s.start_at, start).astimezone(start.tzinfo), min(s.end_at, end).astimezone(start.tzinfo)
        out.append(Outage(start=lo, end=hi, seconds=_clip(s, start, end), what=s.what, ended=ended))
    return out


def _days(spans: Sequence[AvailabilitySpan], start: datetime, end: datetime) -> list[AvailabilityDay]:
    """Per calendar day of [start, end) in ``start``'s timezone: up, down and unknown seconds."""
    days, day = [], start
    while day < end:
        local = (day + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)  # wall clock
        nxt = min(local.astimezone(UTC), end)
        up = sum(_clip(s, day, nxt) for s in spans if s.state == UP)
        down = sum(_clip(s, day, nxt) for s in spans if s.state == DOWN)
        total = (nxt - day.astimezone(UTC)).total_seconds()
        days.append(AvailabilityDay(day=f"{day:%Y-%m-%d}", up_seconds=up, down_seconds=down,
                                    unknown_seconds=max(0.0, total - up - down)))
        day = local if local.astimezone(UTC) < end else end
    return days


def month(spans: Sequence[AvailabilitySpan], start: datetime, end: datetime, *, now: datetime, target: float,
          bound: timedelta) -> Availability:
    """The month [start, end) as measured until ``now`` (the current month: so far); times and days in
    ``start``'s timezone."""
    until = max(start, min(end, now)).astimezone(start.tzinfo)
    period = (until.astimezone(UTC) - start.astimezone(UTC)).total_seconds()  # real seconds across DST
    up = sum(_clip(s, start, until) for s in spans if s.state == UP)
    down = sum(_clip(s, start, until) for s in spans if s.state == DOWN)
    unknown = max(0.0, period - up - down)
    budget = (1 - target) * period
    if up + down == 0:
        verdict = NO_DATA
    elif down > budget:
        verdict = MISSED
    elif down + unknown <= budget:
        verdict = MET
    else:
        verdict = NOT_PROVEN
    return Availability(
        period_start=start, period_end=until, target=target, up_seconds=up, down_seconds=down,
        unknown_seconds=unknown, measured_share=up / (up + down) if up + down else None,
        lower_bound=up / period if period else None, budget_seconds=budget, verdict=verdict,
        outages=outages(spans, start, until, now, bound), days=_days(spans, start, until))
