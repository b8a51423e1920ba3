"""The fleet read back in one pass (``opsd fleet status``, ``opsd fleet report``, the daemon's fleet tick): every
cluster with its drills, when it is due, whether it is overdue or too large for every drill host, the claims in
flight, and the drill hosts alive."""

from __future__ import annotations

from datetime import datetime

from opsd.actions.fleet.store import FleetStore
from opsd.actions.fleet.view import ClusterRow, FleetView
from opsd.actions.report.data import month_bounds, parse_month
from opsd.context import Context
from opsd.core.fleet.month import FleetMonth, fleet_month
from opsd.core.fleet.pick import drills_of, due_at, overdue_by, too_large
from opsd.core.records.fleet import DrillSummary
from opsd.errors import ConfigError
from opsd.settings import Settings


def require_fleet(s: Settings) -> None:
    if not s.fleet.enabled:
        raise ConfigError(s.source, ["fleet.endpoints: empty: this host belongs to no fleet (docs/fleet.md)"])


def view_of(store: FleetStore, s: Settings, now: datetime,
            results: dict[str, list[DrillSummary]] | None = None) -> FleetView:
    entries, hosts, claims = store.entries(), store.hosts(), store.claims()
    results = store.results() if results is None else results
    big = set(too_large(entries, hosts))
    every = s.fleet.drill_every
    rows = []
    for e in sorted(entries, key=lambda x: x.cluster):
        d = drills_of(e, results.get(e.cluster, ()))
        rows.append(ClusterRow(e, d, due_at(e, d, every), overdue_by(e, d, every, now), claims.get(e.cluster),
                               e.cluster in big))
    return FleetView(s.fleet.name, now, every, tuple(rows), tuple(sorted(hosts, key=lambda h: h.host)))


def read_view(ctx: Context) -> FleetView:
    require_fleet(ctx.settings)
    store = FleetStore.of(ctx.settings)
    try:
        return view_of(store, ctx.settings, ctx.now())
    finally:
        store.close()


def read_month(ctx: Context, month: str) -> tuple[FleetMonth, FleetView]:
    require_fleet(ctx.settings)
    year, mon = parse_month(month)
    tz = ctx.settings.opsd.tz
    start, end = month_bounds(year, mon, tz)
    store = FleetStore.of(ctx.settings)
    try:
        results = store.results()
        view = view_of(store, ctx.settings, ctx.now(), results)
    finally:
        store.close()
    merged = {r.entry.cluster: _with_own(results.get(r.entry.cluster, []), r.entry.last_drill)
              for r in view.clusters}
    fm = fleet_month(f"{year:04d}-{mon:02d}", start, end, [r.entry for r in view.clusters], merged,
                     every=ctx.settings.fleet.drill_every, now=ctx.now(), tz=tz)
    return fm, view


def _with_own(results: list[DrillSummary], own: DrillSummary | None) -> list[DrillSummary]:
    """The fleet's results and the cluster's own last drill (one it ran itself), without counting one twice."""
    if own is None or any(r.started_at == own.started_at and r.host == own.host for r in results):
        return results
    return [*results, own]
