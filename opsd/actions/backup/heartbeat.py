"""Heartbeat marker rows on the primary: ``opsd setup`` creates ``opsd.heartbeat``; the daemon writes a row
every ``drill.heartbeat_interval`` and prunes rows older than ``drill.heartbeat_retention``.

Every drill compares the restored rows with these: ground truth for "the data at T is there". The writes also
keep WAL moving on an idle system.
"""

from __future__ import annotations

from opsd.context import Context
from opsd.db.queries import HeartbeatRow, execute, execute_script, fetch_one
from opsd.errors import DatabaseError


def ensure_table(ctx: Context) -> None:
    with ctx.connect() as conn:
        execute_script(conn, "heartbeat_setup")


def write(ctx: Context) -> HeartbeatRow:
    """One marker row, then pruning of old ones. Raises DatabaseError on a standby or without the table."""
    with ctx.connect() as conn:
        try:
            row = fetch_one(conn, "heartbeat_write", HeartbeatRow)
        except DatabaseError as e:
            if "does not exist" in str(e):
                e.hint = "run 'opsd setup' on the primary to create opsd.heartbeat"
            elif "read-only" in str(e):
                e.hint = "this server is a standby: heartbeats are written on the primary"
            raise
        execute(conn, "heartbeat_prune", {"keep": ctx.settings.drill.heartbeat_retention})
    return row
