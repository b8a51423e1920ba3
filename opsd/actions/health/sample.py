"""Health sampling: lock trees, long transactions, deadlocks, connections and PgBouncer pools, through one
reused probe connection (statement_timeout and lock_timeout set, at most one probe in flight). A probe that
times out is reported as such; it never queues behind a lock and never piles up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from opsd.actions import alerts
from opsd.actions.health.incidents import Changes, conditions, reconcile
from opsd.actions.health.locks import LockTree, build_trees, query_text
from opsd.actions.health.pool import ConnectionReport, PoolReport, connection_report, pool_report
from opsd.adapters import pgbouncer
from opsd.adapters.stores.health import HealthStore
from opsd.context import Context
from opsd.db.connection import Conn
from opsd.db.probe import Probe, ProbeBusy
from opsd.db.queries import (
    ConnectionRow,
    DeadlocksRow,
    LimitsRow,
    LockRow,
    SessionRow,
    WaiterRow,
    fetch_all,
    fetch_one,
)
from opsd.errors import OpsdError, QueryTimeout
from opsd.log import get_logger
from opsd.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class LongSession:
    pid: int
    state: str
    user: str
    database: str
    application: str
    xact_age: float | None
    state_age: float | None
    query: str


@dataclass
class LockReport:
    trees: list[LockTree]
    long_transactions: list[LongSession]
    idle_in_transaction: list[LongSession]
    deadlocks_total: int
    deadlocks_new: int | None  # since the previous sample (None: no previous sample)


@dataclass
class HealthSample:
    taken_at: datetime
    locks: LockReport | None = None
    connections: ConnectionReport | None = None
    pool: PoolReport | None = None
    problems: list[str] = field(default_factory=list)  # "locks: probe timed out ..." etc.

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.connections is not None:
            d["connections"]["utilisation"] = round(self.connections.utilisation, 1)
        if self.pool is not None:
            d["pool"]["waiting"] = self.pool.waiting
            d["pool"]["maxwait"] = self.pool.maxwait
            for p, raw in zip(d["pool"]["pools"], self.pool.pools, strict=True):
                p["saturation"] = round(raw.saturation, 1) if raw.saturation is not None else None
                p["saturated"] = raw.saturated
        return d


def _lock_report(settings: Settings, last_deadlocks: int | None) -> Callable[[Conn], LockReport]:
    h = settings.health
    render = query_text(h.show_query_text, h.query_text_length)

    def read(conn: Conn) -> LockReport:
        waiters = fetch_all(conn, "lock_waiters", WaiterRow)
        trees: list[LockTree] = []
        if waiters:
            pids = sorted({w.pid for w in waiters} | {b for w in waiters for b in w.blocked_by})
            sessions = {s.pid: s for s in fetch_all(conn, "sessions", SessionRow, {"pids": pids})}
            locks = fetch_all(conn, "session_locks", LockRow, {"pids": pids})
            trees = build_trees(waiters, sessions, locks, render)
        long = fetch_all(conn, "long_sessions", SessionRow, {
            "long_xact": h.long_transaction.total_seconds(), "idle_xact": h.idle_in_transaction.total_seconds()})
        total = fetch_one(conn, "deadlocks", DeadlocksRow).deadlocks

        def ls(s: SessionRow) -> LongSession:
            return LongSession(s.pid, s.state, s.usename, s.datname, s.application_name, s.xact_age, s.state_age,
                               render(s.query))

        idle = [ls(s) for s in long if s.state.startswith("idle in transaction")
                and (s.state_age or 0) > h.idle_in_transaction.total_seconds()]
        longx = [ls(s) for s in long if (s.xact_age or 0) > h.long_transaction.total_seconds()]
        return LockReport(trees, longx, idle, total,
                          None if last_deadlocks is None else max(0, total - last_deadlocks))

    return read


def _connections(conn: Conn) -> ConnectionReport:
    return connection_report(fetch_all(conn, "connections", ConnectionRow), fetch_one(conn, "connection_limits",
                                                                                   LimitsRow))


def take_sample(ctx: Context, probe: Probe, *, locks: bool = True, pool: bool = True,
                last_deadlocks: int | None = None) -> HealthSample:
    """One sample; each part that fails becomes a line in ``problems`` (the others are still reported)."""
    sample = HealthSample(taken_at=ctx.now())
    parts: list[tuple[str, Callable[[], None]]] = []
    if locks:
        parts.append(("locks", lambda: setattr(sample, "locks", probe.run(_lock_report(ctx.settings,
                                                                                        last_deadlocks)))))
    if pool:
        parts.append(("connections", lambda: setattr(sample, "connections", probe.run(_connections))))
        if ctx.settings.pgbouncer.enabled:
            parts.append(("pgbouncer", lambda: setattr(sample, "pool",
                                                       pool_report(pgbouncer.show_all(ctx.settings.pgbouncer)))))
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
    now = conditions(trees, pools, sample.connections, probe_problems, h)
    changes = reconcile(store.open_incidents(), now)
    at = sample.taken_at
    for c in changes.opened:
        iid = store.open(c.key, c.kind, at, summary=c.summary, peak=c.peak, worst={**c.worst, "_rank": list(c.rank)})
        alerts.fire(ctx, f"health.{c.key}", f"incident #{iid}: {c.summary}", severity="warning")
    for inc, c in changes.worse:
        store.seen(inc.id, at, (c.summary, c.peak, {**c.worst, "_rank": list(c.rank)}))
    for inc in changes.still:
        store.seen(inc.id, at, None)
    for inc in changes.closed:
        store.close(inc.id, at)
        alerts.resolve(ctx, f"health.{inc.key}", f"incident #{inc.id} cleared after "
                                                 f"{(at - inc.opened_at).total_seconds():.0f}s; worst: {inc.summary}")
    store.add_sample(at, sample.as_dict(), at - h.sample_retention)
    return changes


def last_deadlocks(store: HealthStore) -> int | None:
    last = store.last_sample()
    locks = (last or {}).get("locks") or {}
    value = locks.get("deadlocks_total")
    return int(value) if value is not None else None


def sample_job(ctx: Context, probe: Probe) -> str:
    """The scheduled sampler (not a history 'run': samples and incidents have their own tables)."""
    store = HealthStore(ctx.history.db)
    try:
        sample = take_sample(ctx, probe, last_deadlocks=last_deadlocks(store))
    except ProbeBusy as e:
        get_logger().warning("health.skipped", reason=str(e))
        return "skipped"
    changes = record(ctx, store, sample)
    get_logger().debug("health.sampled", problems=sample.problems, opened=len(changes.opened),
                       closed=len(changes.closed))
    return "failed" if sample.problems else "ok"
