"""The query objectives in the state file: executions over each objective's threshold per snapshot
(``query_over``, written from the duration log), the definitions they were counted under (``query_counted``),
how far that log was read (``log_positions``), and the reads
``opsd queries`` makes: per snapshot window the calls and executions over of one objective's statements, and
the statements contributing most to its misses. The snapshots and the statements' deltas (query_snapshots,
query_stats, query_texts) are written by the queries store (A1's adapters/stores/queries.py)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opsd.adapters.stores.database import StateDB, decoded
from opsd.core.queries.logline import LogPosition
from opsd.core.queries.objectives import OverKey, Target
from opsd.core.queries.sqltext import HIDDEN
from opsd.core.records.objectives import Contributor, Window


@dataclass(frozen=True)
class LogMark:
    """What log_positions keeps for a node besides the position: the snapshot it was read for (the next read
    belongs to the snapshot after it), ``owed`` (not empty: the read stopped short, the next window also counts
    lines of earlier ones: unknown), ``seen`` ((file, inode) -> offset read to, each file still there) and, when
    writing, ``counted`` ((objective, definition) -> problem, empty when exact)."""

    position: LogPosition | None
    snapshot_id: int | None = None
    owed: str = ""
    seen: Mapping[tuple[str, int], int] = field(default_factory=dict)
    counted: Mapping[tuple[str, str], str] = field(default_factory=dict)

# a selector: NULL matches every database (role)
_PICK = "(:database IS NULL OR {t}.dbname = :database) AND (:role IS NULL OR {t}.rolname = :role)"
_WINDOWS = f"""
SELECT s.id, s.taken_at, s.since, s.statements, s.reset, s.dealloc, s.log_state, s.problems,
       k.definition IS NOT NULL AS counted, coalesce(k.problem, '') AS count_problem,
       (SELECT coalesce(sum(q.calls), 0) FROM query_stats q
         WHERE q.snapshot_id = s.id AND {_PICK.format(t="q")}) AS calls,
       (SELECT coalesce(sum(o.over), 0) FROM query_over o
         WHERE o.snapshot_id = s.id AND o.objective = :objective) AS over
FROM query_snapshots s
LEFT JOIN query_counted k ON k.snapshot_id = s.id AND k.objective = :objective AND k.definition = :definition
WHERE s.node = :node AND s.since IS NOT NULL AND s.taken_at >= :lo AND s.taken_at < :hi
ORDER BY s.taken_at, s.id
"""
_IDS = ("SELECT id FROM query_snapshots WHERE node = :node AND since IS NOT NULL AND taken_at >= :lo "
        "AND taken_at < :hi")
_TOP = f"""
WITH o AS (SELECT queryid, dbname, rolname, sum(over) AS over FROM query_over
            WHERE objective = :objective AND snapshot_id IN ({_IDS}) GROUP BY queryid, dbname, rolname),
     s AS (SELECT queryid, dbname, rolname, sum(calls) AS calls, sum(total_ms) AS total_ms, sum(rows) AS rows,
                  sum(shared_read) AS shared_read, sum(shared_hit) AS shared_hit, sum(temp_read) AS temp_read,
                  sum(temp_written) AS temp_written, sum(wal_bytes) AS wal_bytes
             FROM query_stats q WHERE snapshot_id IN ({_IDS}) AND {_PICK.format(t="q")}
            GROUP BY queryid, dbname, rolname)
SELECT o.queryid, o.dbname, o.rolname, o.over, coalesce(s.calls, 0) AS calls, coalesce(s.total_ms, 0) AS total_ms,
       coalesce(s.rows, 0) AS rows, coalesce(s.shared_read, 0) AS shared_read,
       coalesce(s.shared_hit, 0) AS shared_hit, coalesce(s.temp_read, 0) AS temp_read,
       coalesce(s.temp_written, 0) AS temp_written, coalesce(s.wal_bytes, 0) AS wal_bytes,
       coalesce(t.text, (SELECT t2.text FROM query_texts t2
                          WHERE t2.queryid = o.queryid AND t2.dbname = o.dbname LIMIT 1)) AS text
FROM o LEFT JOIN s USING (queryid, dbname, rolname) LEFT JOIN query_texts t USING (queryid, dbname, rolname)
WHERE o.over > 0
ORDER BY o.over DESC, coalesce(s.total_ms, 0) DESC, o.queryid
LIMIT :limit
"""


def _ts(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _at(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


# what pg_stat_statements shows a role without pg_read_all_stats instead of another role's statement


def _window(r: Any) -> Window:
    return Window(snapshot_id=r["id"], taken_at=_at(r["taken_at"]), since=_at(r["since"]),
                  statements=bool(r["statements"]), reset=bool(r["reset"]), dealloc=int(r["dealloc"]),
                  log_state=r["log_state"], problems=[str(p) for p in json.loads(r["problems"] or "[]")],
                  calls=int(r["calls"]), over=int(r["over"]), counted=bool(r["counted"]),
                  count_problem=str(r["count_problem"]))


def _contributor(r: Any) -> Contributor:
    calls = int(r["calls"])
    text = r["text"] if r["text"] and r["text"] != HIDDEN else None
    return Contributor(queryid=r["queryid"], dbname=r["dbname"], rolname=r["rolname"], over=int(r["over"]),
                       calls=calls, total_ms=float(r["total_ms"]),
                       mean_ms=float(r["total_ms"]) / calls if calls else None, rows=int(r["rows"]),
                       shared_read=int(r["shared_read"]), shared_hit=int(r["shared_hit"]),
                       temp_read=int(r["temp_read"]), temp_written=int(r["temp_written"]),
                       wal_bytes=int(r["wal_bytes"]), text=text)


class ObjectiveStore:
    def __init__(self, db: StateDB) -> None:
        self.db = db

    # ------------------------------------------------------------------------------------------- writes
    def record(self, snapshot_id: int, node: str, over: Mapping[OverKey, int], position: LogPosition | None,
               at: datetime, *, mark: LogMark | None = None) -> None:
        """One snapshot's executions over, the definitions they were counted under (``mark.counted``) and the
        log position after them, in one transaction: a crash between them can neither lose nor count twice the
        lines read."""
        mark = mark or LogMark(position)
        with self.db.connect() as c:
            c.execute("BEGIN IMMEDIATE")
            try:
                c.executemany("INSERT OR REPLACE INTO query_over (snapshot_id, objective, queryid, dbname, rolname, "
                              "over) VALUES (?, ?, ?, ?, ?, ?)",
                              [(snapshot_id, *key, n) for key, n in sorted(over.items()) if n > 0])
                c.executemany("INSERT OR REPLACE INTO query_counted (snapshot_id, objective, definition, problem) "
                              "VALUES (?, ?, ?, ?)",
                              [(snapshot_id, name, d, p) for (name, d), p in sorted(mark.counted.items())])
                self._position(c, node, snapshot_id, position, mark=mark, at=at)
                # the definitions of snapshots pruned meanwhile (the queries store prunes the oldest)
                c.execute("DELETE FROM query_counted WHERE snapshot_id < (SELECT min(id) FROM query_snapshots)")
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    @staticmethod
    def _position(c: sqlite3.Connection, node: str, snapshot_id: int, position: LogPosition | None, *,
                  mark: LogMark, at: datetime) -> None:
        # no position (no log file yet, or the directory could not be listed): the row stays, empty, so the
        # node whose log this host reads is still known
        pos = position or LogPosition("", 0, 0)
        seen = json.dumps([[f, i, o] for (f, i), o in sorted(mark.seen.items())])
        c.execute("INSERT OR REPLACE INTO log_positions (node, file, inode, offset, at, snapshot_id, owed, seen) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  (node, pos.file, pos.inode, pos.offset, _ts(at), snapshot_id, mark.owed, seen))

    # -------------------------------------------------------------------------------------------- reads
    @decoded
    def position(self, node: str) -> LogPosition | None:
        with self.db.connect() as c:
            r = c.execute("SELECT file, inode, offset FROM log_positions WHERE node = ?", (node,)).fetchone()
        return LogPosition(r["file"], int(r["inode"]), int(r["offset"])) if r and r["file"] else None

    @decoded
    def mark(self, node: str) -> LogMark:
        """Where the node's log was read to, for which snapshot, what the next window owes, and each file's
        offset."""
        with self.db.connect() as c:
            r = c.execute("SELECT file, inode, offset, snapshot_id, owed, seen FROM log_positions WHERE node = ?",
                          (node,)).fetchone()
        if r is None:
            return LogMark(None)
        seen = {(str(f), int(i)): int(o) for f, i, o in json.loads(r["seen"] or "[]")}
        pos = LogPosition(r["file"], int(r["inode"]), int(r["offset"])) if r["file"] else None
        return LogMark(pos, snapshot_id=r["snapshot_id"], owed=str(r["owed"]), seen=seen)

    @decoded
    def previous_snapshot(self, node: str, snapshot_id: int) -> int | None:
        """The node's snapshot before ``snapshot_id`` (None: its first)."""
        with self.db.connect() as c:
            r = c.execute("SELECT max(id) FROM query_snapshots WHERE node = ? AND id < ?", (node, snapshot_id)
                          ).fetchone()
        return None if r is None or r[0] is None else int(r[0])

    @decoded
    def snapshot_node(self, snapshot_id: int) -> tuple[str, datetime | None] | None:
        """The node a snapshot was taken of and the start of its window (None: its node's first)."""
        with self.db.connect() as c:
            r = c.execute("SELECT node, since FROM query_snapshots WHERE id = ?", (snapshot_id,)).fetchone()
        return (r["node"], _at(r["since"]) if r["since"] else None) if r else None

    @decoded
    def log_node(self) -> str | None:
        """The node whose duration log this host reads (the one log_positions tracks; None: never read)."""
        with self.db.connect() as c:
            r = c.execute("SELECT node FROM log_positions ORDER BY at DESC LIMIT 1").fetchone()
        return str(r["node"]) if r else None

    @decoded
    def windows(self, node: str, target: Target, lo: datetime, hi: datetime) -> list[Window]:
        """The node's snapshot windows taken in [lo, hi), oldest first, with the calls of the statements the
        selector matches and the executions over the objective's threshold."""
        args = {"node": node, "objective": target.name, "database": target.database, "role": target.role,
                "lo": _ts(lo), "hi": _ts(hi), "definition": target.definition}
        with self.db.connect() as c:
            return [_window(r) for r in c.execute(_WINDOWS, args)]

    @decoded
    def contributors(self, node: str, target: Target, lo: datetime, hi: datetime, limit: int = 10
                     ) -> list[Contributor]:
        """The statements with the most executions over the threshold in the windows taken in [lo, hi) (then
        the most time), with their pg_stat_statements figures summed over those windows."""
        args = {"node": node, "objective": target.name, "database": target.database, "role": target.role,
                "lo": _ts(lo), "hi": _ts(hi), "limit": limit}
        with self.db.connect() as c:
            return [_contributor(r) for r in c.execute(_TOP, args)]

    @decoded
    def hidden_statements(self, node: str, lo: datetime, hi: datetime) -> int:
        """How many (database, role) groups of statements pg_stat_statements hid from opsd's role in the windows
        taken in [lo, hi) (no pg_read_all_stats: the snapshot sums them under queryid 0)."""
        with self.db.connect() as c:
            r = c.execute(f"SELECT count(*) FROM (SELECT DISTINCT dbname, rolname FROM query_stats WHERE queryid = 0 "
                          f"AND snapshot_id IN ({_IDS}))", {"node": node, "lo": _ts(lo), "hi": _ts(hi)}).fetchone()
        return int(r[0])
