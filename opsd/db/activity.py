"""Everything a health sample reads from the server in one round trip (sql/sample.sql: one scan of
pg_stat_activity, the locks of blocking trees, deadlocks and replication), turned into the typed rows the lock,
connection and replication reports read. At 1000 connections each scan costs about a millisecond on the server;
the sample used to make five round trips or more, and each one was a wake-up of both sides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opsd.core.records.health import Receiver, ReplicationReport, Slot, StandbyLag
from opsd.db.connection import Conn
from opsd.db.queries import ConnectionRow, LimitsRow, LockRow, SessionRow, WaiterRow, fetch_one


@dataclass(frozen=True)
class ActivityRow:
    max_connections: int
    reserved: int
    groups: list[dict[str, Any]]
    waiters: list[dict[str, Any]]
    tree_sessions: list[dict[str, Any]]
    long_sessions: list[dict[str, Any]]
    locks: list[dict[str, Any]]
    deadlocks: int
    in_recovery: bool
    standbys: list[dict[str, Any]]
    slots: list[dict[str, Any]]
    receiver: dict[str, Any] | None


@dataclass(frozen=True)
class Activity:
    limits: LimitsRow
    connections: list[ConnectionRow]
    waiters: list[WaiterRow]
    tree_sessions: dict[int, SessionRow]  # every member of a blocking tree, by pid
    long_sessions: list[SessionRow]
    locks: list[LockRow]  # of every session in a blocking tree (none read when no session waits)
    deadlocks: int  # since the statistics were reset, over all databases
    replication: ReplicationReport


def _session(d: dict[str, Any]) -> SessionRow:
    return SessionRow(int(d["pid"]), str(d["state"]), str(d["usename"]), str(d["datname"]),
                      str(d["application_name"]), str(d["client"]), str(d["wait_event_type"]), str(d["wait_event"]),
                      None if d["xact_age"] is None else float(d["xact_age"]),
                      None if d["state_age"] is None else float(d["state_age"]), str(d["query"]))


def _replication(row: ActivityRow) -> ReplicationReport:
    standbys = [StandbyLag(**{k: v for k, v in d.items() if k != "pid"}) for d in row.standbys]
    receiver = Receiver(**row.receiver) if row.in_recovery and row.receiver is not None else None
    return ReplicationReport(role="standby" if row.in_recovery else "primary", standbys=standbys,
                             slots=[Slot(**d) for d in row.slots], receiver=receiver)


def read_activity(conn: Conn, long_xact: float, idle_xact: float) -> Activity:
    """One statement, one round trip: everything the sample reports."""
    row = fetch_one(conn, "sample", ActivityRow, {"long_xact": long_xact, "idle_xact": idle_xact})
    limits = LimitsRow(row.max_connections, row.reserved)
    connections = [ConnectionRow(str(g["state"]), str(g["datname"]), str(g["usename"]), str(g["application_name"]),
                                 int(g["sessions"]), row.max_connections, row.reserved) for g in row.groups]
    waiters = [WaiterRow(int(w["pid"]), [int(b) for b in w["blocked_by"]]) for w in row.waiters]
    locks = [LockRow(int(k["pid"]), str(k["locktype"]), str(k["mode"]), bool(k["granted"]), k["relation"],
                     None if k["wait_age"] is None else float(k["wait_age"])) for k in row.locks]
    return Activity(limits, connections, waiters, {s.pid: s for s in map(_session, row.tree_sessions)},
                    [_session(s) for s in row.long_sessions], locks, int(row.deadlocks), _replication(row))
