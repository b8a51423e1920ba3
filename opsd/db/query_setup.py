"""Reads and writes of ``opsd setup --query-stats`` and the ``queries`` check: the settings query statistics need,
who opsd is there, ALTER SYSTEM of a list setting, CREATE EXTENSION pg_stat_statements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from opsd.core.pgtext import pg_error
from opsd.db.queries import execute, fetch_all, fetch_one
from opsd.errors import DatabaseError


@dataclass(frozen=True)
class QuerySettingRow:
    name: str
    setting: str
    pending_restart: bool
    file_value: str | None = None  # query_setup_files only: the files' last value, applied or not

    @property
    def configured(self) -> str:
        """What the server will run after its next restart: the files' value when a change waits for one."""
        return self.file_value if self.pending_restart and self.file_value is not None else self.setting


@dataclass(frozen=True)
class QueryFactsRow:
    role: str
    database: str
    in_recovery: bool
    extension: bool
    read_all_stats: bool


@dataclass(frozen=True)
class AvailableRow:
    available: bool


def settings(conn: psycopg.Connection[Any], names: Sequence[str], *, files: bool = False) -> dict[str, QuerySettingRow]:
    """``files``: with the configuration files' values (pg_file_settings: a superuser's, as setup runs)."""
    rows = fetch_all(conn, "query_setup_files" if files else "query_setup_settings", QuerySettingRow,
                     {"names": list(names)})
    return {r.name: r for r in rows}


def facts(conn: psycopg.Connection[Any]) -> QueryFactsRow:
    return fetch_one(conn, "query_setup_facts", QueryFactsRow)


def available(conn: psycopg.Connection[Any]) -> bool:
    """pg_stat_statements installed on this server (pg_available_extensions), created or not."""
    return fetch_one(conn, "query_setup_available", AvailableRow).available


def create_extension(conn: psycopg.Connection[Any]) -> None:
    execute(conn, "query_setup_extension", {})


def alter_system_list(conn: psycopg.Connection[Any], name: str, items: Sequence[str]) -> None:
    """ALTER SYSTEM SET name = 'a', 'b': a list setting (shared_preload_libraries) from its elements. One literal
    'a,b' would be written as the single element "a,b". ALTER SYSTEM takes no bind parameters: composed."""
    stmt = sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name),
                                                       sql.SQL(", ").join(sql.Literal(i) for i in items))
    try:
        conn.execute(stmt)
    except psycopg.Error as e:
        raise DatabaseError(f"ALTER SYSTEM SET {name} failed: {pg_error(e)}",
                            hint="opsd setup --query-stats needs a superuser connection") from None
