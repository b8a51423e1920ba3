"""One scan of pg_stat_activity per health sample (sql/activity.sql), turned into the typed rows the lock and
connection reports read. At 1000 connections each scan costs about a millisecond on the server, and the three
that the sample used to make came to most of its time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opsd.db.connection import Conn
from opsd.db.queries import ConnectionRow, LimitsRow, SessionRow, WaiterRow, fetch_one


@dataclass(frozen=True)
class ActivityRow:
    max_connections: int
    reserved: int
    groups: list[dict[str, Any]]
    waiters: list[dict[str, Any]]
    tree_sessions: list[dict[str, Any]]
    long_sessions: list[dict[str, Any]]


@dataclass(frozen=True)
class Activity:
    limits: LimitsRow
    connections: list[ConnectionRow]
    waiters: list[WaiterRow]
    tree_sessions: dict[int, SessionRow]  # every member of a blocking tree, by pid
    long_sessions: list[SessionRow]


def _session(d: dict[str, Any]) -> SessionRow:
    return SessionRow(int(d["pid"]), str(d["state"]), str(d["usename"]), str(d["datname"]),
                      str(d["application_name"]), str(d["client"]), str(d["wait_event_type"]), str(d["wait_event"]),
                      None if d["xact_age"] is None else float(d["xact_age"]),
                      None if d["state_age"] is None else float(d["state_age"]), str(d["query"]))


def read_activity(conn: Conn, long_xact: float, idle_xact: float) -> Activity:
    row = fetch_one(conn, "activity", ActivityRow, {"long_xact": long_xact, "idle_xact": idle_xact})
    limits = LimitsRow(row.max_connections, row.reserved)
    connections = [ConnectionRow(str(g["state"]), str(g["datname"]), str(g["usename"]), str(g["application_name"]),
                                 int(g["sessions"]), row.max_connections, row.reserved) for g in row.groups]
    waiters = [WaiterRow(int(w["pid"]), [int(b) for b in w["blocked_by"]]) for w in row.waiters]
    return Activity(limits, connections, waiters, {s.pid: s for s in map(_session, row.tree_sessions)},
                    [_session(s) for s in row.long_sessions])
