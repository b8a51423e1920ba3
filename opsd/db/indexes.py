"""The catalog reads of ``opsd indexes`` (db/sql/ix_*.sql), one database at a time, each connection under
[queries] snapshot_timeout and snapshot_lock_timeout: indexes, constraints never validated, partitions, the
extensions that prove advice (pg_qualstats, hypopg) and pg_qualstats' filters. Lock-free: catalogs and sizes from
pg_class.relpages, never pg_relation_size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import Connection, sql
from psycopg.rows import class_row

from opsd.core.pgtext import pg_error
from opsd.core.records.indexes import IndexInfo, NotValidConstraint, Partition, Qual
from opsd.db.connection import ConnectTo, factory
from opsd.db.queries import fetch_all, fetch_one, load
from opsd.errors import DatabaseError, QueryTimeout
from opsd.settings import Settings


def connect_to(settings: Settings) -> ConnectTo:
    """Connections to any database of the server, bounded as a snapshot's are."""
    q = settings.queries

    def connect(dbname: str) -> Connection[Any]:
        pg = settings.postgres.model_copy(update={"dbname": dbname, "statement_timeout": q.snapshot_timeout})
        return factory(pg, lock_timeout_ms=max(1, int(q.snapshot_lock_timeout.total_seconds() * 1000)),
                       run_as=settings.opsd.run_as)()

    return connect


def advice_connect_to(settings: Settings, user: str) -> ConnectTo:
    """Connections as ``user`` ([queries] advice_user) to any database of the server, bounded as a snapshot's are:
    the same host, port and timeouts as opsd's own; its password from the .pgpass of opsd's run_as user, or peer
    authentication with a pg_ident.conf map (never a password in the configuration)."""
    q = settings.queries

    def connect(dbname: str) -> Connection[Any]:
        pg = settings.postgres.model_copy(update={"dbname": dbname, "user": user,
                                                  "statement_timeout": q.snapshot_timeout})
        return factory(pg, lock_timeout_ms=max(1, int(q.snapshot_lock_timeout.total_seconds() * 1000)),
                       run_as=settings.opsd.run_as)()

    return connect


@dataclass(frozen=True)
class _Streaming:
    streaming: int | None


def walsenders(conn: Connection[Any]) -> int | None:
    """The physical standbys streaming from this primary (None: this server is a standby)."""
    return fetch_one(conn, "ix_walsenders", _Streaming).streaming


@dataclass(frozen=True)
class _Name:
    name: str


def databases(conn: Connection[Any]) -> list[str]:
    return [r.name for r in fetch_all(conn, "ix_databases", _Name)]


@dataclass(frozen=True)
class _IndexRow:
    oid: int
    schema: str
    table_name: str
    name: str
    table_ref: str
    index_ref: str
    table_kind: str
    kind: str
    method: str
    definition: str
    keys: list[str]
    included: list[str]
    opclasses: list[int]
    collations: list[int]
    options: list[int]
    predicate: str | None
    is_unique: bool
    is_primary: bool
    is_exclusion: bool
    replica_identity: bool
    constraints: list[str]
    foreign_keys: list[str]
    valid: bool
    ready: bool
    building: bool
    attached: bool
    parent: str | None
    root_schema: str
    root_table: str
    size_bytes: int


def indexes(conn: Connection[Any], dbname: str) -> list[IndexInfo]:
    rows = fetch_all(conn, "ix_indexes", _IndexRow)
    return [IndexInfo(dbname=dbname, **{k: v for k, v in vars(r).items() if k != "oid"}) for r in rows]


@dataclass(frozen=True)
class _NotValidRow:
    schema: str
    table_name: str
    name: str
    kind: str
    definition: str
    validate: str


def not_valid(conn: Connection[Any], dbname: str) -> list[NotValidConstraint]:
    return [NotValidConstraint(dbname=dbname, schema=r.schema, table_name=r.table_name, name=r.name,
                               kind=r.kind, definition=r.definition, statements=[r.validate])
            for r in fetch_all(conn, "ix_not_valid", _NotValidRow)]


@dataclass(frozen=True)
class _PartitionRow:
    schema: str
    table_name: str
    table_ref: str
    schema_ref: str
    partitioned: bool
    parent_ref: str
    root_schema: str
    root_table: str


def partitions(conn: Connection[Any], dbname: str) -> list[Partition]:
    return [Partition(dbname=dbname, **vars(r)) for r in fetch_all(conn, "ix_partitions", _PartitionRow)]


@dataclass(frozen=True)
class _ExtensionRow:
    name: str
    schema: str


def extensions(conn: Connection[Any]) -> dict[str, str]:
    """pg_qualstats and hypopg, where installed in this database: name -> schema."""
    return {r.name: r.schema for r in fetch_all(conn, "ix_extensions", _ExtensionRow)}


@dataclass(frozen=True)
class _QualRow:
    queryid: int
    rolname: str
    schema: str
    table_name: str
    table_ref: str
    schema_ref: str
    column_name: str
    column_ref: str
    strategy: int | None
    executions: int
    filtered: int


def quals(conn: Connection[Any], dbname: str, schema: str) -> list[Qual]:
    """pg_qualstats' filters no index served, in this database (``schema``: the extension's)."""
    stmt = sql.SQL(load("ix_quals")).format(qualstats=sql.Identifier(schema))
    try:
        with conn.cursor(row_factory=class_row(_QualRow)) as cur:
            rows = cur.execute(stmt, {}).fetchall()
    except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable) as e:
        raise QueryTimeout(f"query ix_quals timed out: {pg_error(e)}") from None
    except psycopg.Error as e:
        raise DatabaseError(f"query ix_quals failed: {pg_error(e)}") from None
    return [Qual(dbname=dbname, **vars(r)) for r in rows]
