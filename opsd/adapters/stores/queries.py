"""Query-statistics snapshots in the state file (schema step 6, migrations.V6_SERVICE_LEVELS): one row per
snapshot of a node (``query_snapshots``), the deltas of the statements and relations that moved
(``query_stats``, ``relation_stats``), the normalised texts (``query_texts``), the raw counters kept for the next
delta (``query_last``, adapters/stores/query_last.py), when each table and index was seen on each node and its
size (``relation_seen``), and each table's size once a day (``relation_sizes``). Old snapshots are merged by the
hour, then by the day (``thin``: adapters/stores/query_thin.py), and pruned by ``[queries] keep``, a bounded
batch a transaction. Readers answer for a window [since, until) of snapshot times."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo

from opsd.adapters.stores import query_last, query_thin
from opsd.adapters.stores.database import StateDB, decoded
from opsd.adapters.stores.query_last import NodeFacts, Previous
from opsd.core.queries.delta import DbFamily, RelationDelta, StatFamily
from opsd.core.records.queries import (
    IndexUse,
    NodeCoverage,
    SnapshotInfo,
    StatementDelta,
    TableActivity,
    TableSize,
)

SNAPSHOTS_A_BATCH = 50  # snapshots pruned in one transaction (5,000 statements each at most)
BATCHES_A_PRUNE = 10
TextKey = tuple[int, str, str]  # queryid, database, role


def _ts(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()  # one offset: stored times compare as text, by index


def _dt(s: str) -> datetime:
    return datetime.fromisoformat(s)


@dataclass(frozen=True)
class Sighting:
    """A table or index seen on a node now: its size; ``new``: not there at the node's previous reading (created
    since, or dropped and created again under its name: its first sighting starts over)."""

    kind: str
    dbname: str
    schemaname: str
    relname: str
    indexname: str
    size_bytes: int
    new: bool = False


@dataclass
class SnapshotWrite:
    """Everything one snapshot of one node writes, in one transaction. ``statements_now``: pg_stat_statements'
    counters read now (None: not read, the previous reading is kept for the next delta). ``databases_now``: each
    database read now; ``databases_gone``: databases the node no longer has (their last reading is dropped).
    ``sizes_day``: the day (in [opsd] timezone) of ``table_sizes``, the primary's tables' sizes with indexes."""

    node: str
    taken_at: datetime
    since: datetime | None
    statements: bool
    reset: bool = False
    dealloc: int = 0
    problems: list[str] = field(default_factory=list)
    log_state: str = "none"
    facts: NodeFacts | None = None
    statement_deltas: list[StatementDelta] = field(default_factory=list)
    texts: dict[TextKey, str] = field(default_factory=dict)
    statements_now: StatFamily | None = None
    relation_deltas: list[RelationDelta] = field(default_factory=list)
    databases_now: list[DbFamily] = field(default_factory=list)
    databases_gone: list[str] = field(default_factory=list)
    seen: list[Sighting] = field(default_factory=list)
    sizes_day: date | None = None
    table_sizes: list[tuple[str, str, str, int]] = field(default_factory=list)


_INDEX_USE = """
WITH scans AS (
    SELECT s.node, r.dbname, r.schemaname, r.relname, r.indexname, sum(r.idx_scan) AS scans
    FROM query_snapshots s JOIN relation_stats r ON r.snapshot_id = s.id AND r.kind = 'index'
    WHERE s.taken_at >= :since AND s.taken_at < :until
    GROUP BY s.node, r.dbname, r.schemaname, r.relname, r.indexname
)
SELECT v.node, v.dbname, v.schemaname, v.relname, v.indexname, coalesce(sc.scans, 0) AS scans,
       max(v.first_at, :since) AS first_at, min(v.last_at, :until) AS last_at, v.size_bytes
FROM relation_seen v
LEFT JOIN scans sc ON sc.node = v.node AND sc.dbname = v.dbname AND sc.schemaname = v.schemaname
                  AND sc.relname = v.relname AND sc.indexname = v.indexname
WHERE v.kind = 'index' AND v.last_at >= :since AND v.first_at < :until
ORDER BY v.dbname, v.schemaname, v.relname, v.indexname, v.node
"""

_TABLES = """
WITH d AS (
    SELECT r.dbname, r.schemaname, r.relname, sum(r.seq_scan) AS seq_scan, sum(r.seq_tup_read) AS seq_tup_read,
           sum(r.idx_scan) AS idx_scan, sum(r.n_tup_ins) AS n_tup_ins, sum(r.n_tup_upd) AS n_tup_upd,
           sum(r.n_tup_del) AS n_tup_del
    FROM query_snapshots s JOIN relation_stats r ON r.snapshot_id = s.id AND r.kind = 'table'
    WHERE s.node = :node AND s.taken_at >= :since AND s.taken_at < :until
    GROUP BY r.dbname, r.schemaname, r.relname
),
ix AS (
    SELECT i.dbname, i.schemaname, i.relname, sum(i.size_bytes) AS bytes
    FROM relation_seen i JOIN relation_seen t ON t.node = i.node AND t.kind = 'table' AND t.dbname = i.dbname
         AND t.schemaname = i.schemaname AND t.relname = i.relname AND t.indexname = '' AND i.last_at = t.last_at
    WHERE i.node = :node AND i.kind = 'index'
    GROUP BY i.dbname, i.schemaname, i.relname
)
SELECT v.dbname, v.schemaname, v.relname, coalesce(d.seq_scan, 0) AS seq_scan,
       coalesce(d.seq_tup_read, 0) AS seq_tup_read, coalesce(d.idx_scan, 0) AS idx_scan,
       coalesce(d.n_tup_ins, 0) AS n_tup_ins, coalesce(d.n_tup_upd, 0) AS n_tup_upd,
       coalesce(d.n_tup_del, 0) AS n_tup_del, v.size_bytes, coalesce(ix.bytes, 0) AS indexes_bytes
FROM relation_seen v
LEFT JOIN d ON d.dbname = v.dbname AND d.schemaname = v.schemaname AND d.relname = v.relname
LEFT JOIN ix ON ix.dbname = v.dbname AND ix.schemaname = v.schemaname AND ix.relname = v.relname
WHERE v.node = :node AND v.kind = 'table' AND v.last_at >= :since AND v.first_at < :until
ORDER BY v.dbname, v.schemaname, v.relname
"""


class QueryStore:
    def __init__(self, db: StateDB) -> None:
        self.db = db

    def _conn(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self.db.connect()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._conn() as c:
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ writes
    @decoded
    def previous(self, node: str) -> Previous:
        """The node's last reading (raw counters) and its facts."""
        with self._conn() as c:
            return query_last.load(c, node)

    @decoded
    def last_taken(self, node: str) -> datetime | None:
        with self._conn() as c:
            r = c.execute("SELECT max(taken_at) FROM query_snapshots WHERE node = ?", (node,)).fetchone()
        return _dt(r[0]) if r and r[0] else None

    def texts_known(self, keys: Iterable[TextKey]) -> set[TextKey]:
        """Which of ``keys`` have a text stored."""
        with self._conn() as c:
            have = {(int(r[0]), str(r[1]), str(r[2]))
                    for r in c.execute("SELECT queryid, dbname, rolname FROM query_texts")}
        return have & set(keys)

    def write(self, w: SnapshotWrite, prev: Previous) -> int:
        """One snapshot in one transaction; ``prev`` is what :meth:`previous` answered before the reading (only
        the counters that changed since are written). Returns the snapshot's id."""
        with self._tx() as c:
            cur = c.execute("INSERT INTO query_snapshots (node, taken_at, since, statements, reset, dealloc, "
                            "log_state, problems) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (w.node, _ts(w.taken_at), _ts(w.since) if w.since else None, int(w.statements),
                             int(w.reset), w.dealloc, w.log_state, json.dumps(w.problems)))
            sid = cur.lastrowid
            assert sid is not None
            self._statements(c, sid, w, prev)
            self._relations(c, sid, w, prev)
            if w.facts is not None:
                query_last.save_node(c, w.node, w.facts)
        return sid

    def _statements(self, c: sqlite3.Connection, sid: int, w: SnapshotWrite, prev: Previous) -> None:
        c.executemany("INSERT INTO query_stats (snapshot_id, queryid, dbname, rolname, calls, total_ms, rows, "
                      "shared_hit, shared_read, temp_read, temp_written, wal_bytes) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      [(sid, d.queryid, d.dbname, d.rolname, d.calls, d.total_ms, d.rows, d.shared_hit,
                        d.shared_read, d.temp_read, d.temp_written, d.wal_bytes) for d in w.statement_deltas])
        at = _ts(w.taken_at)
        c.executemany("INSERT OR REPLACE INTO query_texts (queryid, dbname, rolname, text, last_seen) "
                      "VALUES (?, ?, ?, ?, ?)", [(k[0], k[1], k[2], t, at) for k, t in w.texts.items()])
        day = _ts(datetime.combine(w.taken_at.astimezone(UTC).date(), datetime.min.time(), UTC))
        c.executemany("UPDATE query_texts SET last_seen = ? WHERE queryid = ? AND dbname = ? AND rolname = ? "
                      "AND last_seen < ?", [(at, d.queryid, d.dbname, d.rolname, day) for d in w.statement_deltas])
        if w.statements_now is not None:
            query_last.save_statements(c, w.node, prev.statements, w.statements_now)

    def _relations(self, c: sqlite3.Connection, sid: int, w: SnapshotWrite, prev: Previous) -> None:
        c.executemany("INSERT INTO relation_stats (snapshot_id, kind, dbname, schemaname, relname, indexname, "
                      "seq_scan, seq_tup_read, idx_scan, n_tup_ins, n_tup_upd, n_tup_del) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      [(sid, d.kind, d.dbname, d.schemaname, d.relname, d.indexname, d.seq_scan, d.seq_tup_read,
                        d.idx_scan, d.n_tup_ins, d.n_tup_upd, d.n_tup_del) for d in w.relation_deltas])
        at = _ts(w.taken_at)
        c.executemany("INSERT INTO relation_seen (node, kind, dbname, schemaname, relname, indexname, first_at, "
                      "last_at, size_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                      "ON CONFLICT (node, kind, dbname, schemaname, relname, indexname) DO UPDATE SET "
                      "last_at = excluded.last_at, size_bytes = excluded.size_bytes, "
                      "first_at = CASE WHEN ? THEN excluded.first_at ELSE first_at END",
                      [(w.node, s.kind, s.dbname, s.schemaname, s.relname, s.indexname, at, at, s.size_bytes,
                        int(s.new)) for s in w.seen])
        for family in w.databases_now:
            query_last.save_database(c, w.node, prev.databases.get(family.dbname), family)
        for name in w.databases_gone:
            if name in prev.databases:
                query_last.drop_database(c, w.node, prev.databases[name])
        if w.sizes_day is not None:
            c.executemany("INSERT OR IGNORE INTO relation_sizes (day, dbname, schemaname, relname, size_bytes) "
                          "VALUES (?, ?, ?, ?, ?)", [(w.sizes_day.isoformat(), *t) for t in w.table_sizes])

    def set_log_state(self, snapshot_id: int, state: str, problem: str | None = None) -> None:
        """The duration log's verdict for the snapshot's window (actions/queries/slowlog), and its problem."""
        with self._tx() as c:
            r = c.execute("SELECT problems FROM query_snapshots WHERE id = ?", (snapshot_id,)).fetchone()
            problems = json.loads(r[0]) if r else []
            if problem:
                problems.append(problem)
            c.execute("UPDATE query_snapshots SET log_state = ?, problems = ? WHERE id = ?",
                      (state, json.dumps(problems), snapshot_id))

    def thin(self, now: datetime, tz: tzinfo) -> int:
        """Merge snapshots past their resolution's age (core/queries/tiers.py: 5 minutes for a day, then hourly,
        daily after a week), one bucket a transaction and a bounded number a call. Returns the snapshots merged
        away."""
        with self._conn() as c:
            todo = query_thin.groups(c, now, tz)
        for group in todo:
            with self._tx() as c:
                query_thin.merge(c, group)
        return sum(len(g) - 1 for g in todo)

    def prune(self, before: datetime, batches: int = BATCHES_A_PRUNE) -> int:
        """Delete snapshots taken before ``before`` with their deltas and over-threshold counts, a bounded batch a
        transaction and at most ``batches`` of them a call (the rest at the next); texts, sightings and sizes
        not seen since. Returns how many snapshots went."""
        gone = 0
        for _ in range(batches):
            with self._tx() as c:
                ids = [r[0] for r in c.execute("SELECT id FROM query_snapshots WHERE taken_at < ? ORDER BY taken_at "
                                               "LIMIT ?", (_ts(before), SNAPSHOTS_A_BATCH))]
                for table in ("query_stats", "relation_stats", "query_over"):
                    c.executemany(f"DELETE FROM {table} WHERE snapshot_id = ?", [(i,) for i in ids])
                c.executemany("DELETE FROM query_snapshots WHERE id = ?", [(i,) for i in ids])
            gone += len(ids)
            if len(ids) < SNAPSHOTS_A_BATCH:
                break
        with self._tx() as c:
            c.execute("DELETE FROM query_texts WHERE last_seen < ?", (_ts(before),))
            c.execute("DELETE FROM relation_seen WHERE last_at < ?", (_ts(before),))
            c.execute("DELETE FROM relation_sizes WHERE day < ?", (before.date().isoformat(),))
        return gone

    # ------------------------------------------------------------------ reads
    @decoded
    def snapshots(self, since: datetime, until: datetime, node: str | None = None) -> list[SnapshotInfo]:
        """The snapshots taken in [since, until), oldest first (one node's, or every node's)."""
        q = "SELECT * FROM query_snapshots WHERE taken_at >= ? AND taken_at < ?"
        args: tuple[str, ...] = (_ts(since), _ts(until))
        if node is not None:
            q, args = q + " AND node = ?", (*args, node)
        with self._conn() as c:
            rows = c.execute(q + " ORDER BY taken_at, id", args).fetchall()
        return [SnapshotInfo(r["id"], r["node"], _dt(r["taken_at"]), _dt(r["since"]) if r["since"] else None,
                             bool(r["statements"]), bool(r["reset"]), r["dealloc"], r["log_state"],
                             list(json.loads(r["problems"]))) for r in rows]

    @decoded
    def statement_deltas(self, snapshot_id: int) -> list[StatementDelta]:
        """The statements that moved in one snapshot's window, with their deltas."""
        with self._conn() as c:
            rows = c.execute("SELECT * FROM query_stats WHERE snapshot_id = ? ORDER BY queryid, dbname, rolname",
                             (snapshot_id,)).fetchall()
        return [StatementDelta(r["queryid"], r["dbname"], r["rolname"], r["calls"], r["total_ms"], r["rows"],
                               r["shared_hit"], r["shared_read"], r["temp_read"], r["temp_written"], r["wal_bytes"])
                for r in rows]

    @decoded
    def index_use(self, since: datetime, until: datetime) -> list[IndexUse]:
        """Per node and index seen in [since, until): its scans summed over the node's snapshots of the window,
        when the node's snapshots saw it (within the window) and its latest size."""
        with self._conn() as c:
            rows = c.execute(_INDEX_USE, {"since": _ts(since), "until": _ts(until)}).fetchall()
        return [IndexUse(r["node"], r["dbname"], r["schemaname"], r["relname"], r["indexname"], int(r["scans"]),
                         _dt(r["first_at"]), _dt(r["last_at"]), int(r["size_bytes"])) for r in rows]

    @decoded
    def node_coverage(self, since: datetime, until: datetime) -> list[NodeCoverage]:
        """Per node, the span its snapshots cover in [since, until) (from the window's start at the earliest: a
        snapshot covers the time since the node's previous one) and how many snapshots it took."""
        with self._conn() as c:
            rows = c.execute("SELECT node, max(min(coalesce(since, taken_at)), ?) AS first_at, "
                             "max(taken_at) AS last_at, count(*) AS n FROM query_snapshots "
                             "WHERE taken_at >= ? AND taken_at < ? GROUP BY node ORDER BY node",
                             (_ts(since), _ts(since), _ts(until))).fetchall()
        return [NodeCoverage(r["node"], _dt(r["first_at"]), _dt(r["last_at"]), int(r["n"])) for r in rows]

    @decoded
    def primary_node(self) -> str | None:
        """The node last read as a primary (not in recovery), the most recently read first."""
        with self._conn() as c:
            rows = c.execute("SELECT node, counters FROM query_last WHERE key = ?",
                             (json.dumps([query_last.NODE]),)).fetchall()
        primaries = sorted(((json.loads(r[1])["at"], r[0]) for r in rows if not json.loads(r[1])["in_recovery"]),
                           reverse=True)
        return str(primaries[0][1]) if primaries else None

    @decoded
    def table_activity(self, since: datetime, until: datetime, node: str | None = None) -> list[TableActivity]:
        """Each table seen on ``node`` (default: the primary) in [since, until): its deltas summed, its latest
        size and its indexes' sizes."""
        node = node or self.primary_node()
        if node is None:
            return []
        with self._conn() as c:
            rows = c.execute(_TABLES, {"node": node, "since": _ts(since), "until": _ts(until)}).fetchall()
        return [TableActivity(r["dbname"], r["schemaname"], r["relname"], int(r["seq_scan"]),
                              int(r["seq_tup_read"]), int(r["idx_scan"]), int(r["n_tup_ins"]), int(r["n_tup_upd"]),
                              int(r["n_tup_del"]), int(r["size_bytes"]), int(r["indexes_bytes"])) for r in rows]

    @decoded
    def table_sizes(self, day_from: date, day_to: date) -> list[TableSize]:
        """Each table's daily size from ``day_from`` to ``day_to``, both included."""
        with self._conn() as c:
            rows = c.execute("SELECT * FROM relation_sizes WHERE day >= ? AND day <= ? "
                             "ORDER BY day, dbname, schemaname, relname",
                             (day_from.isoformat(), day_to.isoformat())).fetchall()
        return [TableSize(date.fromisoformat(r["day"]), r["dbname"], r["schemaname"], r["relname"],
                          int(r["size_bytes"])) for r in rows]
