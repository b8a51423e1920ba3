"""What the service-level metrics say (docs/metrics.md), read from the state store only: the query objectives
over the 24 hours up to the last snapshot and the executions over each threshold since midnight, availability
over the last 30 days, and the last index report's figures (index-figures.json). No database is asked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from opsd.actions.report import index_figures
from opsd.adapters.stores.availability import AvailabilityStore
from opsd.context import Context
from opsd.core.availability import month as availability
from opsd.core.records.objectives import MET, MISSED
from opsd.core.records.service import Availability, IndexFigures

DAY = timedelta(hours=24)
AVAILABILITY_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class ObjectiveGauge:
    """``ratio``: share under the threshold over the 24 h up to the last snapshot, None unless ``state`` is met or
    missed (unknown, incomplete, no statements: no clean figure). ``over_today``: executions at or over the
    threshold counted since 00:00 (opsd.timezone) up to the last snapshot."""

    name: str
    target: float
    state: str
    ratio: float | None
    over_today: int


def objectives_mark(ctx: Context) -> tuple[str | None, datetime | None]:
    """The node whose duration log is counted and its last snapshot: the objective gauges change only with it."""
    from opsd.adapters.stores.objectives import ObjectiveStore
    from opsd.adapters.stores.queries import QueryStore

    node = ObjectiveStore(ctx.history.db).log_node()
    return node, QueryStore(ctx.history.db).last_taken(node) if node else None


def objective_gauges(ctx: Context, node: str, last: datetime) -> list[ObjectiveGauge]:
    """Each objective over the 24 h up to ``last`` (the last snapshot), or up to now when that snapshot is older
    than the tolerance (the snapshots stopped: the gap makes the 24 h incomplete, no ratio)."""
    from opsd.actions.queries.objectives import tolerance
    from opsd.actions.queries.slowlog import target_of
    from opsd.adapters.stores.objectives import ObjectiveStore
    from opsd.core.queries.objectives import judge, shares

    store, zone, now = ObjectiveStore(ctx.history.db), ctx.settings.opsd.tz, ctx.now()
    tol = tolerance(ctx, now)
    hi = last + timedelta(microseconds=1) if now - last <= tol else now  # windows taken in [lo, hi)
    midnight = hi.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    for o in ctx.settings.queries.objectives:
        t = target_of(o)
        windows = store.windows(node, t, min(hi - DAY, midnight), hi)
        calls, over, state, _why = judge([w for w in windows if w.taken_at >= hi - DAY], hi - DAY, hi, o.target,
                                         zone=zone, tolerance=tol)
        ratio = shares(calls, over)[1] if state in (MET, MISSED) else None
        out.append(ObjectiveGauge(name=o.name, target=o.target, state=state, ratio=ratio,
                                  over_today=sum(w.over for w in windows if w.taken_at >= midnight)))
    return out


class ObjectiveCache:
    """The objective gauges, recomputed only when a snapshot arrived, the configuration changed, or the snapshots
    stopped (a scrape every 15 s would otherwise sum a day of statements' deltas each time). One per collector."""

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._gauges: list[ObjectiveGauge] = []

    def get(self, ctx: Context) -> list[ObjectiveGauge]:
        node, last = objectives_mark(ctx) if ctx.settings.queries.enabled else (None, None)
        if node is None or last is None:
            return []
        from opsd.actions.queries.objectives import tolerance

        fresh = ctx.now() - last <= tolerance(ctx, ctx.now())
        key = (node, last, repr(ctx.settings.queries.objectives), ctx.settings.opsd.timezone)
        if not fresh or key != self._key:
            self._key, self._gauges = (key if fresh else None), objective_gauges(ctx, node, last)
        return self._gauges


def availability_gauge(ctx: Context) -> Availability:
    """The last 30 days as measured until now."""
    from opsd.actions.health.sample import availability_bound

    now = ctx.now()
    start = now - AVAILABILITY_WINDOW
    spans = AvailabilityStore(ctx.history.db).spans(start, now)
    return availability(spans, start, now, now=now, target=ctx.settings.queries.availability_target,
                        bound=availability_bound(ctx.settings, now))


def index_gauge(ctx: Context) -> IndexFigures | None:
    return index_figures.load(ctx.settings)
