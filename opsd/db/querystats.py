"""What a query-statistics snapshot reads from one server (db/sql/qs_*.sql): the server's facts, the counters of
pg_stat_statements (texts only for statements opsd has not seen yet), and per database the counters of its tables
and indexes, each in one short statement under ``[queries] snapshot_timeout`` and ``snapshot_lock_timeout``.
Rows are frozen dataclasses; pg_stat_statements missing is an outcome with a one-line reason, never an error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import class_row

from opsd.core.pgtext import pg_error
from opsd.db.connection import SAFE_SEARCH_PATH, Conn, ConnectTo, identity
from opsd.db.queries import fetch_all, fetch_one, load
from opsd.errors import DatabaseError, QueryTimeout
from opsd.settings import PostgresSection


@dataclass(frozen=True)
class ServerFacts:
    started_at: datetime
    system_identifier: int
    timeline: int
    in_recovery: bool
    discarded_at: datetime | None  # the cumulative statistics were discarded then (a start after a crash)
    preload: str | None  # None: not visible to the role (pg_read_all_settings)
    compute_query_id: str
    pgss_schema: str | None
    read_all_stats: bool
    now: datetime


@dataclass(frozen=True)
class StatementRow:
    queryid: int  # 0: the statements of that database and role the connected role may not see, summed
    dbid: int
    userid: int
    dbname: str
    rolname: str
    calls: int
    total_ms: float
    rows: int
    shared_hit: int
    shared_read: int
    temp_read: int
    temp_written: int
    wal_bytes: int
    min_ms: float
    max_ms: float
    hidden: bool


@dataclass(frozen=True)
class Statements:
    """pg_stat_statements read: its rows, its evictions since its last reset, and that reset."""

    rows: list[StatementRow]
    dealloc: int
    stats_reset: datetime
    schema: str


@dataclass(frozen=True)
class StatementsUnavailable:
    reason: str  # one line: what is missing and how to turn it on


@dataclass(frozen=True)
class TextRow:
    queryid: int
    dbid: int
    userid: int
    dbname: str
    rolname: str
    query: str


@dataclass(frozen=True)
class RelationRow:
    kind: str  # table | index
    oid: int  # the table's or the index's
    schemaname: str
    relname: str  # an index's table
    indexname: str  # "" for a table
    seq_scan: int
    seq_tup_read: int
    idx_scan: int
    n_tup_ins: int
    n_tup_upd: int
    n_tup_del: int
    size_bytes: int
    other: int  # counters only ever growing, not kept as deltas (tell a reset entry)


@dataclass(frozen=True)
class Relations:
    """One database's tables and indexes, and its transaction count and stats_reset (pg_stat_reset())."""

    xacts: int
    db_reset: datetime | None
    rows: list[RelationRow]


@dataclass(frozen=True)
class _StatementsRaw:
    dealloc: int
    stats_reset: datetime
    queryid: int | None
    dbid: int | None
    userid: int | None
    dbname: str | None
    rolname: str | None
    calls: int | None
    total_ms: float | None
    rows: int | None
    shared_hit: int | None
    shared_read: int | None
    temp_read: int | None
    temp_written: int | None
    wal_bytes: int | None
    min_ms: float | None
    max_ms: float | None
    hidden: bool | None


@dataclass(frozen=True)
class _RelationsRaw:
    xacts: int
    db_reset: datetime | None
    kind: str | None
    oid: int | None
    schemaname: str | None
    relname: str | None
    indexname: str | None
    seq_scan: int | None
    seq_tup_read: int | None
    idx_scan: int | None
    n_tup_ins: int | None
    n_tup_upd: int | None
    n_tup_del: int | None
    size_bytes: int | None
    other: int | None


@dataclass(frozen=True)
class _Name:
    name: str


R = TypeVar("R")


_NAMES: dict[type, tuple[str, ...]] = {}


def _filled(row: type[R], raw: object) -> R:
    """``row`` from the columns of an outer-joined row that is there (its columns are then never NULL)."""
    names = _NAMES.get(row) or _NAMES.setdefault(row, tuple(f.name for f in fields(row)))  # type: ignore[arg-type]
    return row(*(getattr(raw, n) for n in names))


def _options(statement_ms: int, lock_ms: int) -> str:
    return f"-c statement_timeout={statement_ms} -c lock_timeout={lock_ms} -c search_path={SAFE_SEARCH_PATH}"


def snapshot_connector(pg: PostgresSection, *, run_as: str | None, statement_ms: int, lock_ms: int,
                       conninfo: str | None = None) -> ConnectTo:
    """Connections (database name -> connection) for a snapshot: to the server of ``[postgres]``, or of a libpq
    ``conninfo`` (a standby; its password from a .pgpass), with the snapshot's statement and lock timeouts."""
    base: dict[str, Any] = conninfo_to_dict(conninfo) if conninfo else {
        "host": pg.host, "port": pg.port, "user": pg.user}
    base.setdefault("user", pg.user)
    base.pop("dbname", None)
    host, port = str(base.get("host") or "localhost"), base.get("port") or 5432
    timeout = max(1, int(pg.connect_timeout.total_seconds()))

    def connect(dbname: str) -> Conn:
        try:
            with identity(run_as, host):
                return psycopg.connect(**{**base, "dbname": dbname, "application_name": "opsd",
                                          "options": _options(statement_ms, lock_ms),
                                          "connect_timeout": base.get("connect_timeout") or timeout},
                                       autocommit=True)
        except psycopg.OperationalError as e:
            first = pg_error(e) if str(e).strip() else "connection failed"
            raise DatabaseError(f"cannot connect to {dbname} at {host}:{port}: {first}") from None

    return connect


def conninfo_address(conninfo: str) -> str:
    """host:port of a libpq conninfo (keywords or URI), to name a standby."""
    d = conninfo_to_dict(conninfo)
    return f"{d.get('host') or d.get('hostaddr') or 'localhost'}:{d.get('port') or 5432}"


def conninfo_dbname(conninfo: str) -> str | None:
    dbname = conninfo_to_dict(conninfo).get("dbname")
    return str(dbname) if dbname else None


def server_facts(conn: Conn) -> ServerFacts:
    return fetch_one(conn, "qs_server", ServerFacts)


def databases(conn: Conn) -> list[str]:
    return [r.name for r in fetch_all(conn, "qs_databases", _Name)]


def _preloaded(setting: str) -> bool:
    names = (p.strip().strip("'\"").rsplit("/", 1)[-1] for p in setting.split(","))
    return "pg_stat_statements" in names


NOT_PRELOADED = StatementsUnavailable("pg_stat_statements is not in shared_preload_libraries: no statement "
                                      "statistics (opsd setup --query-stats, then a restart)")


def unavailable(facts: ServerFacts, dbname: str) -> StatementsUnavailable | None:
    """Why pg_stat_statements cannot be read on this server (None: it can, or reading it will tell)."""
    if facts.preload is not None and not _preloaded(facts.preload):
        return NOT_PRELOADED
    if facts.pgss_schema is None:
        return StatementsUnavailable(f"pg_stat_statements is preloaded but not created in database {dbname} "
                                     "(opsd setup --query-stats, or CREATE EXTENSION pg_stat_statements)")
    if facts.compute_query_id == "off":
        return StatementsUnavailable("compute_query_id is off: pg_stat_statements tracks no statement "
                                     "(set it to auto: opsd setup --query-stats)")
    return None


def _composed(name: str, schema: str) -> sql.Composed:
    return sql.SQL(load(name)).format(pgss=sql.Identifier(schema))


def _rows(conn: Conn, name: str, schema: str, row: type[Any], params: dict[str, Any] | None = None) -> list[Any]:
    try:
        with conn.cursor(row_factory=class_row(row)) as cur:
            cur.execute(_composed(name, schema), params or {})
            return cur.fetchall()
    except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable) as e:
        raise QueryTimeout(f"query {name} timed out: {pg_error(e)}") from None
    except psycopg.Error as e:
        raise DatabaseError(f"query {name} failed: {pg_error(e)}") from None


def statements(conn: Conn, facts: ServerFacts, dbname: str) -> Statements | StatementsUnavailable:
    """pg_stat_statements' counters (no texts), or why they cannot be read. A timeout still raises."""
    missing = unavailable(facts, dbname)
    if missing is not None:
        return missing
    assert facts.pgss_schema is not None
    try:
        raw: list[_StatementsRaw] = _rows(conn, "qs_statements", facts.pgss_schema, _StatementsRaw)
    except QueryTimeout:
        raise
    except DatabaseError as e:
        if "shared_preload_libraries" in str(e):  # the role could not see the setting: the server says so
            return NOT_PRELOADED
        return StatementsUnavailable(f"pg_stat_statements cannot be read: {e}")
    rows = [_filled(StatementRow, r) for r in raw if r.queryid is not None]  # NULL: no statement tracked
    return Statements(rows, raw[0].dealloc, raw[0].stats_reset, facts.pgss_schema)


def texts(conn: Conn, schema: str, queryids: Sequence[int]) -> list[TextRow]:
    """The normalised texts of ``queryids`` (reads pg_stat_statements' text file: only for new statements)."""
    if not queryids:
        return []
    return _rows(conn, "qs_texts", schema, TextRow, {"ids": sorted(set(queryids))})


def relations(conn: Conn) -> Relations:
    """The connected database's tables and indexes in one statement."""
    raw = fetch_all(conn, "qs_relations", _RelationsRaw)
    rows = [_filled(RelationRow, r) for r in raw if r.kind is not None]  # NULL: the database has no table
    return Relations(raw[0].xacts, raw[0].db_reset, rows)
