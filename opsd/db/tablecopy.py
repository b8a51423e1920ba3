"""A table copied into a new schema (on the scratch copy), and compared with the live one by primary key (on
production). Identifiers are composed with psycopg.sql from the templates in sql/; values are bound. Every
session is pinned first (:func:`pin`): names resolve in pg_catalog only and row security never hides rows."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

from opsd.core.pgtext import pg_error
from opsd.core.relname import RelName, parse
from opsd.db.connection import Conn
from opsd.db.queries import load
from opsd.errors import DatabaseError, QueryTimeout


@dataclass(frozen=True)
class QName:
    """A table by schema and name. ``exact`` false: a name given in plain form, still to be resolved (ignoring
    case) on a catalog (actions/targeted/names.py); every name opsd composes SQL with is exact."""

    schema: str
    table: str
    exact: bool = True

    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.table)

    def given(self) -> RelName:
        return RelName(self.schema, self.table, self.exact)

    def __str__(self) -> str:
        return str(self.given())


def qualified(name: str) -> QName:
    """``--table`` as given (core/relname.py: the SQL form, or the plain form to resolve ignoring case)."""
    r = parse(name)
    return QName(r.schema, r.name, r.exact)


@dataclass(frozen=True)
class Counts:
    recovered: int
    live: int
    missing_from_live: int
    only_in_live: int
    changed: int

    def __add__(self, o: Counts) -> Counts:
        return Counts(self.recovered + o.recovered, self.live + o.live, self.missing_from_live + o.missing_from_live,
                      self.only_in_live + o.only_in_live, self.changed + o.changed)


ZERO = Counts(0, 0, 0, 0, 0)


@dataclass(frozen=True)
class Column:
    name: str
    identity: str  # 'a' GENERATED ALWAYS, 'd' BY DEFAULT, '' none
    generated: str  # 's' stored generated, '' none


@dataclass(frozen=True)
class KeyColumn:
    name: str
    type: str  # as format_type prints it: safe to compose as SQL


def _first(e: Exception) -> str:
    return pg_error(e)


def _run(conn: Conn, template: str, params: dict[str, Any] | None = None,
         parts: dict[str, sql.Composable] | None = None) -> list[Any]:
    stmt = sql.SQL(load(template)).format(**(parts or {}))
    try:
        cur = conn.execute(stmt, params or {})
        return cur.fetchall() if cur.description else []
    except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable) as e:
        raise QueryTimeout(f"{template}: {_first(e)}") from None
    except psycopg.Error as e:
        raise DatabaseError(f"{template} failed: {_first(e)}") from None


def regclass(conn: Conn, t: QName) -> str:
    return t.ident().as_string(conn)


def pin(conn: Conn) -> Conn:
    """search_path = pg_catalog, pg_temp and row_security = off for the rest of the session."""
    _run(conn, "table_session")
    return conn


def limit(conn: Conn, *, lock_timeout: timedelta, statement_timeout: timedelta) -> None:
    """lock_timeout and statement_timeout for the rest of the session."""
    _run(conn, "table_session_limits", {"lock_timeout": f"{int(lock_timeout.total_seconds() * 1000)}ms",
                                        "statement_timeout": f"{int(statement_timeout.total_seconds() * 1000)}ms"})


def exists(conn: Conn, t: QName) -> bool:
    return bool(_run(conn, "table_exists", {"name": regclass(conn, t)})[0][0])


def columns(conn: Conn, t: QName) -> list[Column]:
    return [Column(*r) for r in _run(conn, "table_columns", {"name": regclass(conn, t)})]


def key(conn: Conn, t: QName) -> list[KeyColumn]:
    return [KeyColumn(*r) for r in _run(conn, "table_key", {"name": regclass(conn, t)})]


def count(conn: Conn, t: QName) -> int:
    return int(_run(conn, "table_count", parts={"table": t.ident()})[0][0])


def role_ident(role: str | None) -> sql.Composable:
    """A role by name, or the session's own role (None)."""
    return sql.Identifier(role) if role else sql.SQL("CURRENT_ROLE")


def create_schema(conn: Conn, name: str, owner: str | None) -> None:
    _run(conn, "table_schema_create", parts={"schema": sql.Identifier(name), "owner": role_ident(owner)})


@contextlib.contextmanager
def acting_as(conn: Conn, role: str | None) -> Iterator[None]:
    """One transaction, as ``role`` (SET LOCAL ROLE) when given; the session's own role after it."""
    with conn.transaction():
        if role:
            _run(conn, "table_set_role", parts={"role": sql.Identifier(role)})
        yield


def copy_into(conn: Conn, source: QName, target: QName) -> None:
    """``target`` shaped like ``source`` (sql/table_copy.sql), empty."""
    _run(conn, "table_copy", parts={"source": source.ident(), "target": target.ident()})


def fill(conn: Conn, source: QName, target: QName) -> int:
    return int(_run(conn, "table_fill", parts={"source": source.ident(), "target": target.ident()})[0][0])


def victims_into(conn: Conn, source: QName, target: QName, xids: tuple[int, ...]) -> int:
    """The rows of ``source`` whose xmax is one of ``xids`` (a copy recovered to just before that transaction
    committed: what it deleted or updated, as it was) into the new table ``target``; their number."""
    parts: dict[str, sql.Composable] = {"source": source.ident(), "target": target.ident()}
    _run(conn, "table_victims_create", parts=parts)
    return int(_run(conn, "table_victims_fill", {"xids": [x % 2**32 for x in xids]}, parts=parts)[0][0])


def drop_constraint(conn: Conn, t: QName, name: str) -> None:
    _run(conn, "table_drop_constraint", parts={"table": t.ident(), "name": sql.Identifier(name)})


def drop_index(conn: Conn, t: QName, name: str) -> None:
    _run(conn, "table_drop_index", parts={"index": sql.Identifier(t.schema, name)})


def column_type(conn: Conn, t: QName, column: str, type_sql: str) -> None:
    """``type_sql`` as the catalog's format_type printed it (quoted where needed)."""
    _run(conn, "table_column_type", parts={"table": t.ident(), "column": sql.Identifier(column),
                                           "type": sql.SQL(type_sql)})


def load_header(conn: Conn, schema: str, owner: str | None) -> str:
    """The statements that go before the dump when it is loaded (sql/table_load_header.sql), as text."""
    stmt = sql.SQL(load("table_load_header")).format(
        schema=sql.Identifier(schema), owner=role_ident(owner),
        role=sql.Identifier(owner) if owner else sql.SQL("NONE"))
    return "\n".join(line for line in stmt.as_string(conn).splitlines() if not line.startswith("--")).strip()


def pattern(conn: Conn, t: QName) -> str:
    """``t`` as a pg_dump -t pattern matching exactly that table: each part double-quoted, in which pg_dump
    reads ``*``, ``?``, ``.`` and capitals literally."""
    return t.ident().as_string(conn)


def _cols(alias: str, names: list[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(alias, n) for n in names)


def _after(alias: str, keys: list[KeyColumn], bound: tuple[Any, ...] | None, prefix: str, op: str
           ) -> sql.Composable:
    """``ROW(alias.k1, ...) op ROW(%(prefix0)s::type1, ...)``, or TRUE without a bound."""
    if bound is None:
        return sql.SQL("TRUE")
    params = sql.SQL(", ").join(sql.SQL("{}::{}").format(sql.Placeholder(f"{prefix}{i}"), sql.SQL(k.type))
                                for i, k in enumerate(keys))
    return sql.SQL("ROW({}) {} ROW({})").format(_cols(alias, [k.name for k in keys]), sql.SQL(op), params)


def _range(alias: str, keys: list[KeyColumn], lo: tuple[Any, ...] | None, hi: tuple[Any, ...] | None
           ) -> sql.Composable:
    return sql.SQL("{} AND {}").format(_after(alias, keys, lo, "lo", ">"), _after(alias, keys, hi, "hi", "<="))


def _bounds(lo: tuple[Any, ...] | None, hi: tuple[Any, ...] | None) -> dict[str, Any]:
    out = {f"lo{i}": v for i, v in enumerate(lo or ())}
    return out | {f"hi{i}": v for i, v in enumerate(hi or ())}


def batch_end(conn: Conn, recovered: QName, keys: list[KeyColumn], after: tuple[Any, ...] | None, size: int
              ) -> tuple[Any, ...] | None:
    """The key ``size`` rows after ``after`` in the recovered table (None: fewer rows are left)."""
    parts = {"recovered": recovered.ident(), "rkey": _cols("r", [k.name for k in keys]),
             "after": _after("r", keys, after, "lo", ">")}
    rows = _run(conn, "table_batch_end", {**_bounds(after, None), "skip": size - 1}, parts=parts)
    return tuple(rows[0]) if rows else None


def compare_range(conn: Conn, live: QName, recovered: QName, keys: list[KeyColumn], *, common: list[str],
                  lo: tuple[Any, ...] | None, hi: tuple[Any, ...] | None) -> Counts:
    """The counts of one key range ``lo`` < key <= ``hi`` (None: unbounded on that side)."""
    names = [k.name for k in keys]
    parts: dict[str, sql.Composable] = {
        "live": live.ident(), "recovered": recovered.ident(), "lkey": _cols("l", names), "rkey": _cols("r", names),
        "lcols": _cols("l", common), "rcols": _cols("r", common), "rrange": _range("r", keys, lo, hi),
        "lrange": _range("l", keys, lo, hi)}
    row = _run(conn, "table_compare", _bounds(lo, hi), parts=parts)[0]
    return Counts(*(int(v) for v in row))


def lock_waiters(conn: Conn, t: QName) -> int:
    return int(_run(conn, "table_lock_waiters", {"name": regclass(conn, t)})[0][0])


def triggers(conn: Conn, t: QName) -> list[str]:
    """The enabled user triggers of ``t`` that an INSERT or UPDATE fires (sql/table_triggers.sql)."""
    return [str(r[0]) for r in _run(conn, "table_triggers", {"name": regclass(conn, t)})]


def _strip(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("--")).strip() + ";"


def put_back_insert(conn: Conn, live: QName, source: QName, *, keys: list[str], cols: list[str],
                    overriding: bool) -> str:
    """The INSERT of the rows of ``source`` missing from ``live`` (sql/table_put_back.sql), as text."""
    stmt = sql.SQL(load("table_put_back")).format(
        live=live.ident(), source=source.ident(), lkey=_cols("l", keys), rkey=_cols("r", keys),
        cols=sql.SQL(", ").join(sql.Identifier(n) for n in cols), rcols=_cols("r", cols),
        overriding=sql.SQL("OVERRIDING SYSTEM VALUE" if overriding else ""))
    return _strip(stmt.as_string(conn)).replace(") \nSELECT", ")\nSELECT")


def put_back_update(conn: Conn, live: QName, source: QName, *, keys: list[str], cols: list[str]) -> str:
    """The UPDATE that sets the rows of ``source`` present in ``live`` back to ``source``'s values, as text."""
    stmt = sql.SQL(load("table_put_back_update")).format(
        live=live.ident(), source=source.ident(), lkey=_cols("l", keys), rkey=_cols("r", keys),
        cols=sql.SQL(", ").join(sql.Identifier(n) for n in cols), rcols=_cols("r", cols), lcols=_cols("l", cols))
    return _strip(stmt.as_string(conn))
