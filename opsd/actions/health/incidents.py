"""Incidents (pure): which thresholds a health sample crosses, and how that changes the open incidents:
open the new ones, keep the worst moment of those still open, close those that cleared."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from opsd.core.records.health import ConnectionReport, IncidentMoment, LockTree, Pool, Slot
from opsd.core.records.runs import Incident
from opsd.core.units import human_bytes
from opsd.settings import HealthSection


@dataclass(frozen=True)
class Condition:
    key: str
    kind: str
    summary: str
    peak: float
    worst: IncidentMoment  # with its rank: larger is worse, decides which moment an incident keeps

    @property
    def rank(self) -> tuple[float, ...]:
        return self.worst.rank


def lock_condition(tree: LockTree, hs: HealthSection) -> Condition | None:
    if tree.longest_wait <= hs.lock_wait_threshold.total_seconds():
        return None
    return Condition(f"lock:{tree.root.pid}", "lock", tree.summary(), tree.longest_wait,
                     IncidentMoment(tree=tree, rank=(tree.waiters, tree.longest_wait)))


def pool_condition(p: Pool, hs: HealthSection) -> Condition | None:
    if p.maxwait <= hs.pool_wait_threshold.total_seconds():
        return None
    sat = f", {p.saturation:.0f}% of pool_size {p.pool_size}" if p.saturation is not None else ""
    return Condition(f"pool:{p.database}/{p.user}", "pool",
                     f"PgBouncer pool {p.database}/{p.user}: {p.cl_waiting} client(s) waiting, oldest {p.maxwait:.1f}s"
                     f"{sat}", p.maxwait, IncidentMoment(pool=p, rank=(p.maxwait, p.cl_waiting)))


def connections_condition(c: ConnectionReport, hs: HealthSection) -> Condition | None:
    if c.used_share <= hs.connections_threshold:
        return None
    return Condition("connections", "connections",
                     f"{c.total} client connections, {c.utilisation:.0f}% of {c.usable} usable "
                     f"(max_connections {c.max_connections} - {c.reserved} reserved)",
                     c.used_share, IncidentMoment(connections=c, rank=(c.used_share,)))


def slot_condition(s: Slot, hs: HealthSection) -> Condition | None:
    """An inactive slot holding back more WAL than allowed: pg_wal grows until the disk is full and the primary
    stops (max_slot_wal_keep_size, if set, caps it by invalidating the slot instead)."""
    if not s.retaining_too_much(int(hs.slot_retained_max)):
        return None
    retained = s.retained_bytes or 0
    return Condition(f"slot:{s.name}", "slot",
                     f"replication slot {s.name} ({s.kind}) is inactive and retains {human_bytes(retained)} of WAL "
                     f"(limit {human_bytes(int(hs.slot_retained_max))}): pg_wal grows until the disk is full; if "
                     f"its consumer is gone for good: select pg_drop_replication_slot('{s.name}')",
                     float(retained), IncidentMoment(slot=s, rank=(float(retained),)))


def conditions(trees: Sequence[LockTree], pools: Sequence[Pool], conns: ConnectionReport | None,
               probe_problems: Sequence[str], hs: HealthSection, *, slots: Sequence[Slot] = ()
               ) -> dict[str, Condition]:
    found = ([lock_condition(t, hs) for t in trees] + [pool_condition(p, hs) for p in pools]
             + [slot_condition(s, hs) for s in slots])
    if conns is not None:
        found.append(connections_condition(conns, hs))
    if probe_problems:
        found.append(Condition("probe", "probe", "; ".join(probe_problems), float(len(probe_problems)),
                               IncidentMoment(rank=(float(len(probe_problems)),))))
    return {c.key: c for c in found if c is not None}


@dataclass(frozen=True)
class Changes:
    opened: list[Condition]
    worse: list[tuple[Incident, Condition]]
    still: list[Incident]
    closed: list[Incident]


def reconcile(open_incidents: Sequence[Incident], now: dict[str, Condition]) -> Changes:
    by_key = {i.key: i for i in open_incidents}
    opened = [c for k, c in now.items() if k not in by_key]
    worse, still, closed = [], [], []
    for key, inc in by_key.items():
        cond = now.get(key)
        if cond is None:
            closed.append(inc)
        elif cond.rank > inc.worst.rank:
            worse.append((inc, cond))
        else:
            still.append(inc)
    return Changes(opened, worse, still, closed)
