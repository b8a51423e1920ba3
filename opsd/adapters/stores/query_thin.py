"""Merging old query-statistics snapshots (core/queries/tiers.py): the snapshots of one node in one hour (one day,
further back) become one, its deltas the sums of theirs (``query_stats``, ``relation_stats``, and the
over-threshold counts of ``query_over``), its window from the first one's start (a node's first snapshot, which
counted nothing, starts it at its own time) to the last one's end; its completeness the worst of its parts'
(``merge``). One
bucket a transaction, a bounded number of buckets a call (the rest at the next)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, tzinfo

from opsd.core.queries.tiers import FINE, Taken, buckets, merged_log_state, merged_problems

BUCKETS_A_CALL = 12

# table -> (its key columns after snapshot_id, its summed columns)
_SUMMED = {
    "query_stats": (("queryid", "dbname", "rolname"),
                    ("calls", "total_ms", "rows", "shared_hit", "shared_read", "temp_read", "temp_written",
                     "wal_bytes")),
    "relation_stats": (("kind", "dbname", "schemaname", "relname", "indexname"),
                       ("seq_scan", "seq_tup_read", "idx_scan", "n_tup_ins", "n_tup_upd", "n_tup_del")),
    "query_over": (("objective", "queryid", "dbname", "rolname"), ("over",)),
}


def _sum_into(c: sqlite3.Connection, table: str, carrier: int, others: list[int]) -> None:
    keys, sums = _SUMMED[table]
    ids = [carrier, *others]
    marks = ", ".join("?" * len(ids))
    c.execute(f"INSERT INTO {table} (snapshot_id, {', '.join(keys)}, {', '.join(sums)}) "
              f"SELECT ?, {', '.join(keys)}, {', '.join(f'sum({s})' for s in sums)} FROM {table} "
              f"WHERE snapshot_id IN ({marks}) GROUP BY {', '.join(keys)} "
              f"ON CONFLICT (snapshot_id, {', '.join(keys)}) DO UPDATE SET "
              + ", ".join(f"{s} = excluded.{s}" for s in sums), (carrier, *ids))
    c.executemany(f"DELETE FROM {table} WHERE snapshot_id = ?", [(i,) for i in others])


def _counted_into(c: sqlite3.Connection, carrier: int, parts: list[int], ids: list[int]) -> None:
    """query_counted of the merged window: a definition only if every part was counted under it (a part counted
    otherwise, or not at all, leaves the merged window uncounted: unknown for that objective), the worst problem
    kept."""
    marks = ", ".join("?" * len(parts))
    rows = c.execute(f"SELECT objective, definition, max(problem) FROM query_counted WHERE snapshot_id IN ({marks}) "
                     "GROUP BY objective, definition HAVING count(*) = ?", (*parts, len(parts))).fetchall()
    c.executemany("DELETE FROM query_counted WHERE snapshot_id = ?", [(i,) for i in ids])
    c.executemany("INSERT INTO query_counted (snapshot_id, objective, definition, problem) VALUES (?, ?, ?, ?)",
                  [(carrier, *tuple(r)) for r in rows])


def merge(c: sqlite3.Connection, group: list[Taken]) -> None:
    """The snapshots of ``group`` (one node, oldest first) into the last one. What a window's completeness rests
    on is the worst of its parts (a node's first snapshot, which covers no time, aside): pg_stat_statements read
    only if read in every part, a reset if any, the log complete only if complete in every part, the objective
    definitions counted only those every part counted."""
    ids = [t.id for t in group]
    rows = {r["id"]: r for r in c.execute(f"SELECT * FROM query_snapshots WHERE id IN ({', '.join('?' * len(ids))})",
                                          ids)}
    if len(rows) < 2:
        return
    kept = [rows[i] for i in ids if i in rows]
    carrier, others = kept[-1]["id"], [r["id"] for r in kept[:-1]]
    windows = [r for r in kept if r["since"] is not None] or kept
    for table in _SUMMED:
        _sum_into(c, table, carrier, others)
    _counted_into(c, carrier, [r["id"] for r in windows], [r["id"] for r in kept])
    c.execute("UPDATE query_snapshots SET since = ?, statements = ?, reset = ?, dealloc = ?, log_state = ?, "
              "problems = ? WHERE id = ?",
              (kept[0]["since"] or kept[0]["taken_at"], min(r["statements"] for r in windows),
               max(r["reset"] for r in windows), sum(r["dealloc"] for r in kept),
               merged_log_state(r["log_state"] for r in windows),
               json.dumps(merged_problems(json.loads(r["problems"]) for r in kept)), carrier))
    c.executemany("DELETE FROM query_snapshots WHERE id = ?", [(i,) for i in others])


def candidates(c: sqlite3.Connection, before: datetime) -> list[Taken]:
    return [Taken(r[0], r[1], datetime.fromisoformat(r[2])) for r in c.execute(
        "SELECT id, node, taken_at FROM query_snapshots WHERE taken_at < ?", (before.astimezone(UTC).isoformat(),))]


def groups(c: sqlite3.Connection, now: datetime, tz: tzinfo) -> list[list[Taken]]:
    """The next buckets to merge, oldest first, at most BUCKETS_A_CALL."""
    return buckets(candidates(c, now - FINE), now, tz)[:BUCKETS_A_CALL]
