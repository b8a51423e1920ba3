"""Catalog queries for targeted recovery: a table's file nodes, the relations a database knows, restore points,
schemas, table sizes, and what of a table's shape is its owner's code (owner, CHECKs, expression indexes,
domain columns)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from opsd.core.relname import Candidate, RelName, not_found, pick
from opsd.core.walfind import Table
from opsd.db.connection import Conn
from opsd.db.queries import PresentRow, fetch_all, fetch_one
from opsd.errors import RefusedError


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


def candidates(conn: Conn, given: RelName) -> list[Candidate]:
    """The relations whose schema and name match ``given`` ignoring case (core.relname.matches keeps those it
    names)."""
    return fetch_all(conn, "table_resolve", Candidate, {"schema": given.schema, "name": given.name})


def lookup(conn: Conn, given: RelName, dbname: str, *, purpose: str) -> Candidate | None:
    """The relation ``given`` names in this catalog, checked for ``purpose`` (None: no relation of that name);
    several, or one of a kind that cannot serve: RefusedError (core.relname.pick)."""
    return pick(given, candidates(conn, given), dbname, purpose=purpose)


def resolve(conn: Conn, given: RelName, dbname: str, *, purpose: str, where: str = "the live catalog",
            also: str = "") -> Candidate:
    """As :func:`lookup`; no relation of that name is refused too (``also``: what else to try, appended)."""
    found = candidates(conn, given)
    c = pick(given, found, dbname, purpose=purpose)
    if c is None:
        raise RefusedError(not_found(given, found, dbname, where) + (f"; {also}" if also else ""))
    return c


def table_nodes(conn: Conn, oid: int, shown: str) -> Table:
    """The relation ``oid``'s heap file nodes now (a partitioned table: its leaf partitions'); none: no storage."""
    rows = fetch_all(conn, "table_nodes", NodeRow, {"oid": oid})
    return Table(shown, oid, frozenset((r.tablespace, r.database, r.filenode) for r in rows))


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
