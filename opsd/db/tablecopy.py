"""A table copied into a new schema (on the scratch copy), and compared with the live one by primary key (on
production). Identifiers are composed with psycopg.sql from the templates in sql/; values are bound."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from opsd.db.connection import Conn
from opsd.db.queries import load
from opsd.errors import DatabaseError, UsageError

_PART = r'("(?:[^"]|"")+"|[^."\s]+)'
_QUALIFIED = re.compile(rf"^{_PART}\.{_PART}$")


@dataclass(frozen=True)
class QName:
    schema: str
    table: str

    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.table)

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}"


def _unquote(part: str) -> str:
    return part[1:-1].replace('""', '"') if part.startswith('"') else part.lower()


def qualified(name: str) -> QName:
    """``schema.table`` (each part may be double-quoted; unquoted parts fold to lower case, as in SQL)."""
    m = _QUALIFIED.match(name.strip())
    if m is None:
        raise UsageError(f"invalid table {name!r}: give SCHEMA.TABLE (e.g. public.stock_movements)")
    return QName(_unquote(m.group(1)), _unquote(m.group(2)))


@dataclass(frozen=True)
class Counts:
    recovered: int
    live: int | None
    missing_from_live: int | None = None
    only_in_live: int | None = None
    changed: int | None = None


def _run(conn: Conn, template: str, params: dict[str, Any] | None = None,
         parts: dict[str, sql.Composable] | None = None) -> list[Any]:
    stmt = sql.SQL(load(template)).format(**(parts or {}))
    try:
        cur = conn.execute(stmt, params or {})
        return cur.fetchall() if cur.description else []
    except psycopg.Error as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DatabaseError(f"{template} failed: {first}") from None


def exists(conn: Conn, t: QName) -> bool:
    return bool(_run(conn, "table_exists", {"name": sql.Identifier(t.schema, t.table).as_string(conn)})[0][0])


def columns(conn: Conn, t: QName) -> list[str]:
    return [r[0] for r in _run(conn, "table_columns", {"name": sql.Identifier(t.schema, t.table).as_string(conn)})]


def key(conn: Conn, t: QName) -> list[str]:
    return [r[0] for r in _run(conn, "table_key", {"name": sql.Identifier(t.schema, t.table).as_string(conn)})]


def copy_into(conn: Conn, source: QName, target: QName) -> int:
    """``target`` as a plain copy of ``source``: columns, CHECK and NOT NULL constraints, indexes (the primary key
    too), comments; no defaults, identity or generation expressions (nothing that points at live objects), no
    foreign keys and no triggers (loading it must not touch another table). The rows it holds."""
    names: dict[str, sql.Composable] = {"source": source.ident(), "target": target.ident()}
    _run(conn, "table_copy", parts=names)
    return int(_run(conn, "table_fill", parts=names)[0][0])


def _cols(alias: str, names: list[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(alias, n) for n in names)


def compare(conn: Conn, live: QName, recovered: QName, keys: list[str], common: list[str]) -> Counts:
    """Rows of the recovered table missing from the live one, rows only in the live one, and rows with the same
    key whose common columns differ."""
    parts: dict[str, sql.Composable] = {"live": live.ident(), "recovered": recovered.ident(), "lkey": _cols("l", keys),
             "rkey": _cols("r", keys), "lcols": _cols("l", common), "rcols": _cols("r", common)}
    rows = _run(conn, "table_compare", parts=parts)[0]
    return Counts(int(rows[0]), int(rows[1]), int(rows[2]), int(rows[3]), int(rows[4]))


def count(conn: Conn, t: QName) -> int:
    return int(_run(conn, "table_count", parts={"table": t.ident()})[0][0])


def put_back(conn: Conn, live: QName, recovered: QName, keys: list[str], common: list[str]) -> str:
    stmt = sql.SQL(load("table_put_back")).format(
        live=live.ident(), recovered=recovered.ident(), lkey=_cols("l", keys), rkey=_cols("r", keys),
        cols=sql.SQL(", ").join(sql.Identifier(n) for n in common), rcols=_cols("r", common))
    text = stmt.as_string(conn)
    return "\n".join(line for line in text.splitlines() if not line.startswith("--")).strip() + ";"


def create_schema(conn: Conn, name: str) -> None:
    _run(conn, "schema_create", parts={"schema": sql.Identifier(name)})
