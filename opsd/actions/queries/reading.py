"""Reading one node for a snapshot (db/querystats.py) and turning what it says into families of counters
(core/queries/delta.py): the statements of the local primary, each database's tables and indexes. A database that
cannot be read is a problem of the snapshot, the others are still read; a node that cannot be reached at all
raises. Every connection has ``[queries] snapshot_timeout`` and ``snapshot_lock_timeout``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from opsd.actions.queries.nodes import Node
from opsd.context import Context
from opsd.core.queries.delta import DbFamily, Epoch, RelEntry, StatEntry, StatFamily
from opsd.core.queries.sqltext import HIDDEN, kept_text
from opsd.db import querystats
from opsd.db.connection import Conn, ConnectTo
from opsd.db.querystats import RelationRow, Relations, ServerFacts, Statements
from opsd.errors import OpsdError

TextKey = tuple[int, str, str]


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def connector(ctx: Context, node: Node) -> ConnectTo:
    q, s = ctx.settings.queries, ctx.settings
    return querystats.snapshot_connector(s.postgres, run_as=s.opsd.run_as, conninfo=node.conninfo,
                                         statement_ms=_ms(q.snapshot_timeout.total_seconds()),
                                         lock_ms=_ms(q.snapshot_lock_timeout.total_seconds()))


def main_database(ctx: Context, node: Node) -> str:
    """The database a node's snapshot connects to first: the conninfo's, else [postgres] dbname."""
    return (querystats.conninfo_dbname(node.conninfo) if node.conninfo else None) or ctx.settings.postgres.dbname


@contextlib.contextmanager
def opened(connect: ConnectTo, dbname: str) -> Iterator[Conn]:
    conn = connect(dbname)
    try:
        yield conn
    finally:
        conn.close()


def stat_family(facts: ServerFacts, read: Statements) -> StatFamily:
    entries = {(r.queryid, r.dbid, r.userid): StatEntry(r.dbname, r.rolname, r.calls, r.total_ms, r.rows,
                                                        r.shared_hit, r.shared_read, r.temp_read, r.temp_written,
                                                        r.wal_bytes, r.min_ms, r.max_ms, r.hidden)
               for r in read.rows}
    return StatFamily(Epoch(facts.now, facts.started_at, facts.system_identifier, reset_at=read.stats_reset,
                            dealloc=read.dealloc, all_visible=facts.read_all_stats), entries)


def db_family(dbname: str, facts: ServerFacts, read: Relations) -> DbFamily:
    entries = {(r.kind, r.oid): RelEntry(r.schemaname, r.relname, r.indexname, r.seq_scan, r.seq_tup_read,
                                         r.idx_scan, r.n_tup_ins, r.n_tup_upd, r.n_tup_del, r.other, r.size_bytes)
               for r in read.rows}
    return DbFamily(dbname, Epoch(facts.now, facts.started_at, facts.system_identifier, reset_at=read.db_reset,
                                  discarded_at=facts.discarded_at, xacts=read.xacts), entries)


@dataclass
class RelationsRead:
    families: list[DbFamily] = field(default_factory=list)
    rows: dict[str, list[RelationRow]] = field(default_factory=dict)  # per database, as read
    gone: list[str] = field(default_factory=list)  # databases the node had at its previous reading, not now
    problems: list[str] = field(default_factory=list)
    failed: bool = False


def read_relations(connect: ConnectTo, conn: Conn, main_db: str, facts: ServerFacts, *, known: set[str],
                   node: str) -> RelationsRead:
    """Every connectable database's tables and indexes, one statement each; ``conn`` is open on ``main_db``."""
    out = RelationsRead()
    names = querystats.databases(conn)
    out.gone = sorted(known - set(names))
    for name in names:
        try:
            if name == main_db:
                read = querystats.relations(conn)
            else:
                with opened(connect, name) as other:
                    read = querystats.relations(other)
        except OpsdError as e:
            out.problems.append(f"{node}: tables and indexes of {name} not read ({e}): counted at the next "
                                "snapshot that reads them")
            out.failed = True
            continue
        out.families.append(db_family(name, facts, read))
        out.rows[name] = read.rows
    return out


def hidden_problem(facts: ServerFacts, family: StatFamily, user: str) -> str | None:
    if facts.read_all_stats or not any(e.hidden for e in family.entries.values()):
        return None
    return (f"statements: role {user} lacks pg_read_all_stats: other roles' statement texts are hidden; their "
            "calls are counted per database and role (queryid 0)")


def texts_for(conn: Conn, schema: str, wanted: set[TextKey], family: StatFamily) -> dict[TextKey, str]:
    """The texts of ``wanted`` statements (queryid 0: the hidden ones, named so), literals masked."""
    out: dict[TextKey, str] = {k: HIDDEN for k in wanted if k[0] == 0}
    ids = sorted({k[0] for k in wanted if k[0] != 0})
    names = {(q, e.dbname, e.rolname) for (q, _, _), e in family.entries.items()}
    for r in querystats.texts(conn, schema, ids):
        key = (r.queryid, r.dbname, r.rolname)
        if key in wanted and key in names:
            out[key] = kept_text(r.query)
    return out


def day_sizes(rows: dict[str, list[RelationRow]]) -> list[tuple[str, str, str, int]]:
    """Each table's size with its indexes (database, schema, table, bytes)."""
    sizes: dict[tuple[str, str, str], int] = {}
    for db, rels in rows.items():
        for r in rels:
            key = (db, r.schemaname, r.relname)
            sizes[key] = sizes.get(key, 0) + r.size_bytes
    return [(*k, v) for k, v in sorted(sizes.items())]

