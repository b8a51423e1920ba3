"""Catalog queries for targeted recovery: a table's file nodes, the relations a database knows, restore points,
schemas and table sizes."""

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
