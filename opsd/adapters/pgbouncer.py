"""PgBouncer's admin console (SHOW POOLS / STATS / DATABASES). The console speaks only the simple query
protocol, hence psycopg's ClientCursor. The password comes from a systemd credential, a file or the
environment, never the config."""

from __future__ import annotations

from typing import Any

import psycopg

from opsd.adapters import secrets
from opsd.errors import DatabaseError
from opsd.settings import PgBouncerSection

SHOWS = ("POOLS", "STATS", "DATABASES")


def password(s: PgBouncerSection) -> str | None:
    """The systemd credential pgbouncer-password, else pgbouncer.password_file, else $<password_env>."""
    return secrets.secret(secrets.PGBOUNCER_PASSWORD, file=s.password_file, key="pgbouncer.password_file",
                          env=s.password_env)


def _rows(conn: psycopg.Connection[Any], what: str) -> list[dict[str, Any]]:
    cur = conn.execute(f"SHOW {what}")  # a fixed word from SHOWS, never user input
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def show_all(s: PgBouncerSection) -> dict[str, list[dict[str, Any]]]:
    """One short connection to the admin console; SHOW POOLS, STATS and DATABASES as lists of dicts (columns
    differ between PgBouncer versions: callers read them by name)."""
    try:
        with psycopg.connect(host=s.host, port=s.port, user=s.admin_user, dbname=s.dbname, password=password(s),
                             connect_timeout=max(1, int(s.connect_timeout.total_seconds())), autocommit=True,
                             cursor_factory=psycopg.ClientCursor) as conn:
            return {w.lower(): _rows(conn, w) for w in SHOWS}
    except psycopg.Error as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DatabaseError(f"PgBouncer admin console at {s.host}:{s.port} as {s.admin_user}: {first}",
                            hint=f"check [pgbouncer] host/port/admin_user (admin_users or stats_users in "
                                 f"pgbouncer.ini) and the password in ${s.password_env}") from None
