"""Console writers for health: blocking trees, long transactions, connections, PgBouncer pools, replication,
incidents."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from opsd.core.records.health import (
    ConnectionReport,
    HealthSample,
    LockNode,
    LockReport,
    PoolReport,
    ReplicationReport,
)
from opsd.core.records.runs import Incident
from opsd.core.units import human_bytes
from opsd.report.console import table, when


def _age(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}s" if v < 120 else f"{v / 60:.1f}m"


def _node_lines(n: LockNode, depth: int) -> list[str]:
    pad = "  " * depth + ("└─ " if depth else "")
    flag = "  <-- IDLE IN TRANSACTION" if n.idle_in_transaction else ""
    if n.waiting_for:
        what = f"waits {_age(n.wait_seconds)} for {n.waiting_for}"
    else:
        what = f"{n.state}, xact {_age(n.xact_age)}"
    holds = f"; holds {', '.join(n.holds)}" if n.holds else ""
    lines = [f"{pad}pid {n.pid} {n.user}@{n.database} ({n.application or '-'}, {n.client}): {what}{holds}{flag}"]
    if n.query:
        lines.append(f"{'  ' * depth}{'   ' if depth else ''}  {n.query}")
    for c in n.children:
        lines += _node_lines(c, depth + 1)
    return lines


def locks(r: LockReport) -> str:
    out = []
    if not r.trees:
        out.append("no session waits on a lock")
    for i, t in enumerate(r.trees, 1):
        out.append(f"blocking tree {i}: root pid {t.root.pid}, {t.waiters} waiter(s), depth {t.depth}, longest wait "
                   f"{_age(t.longest_wait)}; modes {', '.join(t.modes) or '-'}; on {', '.join(t.relations) or '-'}")
        out += ["  " + line for line in _node_lines(t.root, 0)]
    for title, rows in (("long transactions", r.long_transactions), ("idle in transaction", r.idle_in_transaction)):
        if rows:
            out += ["", f"{title}:", table(["pid", "user@db", "app", "state", "xact age", "in state", "query"], [
                (s.pid, f"{s.user}@{s.database}", s.application or "-", s.state, _age(s.xact_age), _age(s.state_age),
                 s.query[:60]) for s in rows])]
    new = "" if r.deadlocks_new is None else f", {r.deadlocks_new} since the last sample"
    out += ["", f"deadlocks: {r.deadlocks_total} since statistics reset{new}"]
    return "\n".join(out)


def connections(c: ConnectionReport) -> str:
    head = (f"client connections: {c.total} of {c.usable} usable ({c.utilisation:.0f}%; max_connections "
            f"{c.max_connections}, {c.reserved} reserved)")
    groups = []
    for title, d in (("state", c.by_state), ("database", c.by_database), ("user", c.by_user),
                     ("application", c.by_application)):
        groups.append(f"  by {title}: " + ", ".join(f"{k} {v}" for k, v in list(d.items())[:8]))
    return "\n".join([head, *groups])


def pool(p: PoolReport) -> str:
    rows = [(x.database, x.user, x.pool_mode or "-", x.cl_active, x.cl_waiting, _age(x.maxwait), x.sv_active, x.sv_idle,
             x.sv_used, x.pool_size or "-", f"{x.saturation:.0f}%" if x.saturation is not None else "-",
             "SATURATED" if x.saturated else "") for x in p.pools]
    text = table(["database", "user", "mode", "cl_active", "cl_waiting", "maxwait", "sv_active", "sv_idle", "sv_used",
                  "pool_size", "use", ""], rows) if rows else "no PgBouncer pools"
    if p.stats:
        text += "\n\n" + table(["database", "avg query", "avg wait", "avg xact", "transactions"], [
            (s.database, f"{s.avg_query_us / 1000:.1f}ms", f"{s.avg_wait_us / 1000:.1f}ms",
             f"{s.avg_xact_us / 1000:.1f}ms", s.total_xact_count) for s in p.stats])
    return f"PgBouncer pools: {p.waiting} client(s) waiting, oldest {_age(p.maxwait)}\n{text}"


def _bytes(v: int | None) -> str:
    return "-" if v is None else human_bytes(v)


def replication(r: ReplicationReport, tz: ZoneInfo, slot_limit: int) -> str:
    parts = [f"replication: this server is a {r.role}"]
    if r.receiver is not None:
        x = r.receiver
        paused = "  REPLAY PAUSED" if x.paused else ""
        parts.append(f"  WAL from {x.source}{' ' + x.sender if x.sender else ''}; received {x.receive_lsn or '-'}, "
                     f"replayed {x.replay_lsn or '-'}; replay lag {_bytes(x.replay_lag_bytes)}, {_age(x.replay_lag)}; "
                     f"last replayed transaction {when(x.last_replayed_at, tz) if x.last_replayed_at else '-'}"
                     f"{paused}")
    if r.standbys:
        parts += ["", table(["standby", "client", "state", "sync", "write lag", "flush lag", "replay lag",
                             "replay lag time"], [
            (b.name, b.client, b.state, b.sync_state, _bytes(b.write_lag_bytes), _bytes(b.flush_lag_bytes),
             _bytes(b.replay_lag_bytes), _age(b.replay_lag)) for b in r.standbys])]
    elif r.role == "primary":
        parts.append("  no standby connected")
    if r.slots:
        parts += ["", table(["slot", "type", "active", "WAL retained", "wal_status", ""], [
            (x.name, x.kind, "yes" if x.active else "NO", _bytes(x.retained_bytes), x.wal_status or "-",
             "RETAINS TOO MUCH" if x.retaining_too_much(slot_limit) else "") for x in r.slots])]
    return "\n".join(parts)


def sample(s: HealthSample, tz: ZoneInfo, slot_limit: int = 1024**3) -> str:
    parts = [f"health at {when(s.taken_at, tz)}"]
    if s.locks is not None:
        parts += ["", locks(s.locks)]
    if s.connections is not None:
        parts += ["", connections(s.connections)]
    if s.pool is not None:
        parts += ["", pool(s.pool)]
    if s.replication is not None:
        parts += ["", replication(s.replication, tz, slot_limit)]
    if s.problems:
        parts += ["", "problems:", *(f"  {p}" for p in s.problems)]
    return "\n".join(parts)


def incidents(rows: Sequence[Incident], tz: ZoneInfo) -> str:
    if not rows:
        return "no incidents"
    return table(["id", "kind", "key", "opened", "closed", "lasted", "worst"], [
        (i.id, i.kind, i.key, when(i.opened_at, tz), when(i.closed_at, tz) if i.closed_at else "OPEN",
         _age(((i.closed_at or i.last_seen) - i.opened_at).total_seconds()), i.summary[:100]) for i in rows])
