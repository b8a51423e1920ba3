"""What a migration rehearsal reads on its copy (and, for one check, on production): relations with their file
nodes and sizes, constraints, the migration role's locks and sessions, the WAL position, each table's rows as
checksums. The SQL is in ``sql/rehearse_*.sql``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from opsd.core.pgtext import pg_error
from opsd.db.connection import Conn
from opsd.db.queries import NameRow, fetch_all, fetch_one, load
from opsd.errors import DatabaseError


@dataclass(frozen=True)
class RelationRow:
    oid: int
    name: str
    kind: str
    filenode: int
    bytes: int
    rows: int | None  # estimated (pg_class.reltuples); None: never analyzed
    table_name: str | None
    valid: bool
    am: str


@dataclass(frozen=True)
class ConstraintRow:
    oid: int
    name: str
    table_name: str
    kind: str
    validated: bool


@dataclass(frozen=True)
class LockRow:
    pid: int
    relation: str
    mode: str
    query: str


@dataclass(frozen=True)
class RoleRow:
    name: str
    superuser: bool
    createrole: bool
    login: bool
    server_roles: list[str]


@dataclass(frozen=True)
class CountRow:
    n: int


@dataclass(frozen=True)
class TableRow:
    name: str
    writes: int


@dataclass(frozen=True)
class Snapshot:
    relations: dict[int, RelationRow]
    constraints: dict[int, ConstraintRow]
    tables: dict[str, int]  # table -> rows written since the statistics began


def snapshot(conn: Conn) -> Snapshot:
    return Snapshot({r.oid: r for r in fetch_all(conn, "rehearse_relations", RelationRow)},
                    {c.oid: c for c in fetch_all(conn, "rehearse_constraints", ConstraintRow)},
                    {t.name: t.writes for t in fetch_all(conn, "rehearse_tables", TableRow)})


def locks(conn: Conn, role: str) -> list[LockRow]:
    return fetch_all(conn, "rehearse_locks", LockRow, {"role": role})


def role(conn: Conn, name: str) -> RoleRow | None:
    rows = fetch_all(conn, "rehearse_role", RoleRow, {"role": name})
    return rows[0] if rows else None


def database_owner(conn: Conn) -> str:
    return fetch_one(conn, "rehearse_owner", NameRow).name


def sessions_since(conn: Conn, name: str, since: datetime) -> int:
    return fetch_one(conn, "rehearse_sessions", CountRow, {"role": name, "since": since}).n


def wal_position(conn: Conn) -> int:
    return fetch_one(conn, "rehearse_wal", CountRow).n


def row_checksums(conn: Conn, table: str) -> Iterator[str]:
    """Each row of ``table`` (a name as regclass prints it: quoted where needed) as the md5 of its text, sorted
    byte-wise, streamed (COPY TO STDOUT: memory bounded whatever the table's size). Read it to the end."""
    stmt = sql.SQL(load("rehearse_rows")).format(table=sql.SQL(table))  # regclass output: quoted by the server
    try:
        with conn.cursor() as cur, cur.copy(stmt) as copy:
            for row in copy.rows():
                yield str(row[0])
    except psycopg.Error as e:
        raise DatabaseError(f"reading the rows of {table} failed: {pg_error(e)}") from None


def now(conn: Conn) -> datetime:
    """The server's clock (sessions that start after it are the command's)."""
    return fetch_one(conn, "rehearse_now", TimeRow).at


@dataclass(frozen=True)
class TimeRow:
    at: datetime
