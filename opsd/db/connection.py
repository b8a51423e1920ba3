"""The connection factory: application_name=opsd, connect/statement/lock timeouts, autocommit."""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import pwd
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import sql

from opsd.core.pgtext import pg_error
from opsd.errors import DatabaseError
from opsd.settings import PostgresSection

Conn = psycopg.Connection[Any]
Connect = Callable[[], Conn]
ConnectTo = Callable[[str], Conn]  # database name -> connection


# setresuid(2) by number: glibc's wrappers change every thread of the process (setxid broadcast), the raw system
# call only the calling thread, which is what a connect from one daemon thread needs.
_SYS_SETRESUID = {"x86_64": 117, "aarch64": 147}.get(platform.machine())
_KEEP = ctypes.c_long(-1)
_IDENTITY = threading.Lock()  # only for the fallback (other architectures): process-wide, so one at a time


def _set_thread_euid(number: int, uid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(ctypes.c_long(number), _KEEP, ctypes.c_long(uid), _KEEP) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def identity(run_as: str | None, host: str) -> Iterator[None]:
    """Connect over a Unix socket with ``run_as``'s identity when opsd runs as root.

    PostgreSQL's ``peer`` authentication (Debian's default for local connections) reads the connecting
    process's effective uid from the socket (SO_PEERCRED) at connect time: root switches the effective uid of
    the connecting thread to ``run_as`` for the connect() only, so ``sudo opsd`` and a root daemon need no
    pg_hba.conf edit. Other threads keep root's identity meanwhile.
    """
    if not run_as or run_as == "root" or os.geteuid() != 0 or not host.startswith("/"):
        yield
        return
    uid = pwd.getpwnam(run_as).pw_uid
    number = _SYS_SETRESUID
    if number is None:
        with _IDENTITY:
            os.seteuid(uid)
            try:
                yield
            finally:
                os.seteuid(0)
        return
    _set_thread_euid(number, uid)
    try:
        yield
    finally:
        _set_thread_euid(number, 0)


# Every name opsd's SQL uses is in pg_catalog or schema-qualified: nothing a database's users created (a function
# named like a built-in, an operator, a temporary table) can stand in for what opsd means to call.
SAFE_SEARCH_PATH = "pg_catalog,pg_temp"


def factory(pg: PostgresSection, *, lock_timeout_ms: int = 5000, run_as: str | None = None,
            search_path: str | None = SAFE_SEARCH_PATH) -> Connect:
    """A zero-argument callable that opens a new connection (the password comes from PGPASSWORD/.pgpass).
    ``run_as``: the OS identity for peer authentication over a Unix socket (see :func:`identity`).
    ``search_path``: None keeps the database's own (the operator's smoke queries)."""

    def connect() -> psycopg.Connection[Any]:
        options = (f"-c statement_timeout={int(pg.statement_timeout.total_seconds() * 1000)} "
                   f"-c lock_timeout={lock_timeout_ms}")
        if search_path is not None:
            options += f" -c search_path={search_path}"
        try:
            with identity(run_as, pg.host):
                return psycopg.connect(
                    host=pg.host, port=pg.port, user=pg.user, dbname=pg.dbname,
                    connect_timeout=max(1, int(pg.connect_timeout.total_seconds())),
                    application_name="opsd", options=options, autocommit=True,
                )
        except psycopg.OperationalError as e:
            first = pg_error(e) if str(e).strip() else "connection failed"
            raise DatabaseError(f"cannot connect to PostgreSQL at {pg.host}:{pg.port} as {pg.user}: {first}",
                                hint="check [postgres] host/port/user and pg_hba.conf") from None

    return connect


def per_database(pg: PostgresSection, run_as: str | None = None,
                 search_path: str | None = SAFE_SEARCH_PATH) -> ConnectTo:
    """Connections to any database of the server described by ``pg`` (a scratch instance: its socket and port)."""

    def connect(dbname: str) -> Conn:
        return factory(pg.model_copy(update={"dbname": dbname}), run_as=run_as, search_path=search_path)()

    return connect


def alter_system(conn: psycopg.Connection[Any], name: str, value: str) -> None:
    """ALTER SYSTEM SET name = value; ALTER SYSTEM takes no bind parameters, so compose safely."""
    stmt = sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
    try:
        conn.execute(stmt)
    except psycopg.Error as e:
        raise DatabaseError(f"ALTER SYSTEM SET {name} failed: {pg_error(e)}",
                            hint="opsd setup needs a superuser connection") from None


def reload_conf(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SELECT pg_reload_conf()")


def alter_system_reset(conn: psycopg.Connection[Any], names: list[str]) -> None:
    """ALTER SYSTEM RESET each name (one statement each: ALTER SYSTEM cannot run in a transaction block)."""
    for name in names:
        try:
            conn.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name)))
        except psycopg.Error as e:
            raise DatabaseError(f"ALTER SYSTEM RESET {name} failed: {pg_error(e)}") from None


def checkpoint(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.execute("CHECKPOINT")
    except psycopg.Error as e:
        raise DatabaseError(f"CHECKPOINT failed: {pg_error(e)}") from None
