"""The connection factory: application_name=opsd, connect/statement/lock timeouts, autocommit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from opsd.errors import DatabaseError
from opsd.settings import PostgresSection

Conn = psycopg.Connection[Any]
Connect = Callable[[], Conn]
ConnectTo = Callable[[str], Conn]  # database name -> connection


def factory(pg: PostgresSection, *, lock_timeout_ms: int = 5000) -> Connect:
    """A zero-argument callable that opens a new connection (the password comes from PGPASSWORD/.pgpass)."""

    def connect() -> psycopg.Connection[Any]:
        options = (f"-c statement_timeout={int(pg.statement_timeout.total_seconds() * 1000)} "
                   f"-c lock_timeout={lock_timeout_ms}")
        try:
            return psycopg.connect(
                host=pg.host, port=pg.port, user=pg.user, dbname=pg.dbname,
                connect_timeout=max(1, int(pg.connect_timeout.total_seconds())),
                application_name="opsd", options=options, autocommit=True,
            )
        except psycopg.OperationalError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else "connection failed"
            raise DatabaseError(f"cannot connect to PostgreSQL at {pg.host}:{pg.port} as {pg.user}: {first}",
                                hint="check [postgres] host/port/user and pg_hba.conf") from None

    return connect


def per_database(pg: PostgresSection) -> ConnectTo:
    """Connections to any database of the server described by ``pg`` (a scratch instance: its socket and port)."""

    def connect(dbname: str) -> Conn:
        return factory(pg.model_copy(update={"dbname": dbname}))()

    return connect


def alter_system(conn: psycopg.Connection[Any], name: str, value: str) -> None:
    """ALTER SYSTEM SET name = value; ALTER SYSTEM takes no bind parameters, so compose safely."""
    stmt = sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
    try:
        conn.execute(stmt)
    except psycopg.Error as e:
        raise DatabaseError(f"ALTER SYSTEM SET {name} failed: {str(e).strip()}",
                            hint="opsd setup needs a superuser connection") from None


def reload_conf(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SELECT pg_reload_conf()")
