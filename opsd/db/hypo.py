"""What proving a missing index takes of PostgreSQL (actions/queries/advise.py): a read-only transaction that is
always rolled back, the statement's own role and search_path, hypopg's hypothetical indexes, and EXPLAIN of the
normalised statement as a generic plan (PREPARE, then EXPLAIN EXECUTE with NULLs: PostgreSQL 15 has no EXPLAIN
(GENERIC_PLAN)). The statement is only planned, never executed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import Connection, sql
from psycopg.rows import class_row

from opsd.core.pgtext import pg_error
from opsd.db.queries import fetch_all, fetch_one, load
from opsd.errors import DatabaseError, QueryTimeout


class NotExplained(DatabaseError):
    """The statement could not be planned as opsd tried (its reason is the message)."""


def _fail(e: psycopg.Error, what: str) -> DatabaseError:
    if isinstance(e, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable):
        return QueryTimeout(f"{what} timed out: {pg_error(e)}")
    return NotExplained(f"{what}: {pg_error(e)}")


@contextmanager
def rolled_back(conn: Connection[Any], hypopg: str | None) -> Iterator[None]:
    """A read-only transaction with generic plans, rolled back whatever happens; then the statements opsd prepared
    in it and hypopg's hypothetical indexes (``hypopg``: its schema) are forgotten: both outlive a rollback."""
    try:
        with conn.transaction():
            fetch_all(conn, "ix_hypo_begin", _Any)
            yield
            raise psycopg.Rollback()
    except psycopg.Error as e:
        raise _fail(e, "the hypothetical plan") from None
    finally:
        _forget(conn, hypopg)


def _forget(conn: Connection[Any], hypopg: str | None) -> None:
    if conn.closed or conn.broken:
        return
    try:
        conn.execute("DEALLOCATE ALL")
        if hypopg:
            conn.execute(sql.SQL(load("ix_hypo_reset")).format(hypopg=sql.Identifier(hypopg)))
    except psycopg.Error:
        conn.close()  # the next candidate opens a new connection, with nothing left over


@dataclass(frozen=True)
class _Any:
    read_only: str | None = None
    plan_cache_mode: str | None = None
    pruning: str | None = None
    role: str | None = None
    search_path: str | None = None


class NotMember(NotExplained):
    """The advice connection's login role may not SET ROLE to the statement's role."""


class Refused(NotExplained):
    """The advice connection's login role could do more than an application role: nothing is EXPLAINed on it."""


@dataclass(frozen=True)
class _Login:
    login: str
    superuser: bool
    createrole: bool
    powers: list[str]


def check_advice_user(conn: Connection[Any]) -> None:
    """The first thing on an advice connection: refuse (Refused) a login role that is a superuser, has CREATEROLE,
    or is a member, directly or not, of a superuser or CREATEROLE role or of pg_execute_server_program,
    pg_read_server_files or pg_write_server_files (db/sql/ix_advice_user.sql)."""
    try:
        found = fetch_all(conn, "ix_advice_user", _Login)
    except DatabaseError as e:
        raise Refused(f"advice_user not checked, so not used: {e}") from None
    if len(found) != 1:
        raise Refused("advice_user not found in pg_roles, so not used")
    me = found[0]
    power = ("is a superuser" if me.superuser else "has CREATEROLE" if me.createrole else
             f"is a member of {', '.join(me.powers)}" if me.powers else "")
    if power:
        raise Refused(f"advice_user {me.login} {power}: planning runs the statement's functions, which could act "
                      "as it (RESET ROLE); nothing is EXPLAINed (docs/queries.md, \"How advice is proven\")")


@dataclass(frozen=True)
class _Function:
    name: str


def functions(conn: Connection[Any]) -> frozenset[str]:
    """The names of this database's functions outside pg_catalog (db/sql/ix_functions.sql)."""
    return frozenset(r.name for r in fetch_all(conn, "ix_functions", _Function))


@dataclass(frozen=True)
class _Path:
    search_path: str | None
    member: bool


def act_as(conn: Connection[Any], role: str) -> None:
    """SET LOCAL ROLE ``role`` with the search_path its sessions start with (refused: NotExplained; the login role
    is not a member of ``role``: NotMember)."""
    try:
        found = fetch_one(conn, "ix_role_search_path", _Path, {"role": role})
    except LookupError:
        raise NotExplained(f"role {role} does not exist") from None
    if not found.member:
        raise NotMember(f"advice_user is not a member of role {role}")
    path = found.search_path
    try:
        with conn.cursor(row_factory=class_row(_Any)) as cur:
            cur.execute(load("ix_hypo_role"), {"role": role, "search_path": path or ""})
    except psycopg.Error as e:
        raise _fail(e, f"acting as role {role}") from None


_TRAILING = re.compile(r"[\s;]+$")


@dataclass(frozen=True)
class _Params:
    params: int


def explain(conn: Connection[Any], name: str, text: str) -> Any:
    """PREPARE ``name`` AS the normalised statement, and its generic plan as EXPLAIN (FORMAT JSON) of EXECUTE with
    a NULL for each parameter. A text holding more than one statement is refused, not run."""
    body = _TRAILING.sub("", text)
    if ";" in body:
        raise NotExplained("its text holds more than one statement")
    prepare = sql.SQL("PREPARE ") + sql.Identifier(name) + sql.SQL(" AS ") + sql.SQL(body)
    try:
        conn.execute(prepare)
    except psycopg.Error as e:
        raise _fail(e, "PREPARE") from None
    n = fetch_one(conn, "ix_hypo_params", _Params, {"name": name}).params
    args = sql.SQL("({})").format(sql.SQL(", ").join([sql.NULL] * n)) if n else sql.SQL("")
    stmt = sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE {}{}").format(sql.Identifier(name), args)
    try:
        row = conn.execute(stmt).fetchone()
    except psycopg.Error as e:
        raise _fail(e, "EXPLAIN") from None
    return row[0] if row else None


@dataclass(frozen=True)
class Hypothetical:
    oid: int
    name: str


def _run(conn: Connection[Any], name: str, schema: str, row: type[Any], params: dict[str, Any]) -> Any:
    stmt = sql.SQL(load(name)).format(hypopg=sql.Identifier(schema))
    try:
        with conn.cursor(row_factory=class_row(row)) as cur:
            return cur.execute(stmt, params).fetchone()
    except psycopg.Error as e:
        raise _fail(e, name) from None


def hypothetical(conn: Connection[Any], schema: str, definition: str) -> Hypothetical:
    """hypopg_create_index(``definition``); ``schema``: hypopg's."""
    found = _run(conn, "ix_hypo_create", schema, Hypothetical, {"definition": definition})
    if found is None:
        raise NotExplained("hypopg made no hypothetical index")
    return found  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _Size:
    size_bytes: int | None


def hypothetical_size(conn: Connection[Any], schema: str, oid: int) -> int | None:
    found = _run(conn, "ix_hypo_size", schema, _Size, {"oid": oid})
    return found.size_bytes if found else None
