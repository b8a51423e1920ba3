"""Replication health (part of every health sample): on a primary, each standby's lag and every replication
slot with the WAL it retains; on a standby, its own receive and replay position, lag and WAL source. Read on
the probe connection; which side is read follows ``pg_is_in_recovery()`` at the moment of the sample."""

from __future__ import annotations

from opsd.core.records.health import Receiver, ReplicationReport, Slot, StandbyLag
from opsd.db.connection import Conn
from opsd.db.queries import RecoveryRow, fetch_all, fetch_one


def replication_report(conn: Conn) -> ReplicationReport:
    standby = fetch_one(conn, "recovery", RecoveryRow).in_recovery
    return ReplicationReport(
        role="standby" if standby else "primary",
        standbys=fetch_all(conn, "replication_standbys", StandbyLag),  # a standby may feed cascading ones
        slots=fetch_all(conn, "replication_slots", Slot),
        receiver=fetch_one(conn, "replication_receiver", Receiver) if standby else None,
    )
