"""The connection factory: application_name=opsd, connect/statement/lock timeouts, autocommit."""

from __future__ import annotations

import contextlib
import os
import pwd
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import sql

from opsd.errors import DatabaseError
from opsd.settings import PostgresSection

Conn = psycopg.Connection[Any]
Connect = Callable[[], Conn]
ConnectTo = Callable[[str], Conn]  # database name -> connection


_IDENTITY = threading.Lock()


@contextlib.contextmanager
def identity(run_as: str | None, host: str) -> Iterator[None]:
    """Connect over a Unix socket with ``run_as``'s identity when opsd runs as root.

    PostgreSQL's ``peer`` authentication (Debian's default for local connections) reads the connecting
    process's effective uid from the socket (SO_PEERCRED) at connect time: root switches its effective uid to
    ``run_as`` for the connect() only, so ``sudo opsd`` and a root daemon need no pg_hba.conf edit.
    """
    if not run_as or run_as == "root" or os.geteuid() != 0 or not host.startswith("/"):
        yield
        return
    uid = pwd.getpwnam(run_as).pw_uid
    with _IDENTITY:
        os.seteuid(uid)
        try:
            yield
        finally:
            os.seteuid(0)


def factory(pg: PostgresSection, *, lock_timeout_ms: int = 5000, run_as: str | None = None) -> Connect:
    """A zero-argument callable that opens a new connection (the password comes from PGPASSWORD/.pgpass).
    ``run_as``: the OS identity for peer authentication over a Unix socket (see :func:`identity`)."""

    def connect() -> psycopg.Connection[Any]:
        options = (f"-c statement_timeout={int(pg.statement_timeout.total_seconds() * 1000)} "
                   f"-c lock_timeout={lock_timeout_ms}")
        try:
            with identity(run_as, pg.host):
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


def per_database(pg: PostgresSection, run_as: str | None = None) -> ConnectTo:
    """Connections to any database of the server described by ``pg`` (a scratch instance: its socket and port)."""

    def connect(dbname: str) -> Conn:
        return factory(pg.model_copy(update={"dbname": dbname}), run_as=run_as)()

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


def alter_system_reset(conn: psycopg.Connection[Any], names: list[str]) -> None:
    """ALTER SYSTEM RESET each name (one statement each: ALTER SYSTEM cannot run in a transaction block)."""
    for name in names:
        try:
            conn.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name)))
        except psycopg.Error as e:
            raise DatabaseError(f"ALTER SYSTEM RESET {name} failed: {str(e).strip()}") from None


def checkpoint(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.execute("CHECKPOINT")
    except psycopg.Error as e:
        raise DatabaseError(f"CHECKPOINT failed: {str(e).strip()}") from None
