"""Reads a drill makes on the restored copy that are not plain queries from sql/: a full COPY of a relation
(everything, TOAST included, as pg_dump would read it) and the operator's own smoke queries."""

from __future__ import annotations

from typing import Any, TypeVar

import psycopg
from psycopg import Connection, sql
from psycopg.rows import class_row

from opsd.core.pgtext import pg_error
from opsd.db.queries import load
from opsd.errors import DatabaseError, NotChecked

# SQLSTATEs (classes and codes) that say nothing about the data: privileges, names, the owner's own code raising
# (PL/pgSQL, external routines), resources, cancellation, timeouts, lost connections, shutdown. Any other failure
# of a verification query (XX001 data_corrupted, XX002 index_corrupted, XX000, I/O errors, bad encodings...)
# counts as damage.
NOT_ABOUT_DATA = ("42", "P0", "38", "39", "2F", "53", "08", "57", "55", "25006")


def _failed(e: psycopg.Error, what: str) -> DatabaseError:
    state = e.sqlstate or ""
    if state and state.startswith(NOT_ABOUT_DATA):
        return NotChecked(f"{what} could not run (SQLSTATE {state}): {pg_error(e)}")
    return DatabaseError(f"{what} failed: {pg_error(e)}")


T = TypeVar("T")


def read_relation(conn: Connection[Any], regclass_text: str) -> int:
    """Read every row of a table or materialized view in full, TOAST included, formatted as pg_dump's COPY would;
    the table's size on disk. ``regclass_text`` is the server's own ``oid::regclass::text`` (quoted as needed).

    The server writes the rows to /dev/null (a superuser's COPY, as the drill's scratch instance connects):
    every tuple is read, detoasted and formatted by the server exactly as for pg_dump, without carrying gigabytes
    through the client. Without the privilege (pg_write_server_files), the rows come to the client instead."""
    name = sql.SQL(regclass_text)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("COPY (SELECT * FROM ONLY {}) TO '/dev/null'").format(name))
            cur.execute(sql.SQL("SELECT pg_table_size({})").format(sql.Literal(regclass_text)))
            row = cur.fetchone()
            return int(row[0]) if row and row[0] is not None else 0
    except psycopg.errors.InsufficientPrivilege:
        return _read_to_client(conn, regclass_text)
    except psycopg.Error as e:
        raise _failed(e, f"reading {regclass_text}") from None


def _read_to_client(conn: Connection[Any], regclass_text: str) -> int:
    query = sql.SQL("COPY (SELECT * FROM ONLY {}) TO STDOUT").format(sql.SQL(regclass_text))
    total = 0
    try:
        with conn.cursor() as cur, cur.copy(query) as copy:
            for block in copy:
                total += len(block)
    except psycopg.Error as e:
        raise _failed(e, f"reading {regclass_text}") from None
    return total


def scalar_text(conn: Connection[Any], query: str) -> str:
    """First column of the first row as text: booleans 'true'/'false', NULL 'null', no row 'no rows'."""
    try:
        row = conn.execute(query.encode()).fetchone()  # the operator's SQL, from the config file
    except psycopg.Error as e:
        raise DatabaseError(pg_error(e)) from None
    if row is None:
        return "no rows"
    value = row[0]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def amcheck_schema(conn: Connection[Any]) -> str | None:
    """The schema amcheck is installed in, in this database (None: it is not)."""
    try:
        row = conn.execute(load("amcheck_schema")).fetchone()
    except psycopg.Error as e:
        raise DatabaseError(f"cannot find amcheck: {pg_error(e)}") from None
    return str(row[0]) if row else None


def amcheck_rows(conn: Connection[Any], name: str, schema: str, rel: str, row: type[T]) -> list[T]:
    """Run ``sql/<name>.sql`` with amcheck's functions called by their schema's name, for relation ``rel``."""
    stmt = sql.SQL(load(name)).format(amcheck=sql.Identifier(schema))
    try:
        with conn.cursor(row_factory=class_row(row)) as cur:
            return cur.execute(stmt, {"rel": rel}).fetchall()
    except psycopg.Error as e:
        raise _failed(e, f"query {name}") from None
