"""A copy of production cut off from what production reaches, in SQL: its subscriptions disabled and detached
from their publisher's slot, the replication slots it brought dropped, its user mappings (postgres_fdw, dblink)
removed. Runs on the copy only, as its superuser, database by database, before any SQL that is not opsd's own."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from opsd.core.pgtext import pg_error
from opsd.db.connection import Conn, ConnectTo
from opsd.db.queries import NameRow, execute, fetch_all, fetch_one
from opsd.errors import DatabaseError


@dataclass(frozen=True)
class SubscriptionRow:
    name: str
    enabled: bool
    has_slot: bool


@dataclass(frozen=True)
class SlotRow:
    name: str
    kind: str


@dataclass(frozen=True)
class MappingRow:
    server: str
    role: str | None  # None: PUBLIC


@dataclass(frozen=True)
class DatabaseOidRow:
    name: str
    oid: int


@dataclass(frozen=True)
class ReachRow:
    subscriptions: int
    slots: int
    user_mappings: int


@dataclass
class Detached:
    """What was cut, per kind, as ``database: name`` (the console and the copy's record show it)."""

    subscriptions: list[str] = field(default_factory=list)
    slots: list[str] = field(default_factory=list)
    user_mappings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # databases not restored (sparse files): never connected to

    def summary(self) -> str:
        parts = [f"{len(v)} {k.replace('_', ' ')}" for k, v in (("subscriptions", self.subscriptions),
                                                                ("slots", self.slots),
                                                                ("user_mappings", self.user_mappings)) if v]
        text = ", ".join(parts) or "nothing to detach"
        if self.skipped:
            text += (f"; skipped {', '.join(self.skipped)} (not restored: sparse files, never connected to; no "
                     "replication worker can start there)")
        return text


def _run(conn: Conn, stmt: sql.Composed, what: str) -> None:
    try:
        conn.execute(stmt)
    except psycopg.Error as e:
        first = pg_error(e)
        raise DatabaseError(f"quarantine of the copy failed ({what}): {first}") from None


def _subscriptions(conn: Conn, db: str, out: Detached) -> None:
    for s in fetch_all(conn, "copy_subscriptions", SubscriptionRow):
        name = sql.Identifier(s.name)
        if s.enabled:
            _run(conn, sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(name), f"subscription {s.name}")
        if s.has_slot:  # never DROP SUBSCRIPTION: it would drop production's slot on the publisher
            _run(conn, sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(name), f"subscription {s.name}")
        out.subscriptions.append(f"{db}: {s.name}")


def _slots(conn: Conn, db: str, out: Detached) -> None:
    dropped = {x.split(": ", 1)[1] for x in out.slots}  # a physical slot is seen from every database
    for slot in fetch_all(conn, "copy_slots", SlotRow):
        if slot.name in dropped:
            continue
        execute(conn, "copy_slot_drop", {"name": slot.name})
        out.slots.append(f"{db}: {slot.name}")


def _mappings(conn: Conn, db: str, out: Detached) -> None:
    for m in fetch_all(conn, "copy_user_mappings", MappingRow):
        who = sql.Identifier(m.role) if m.role is not None else sql.SQL("PUBLIC")
        _run(conn, sql.SQL("DROP USER MAPPING IF EXISTS FOR {} SERVER {}").format(who, sql.Identifier(m.server)),
             f"user mapping of {m.role or 'PUBLIC'} for {m.server}")
        out.user_mappings.append(f"{db}: {m.role or 'PUBLIC'}@{m.server}")


def detach(connect: ConnectTo, restored: frozenset[str] | None = None, home: str = "postgres") -> Detached:
    """Cut every database of the copy off from the outside world; what was cut. ``restored``: a partial copy's
    databases with real files (the others are zeroed: connecting fails, and must not be tried); ``home``: one of
    them, where the list of databases is read."""
    out = Detached()
    with connect(home) as conn:
        dbs = [r.name for r in fetch_all(conn, "databases", NameRow)]
    out.skipped = [db for db in dbs if restored is not None and db not in restored]
    for db in (d for d in dbs if d not in out.skipped):
        with connect(db) as conn:
            _subscriptions(conn, db, out)
            _slots(conn, db, out)
            _mappings(conn, db, out)
    return out


def reach(conn: Conn) -> ReachRow:
    """What still reaches outside, in this database (zero everywhere after :func:`detach`)."""
    return fetch_one(conn, "copy_facts", ReachRow)


def database_oids(conn: Conn) -> dict[str, int]:
    """Each database of the copy by name, with its OID."""
    return {r.name: r.oid for r in fetch_all(conn, "copy_database_oids", DatabaseOidRow)}
