"""Catalog queries for targeted recovery: a table's file nodes, the relations a database knows, restore points,
schemas, table sizes, and what of a table's shape is its owner's code (owner, CHECKs, expression indexes,
domain columns)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from opsd.core.walfind import Table
from opsd.db.connection import Conn
from opsd.db.queries import PresentRow, fetch_all, fetch_one


@dataclass(frozen=True)
class NodeRow:
    table_oid: int
    database: int
    tablespace: int
    filenode: int


@dataclass(frozen=True)
class OidRow:
    oid: int
    filenode: int
    database: int


@dataclass(frozen=True)
class Known:
    """What the live catalog of one database knows: its OID, every relation's OID and file node."""

    database: int
    oids: set[int]
    filenodes: set[int]


@dataclass(frozen=True)
class PointRow:
    lsn: str
    at: datetime
    timeline: int
    segment: str
    in_recovery: bool


@dataclass(frozen=True)
class FactRow:
    name: str
    owner: str
    can_become: bool  # the session's role may SET ROLE to the owner
    persistence: str  # p permanent, u unlogged, t temporary
    kind: str  # r table, p partitioned table, v view, m materialized view, f foreign table, ...


@dataclass(frozen=True)
class CodeRow:
    """A CHECK constraint ('check'), an index on expressions or with a predicate ('index'), or an exclusion
    constraint whose index is one ('constraint')."""

    kind: str
    name: str
    detail: str


@dataclass(frozen=True)
class DomainRow:
    """A column of a domain type with CHECK constraints, and the type it would be stored as without them."""

    name: str
    base_type: str


@dataclass(frozen=True)
class SizeRow:
    name: str
    bytes: int | None


def table_nodes(conn: Conn, name: str) -> Table | None:
    rows = fetch_all(conn, "table_nodes", NodeRow, {"name": name})
    if not rows:
        return None
    return Table(name, rows[0].table_oid, frozenset((r.tablespace, r.database, r.filenode) for r in rows))


def known_relations(conn: Conn) -> Known:
    rows = fetch_all(conn, "known_relations", OidRow)
    return Known(rows[0].database if rows else 0, {r.oid for r in rows}, {r.filenode for r in rows if r.filenode})


def create_restore_point(conn: Conn, name: str) -> PointRow:
    return fetch_one(conn, "restore_point_create", PointRow, {"name": name})


def schema_exists(conn: Conn, name: str) -> bool:
    return fetch_one(conn, "schema_exists", PresentRow, {"name": name}).present


def table_sizes(conn: Conn, names: list[str]) -> list[SizeRow]:
    return fetch_all(conn, "table_sizes", SizeRow, {"names": names})


def table_facts(conn: Conn, names: list[str]) -> list[FactRow]:
    """Owner, persistence and kind of each SCHEMA.TABLE (quoted) the catalog knows, in the order given."""
    return fetch_all(conn, "table_facts", FactRow, {"names": names})


def owner_code(conn: Conn, name: str) -> list[CodeRow]:
    return fetch_all(conn, "table_owner_code", CodeRow, {"name": name})


def domain_columns(conn: Conn, name: str) -> list[DomainRow]:
    return fetch_all(conn, "table_domain_columns", DomainRow, {"name": name})
