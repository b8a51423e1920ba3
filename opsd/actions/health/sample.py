"""Health sampling: lock trees, long transactions, deadlocks, connections, PgBouncer pools and replication, through one
reused probe connection (statement_timeout and lock_timeout set, at most one probe in flight) and one round trip
(db/sql/sample.sql): a sample costs the server one statement. A probe that times out is reported as such; it
never queues behind a lock and never piles up."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta

from opsd.actions import alerts
from opsd.actions.health.incidents import Changes, conditions, reconcile
from opsd.actions.health.locks import build_trees, query_text
from opsd.actions.health.pool import connection_report, pool_report
from opsd.adapters import pgbouncer
from opsd.adapters.stores.availability import AvailabilityStore
from opsd.adapters.stores.health import HealthStore
from opsd.context import Context
from opsd.core.records.health import HealthSample, LockReport, LockTree, LongSession
from opsd.core.units import format_duration
from opsd.db.activity import Activity, read_activity
from opsd.db.connection import Conn
from opsd.db.probe import Probe, ProbeBusy
from opsd.db.queries import SessionRow
from opsd.errors import OpsdError, QueryTimeout
from opsd.log import get_logger
from opsd.settings import Settings


def _lock_report(settings: Settings, last_deadlocks: int | None, act: Activity) -> LockReport:
    h = settings.health
    render = query_text(h.show_query_text, h.query_text_length)
    trees: list[LockTree] = []
    if act.waiters:
        trees = build_trees(act.waiters, act.tree_sessions, act.locks, render)
    total = act.deadlocks

    def ls(s: SessionRow) -> LongSession:
        return LongSession(s.pid, s.state, s.usename, s.datname, s.application_name, s.xact_age, s.state_age,
                           render(s.query))

    long = act.long_sessions
    idle = [ls(s) for s in long if s.state.startswith("idle in transaction")
            and (s.state_age or 0) > h.idle_in_transaction.total_seconds()]
    longx = [ls(s) for s in long if (s.xact_age or 0) > h.long_transaction.total_seconds()]
    return LockReport(trees, longx, idle, total, None if last_deadlocks is None else max(0, total - last_deadlocks))


def _activity(settings: Settings) -> Callable[[Conn], Activity]:
    h = settings.health
    return lambda conn: read_activity(conn, h.long_transaction.total_seconds(), h.idle_in_transaction.total_seconds())


def take_sample(ctx: Context, probe: Probe, *, locks: bool = True, pool: bool = True, replication: bool = True,
                last_deadlocks: int | None = None) -> HealthSample:
    """One sample; each part that fails becomes a line in ``problems`` (the others are still reported). The
    server is read in one statement: when it fails, each part that needed it says so."""
    sample = HealthSample(taken_at=ctx.now())
    parts: list[tuple[str, Callable[[], None]]] = []
    act: list[Activity | OpsdError] = []  # the one read of the server (or why it failed), shared by every part

    def activity() -> Activity:
        if not act:
            try:
                act.append(probe.run(_activity(ctx.settings)))
            except OpsdError as e:
                act.append(e)
        if isinstance(act[0], OpsdError):
            raise act[0]
        return act[0]

    if locks:
        parts.append(("locks", lambda: setattr(sample, "locks", _lock_report(ctx.settings, last_deadlocks,
                                                                             activity()))))
    if pool:
        parts.append(("connections", lambda: setattr(sample, "connections", connection_report(
            activity().connections, activity().limits))))
        if ctx.settings.pgbouncer.enabled:
            parts.append(("pgbouncer", lambda: setattr(sample, "pool",
                                                       pool_report(pgbouncer.show_all(ctx.settings.pgbouncer)))))
    if replication:
        parts.append(("replication", lambda: setattr(sample, "replication", activity().replication)))
    for name, fn in parts:
        try:
            fn()
        except QueryTimeout as e:
            sample.problems.append(f"{name}: probe timed out ({e})")
        except OpsdError as e:
            sample.problems.append(f"{name}: {e}")
    return sample


def record(ctx: Context, store: HealthStore, sample: HealthSample) -> Changes:
    """Store the sample and move incidents: open, keep the worst moment, close; alert events for each."""
    h = ctx.settings.health
    trees = sample.locks.trees if sample.locks else []
    pools = sample.pool.pools if sample.pool else []
    probe_problems = [p for p in sample.problems if "probe timed out" in p]
    slots = sample.replication.slots if sample.replication else []
    now = conditions(trees, pools, sample.connections, probe_problems, h, slots=slots)
    changes = reconcile(store.open_incidents(), now)
    at = sample.taken_at
    for c in changes.opened:
        iid = store.open(c.key, c.kind, at, summary=c.summary, peak=c.peak, worst=c.worst)
        alerts.fire(ctx, f"health.{c.key}", f"incident #{iid}: {c.summary}", severity="warning")
    for inc, c in changes.worse:
        store.seen(inc.id, at, (c.summary, c.peak, c.worst))
    for inc in changes.still:
        store.seen(inc.id, at, None)
    for inc in changes.closed:
        store.close(inc.id, at)
        alerts.resolve(ctx, f"health.{inc.key}", f"incident #{inc.id} cleared after "
                                                 f"{(at - inc.opened_at).total_seconds():.0f}s; worst: {inc.summary}")
    store.add_sample(sample)
    if h.sample_retention is not None:
        _deprecated("health.sample_retention", f'keep = "all:{format_duration(h.sample_retention)}"')
    store.prune(h.retention, at)
    return changes


@functools.cache
def _deprecated(key: str, instead: str) -> None:
    """Once a process: the daemon says it at its first sample, not every 30 s."""
    get_logger().warning("config.deprecated", key=key, instead=instead, hint="docs/health.md, Retention")


def last_deadlocks(store: HealthStore) -> int | None:
    last = store.last_sample()
    return last.locks.deadlocks_total if last is not None and last.locks is not None else None


def availability_bound(settings: Settings, now: datetime) -> timedelta:
    """How long after a span's last probe the next one still extends it: three sampling intervals (90 s at the
    default 30 s); a later probe starts a new span, the time between unknown."""
    schedule = settings.schedule.parsed("health")
    return 3 * (schedule.period(now) if schedule is not None else timedelta(seconds=30))


def note_availability(ctx: Context, probe: Probe, at: datetime) -> None:
    """Extend the availability spans with what the sample's probe proved (nothing when it proved neither)."""
    if probe.reach is not None:
        AvailabilityStore(ctx.history.db).note(probe.reach, at, availability_bound(ctx.settings, at))


def sample_job(ctx: Context, probe: Probe) -> str:
    """The scheduled sampler (not a history 'run': samples and incidents have their own tables), and the
    availability spans its probe proves (core/availability.py)."""
    store = HealthStore(ctx.history.db)
    probe.reach = None  # a busy probe proves nothing: no outcome of an earlier probe is noted again
    try:
        sample = take_sample(ctx, probe, last_deadlocks=last_deadlocks(store))
    except ProbeBusy as e:
        get_logger().warning("health.skipped", reason=str(e))
        return "skipped"
    note_availability(ctx, probe, sample.taken_at)
    changes = record(ctx, store, sample)
    get_logger().debug("health.sampled", problems=sample.problems, opened=len(changes.opened),
                       closed=len(changes.closed))
    return "failed" if sample.problems else "ok"
