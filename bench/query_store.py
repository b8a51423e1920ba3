"""What a month of query-statistics snapshots costs in the state file (issue 36 §1), measured by writing them.

Snapshots every 5 minutes of one primary with ``--statements`` distinct statements (default 5,000) of which
``--moving`` (a share) move in each window, and ``--tables`` tables with two indexes each of which a third move,
are written through opsd's own store (adapters/stores/queries.py QueryStore.write: the snapshot row, the deltas of
what moved, the raw counters of what changed for the next delta, the texts once, the sightings, the daily sizes;
then QueryStore.thin, which merges snapshots older than a day by the hour and older than a week by the day), as
the daemon writes them, for ``--days`` days; then ``[queries] keep`` pruning of the first day is timed. Printed
and written to bench/results/query_store-DATE.json and .md: the file's bytes (after a checkpoint), rows and bytes
per table, the snapshots kept, and the time to write (and merge) a snapshot.

    .venv/bin/python bench/query_store.py [--days 30] [--statements 5000] [--moving 1.0 0.2] [--tables 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pwd
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from opsd.adapters.stores.database import StateDB
from opsd.adapters.stores.queries import QueryStore, Sighting, SnapshotWrite
from opsd.adapters.stores.query_last import NodeFacts, Previous
from opsd.core.queries.delta import DbFamily, Epoch, RelationDelta, RelEntry, StatEntry, StatFamily
from opsd.core.records.queries import StatementDelta

STEP = timedelta(minutes=5)
START = datetime(2026, 10, 1, tzinfo=UTC)
TABLES = ("query_snapshots", "query_stats", "query_texts", "query_last", "relation_stats", "relation_seen",
          "relation_sizes")


def owner() -> str:
    return "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def statement_text(i: int) -> str:
    return (f'SELECT m.id, m.sku, m.qty, w.name FROM inv."stockMovements" m JOIN inv.warehouses w ON w.id = '
            f"m.warehouse_id WHERE m.sku = $1 AND m.at > $2 /* statement {i} */ ORDER BY m.at DESC LIMIT $3")


class Simulation:
    """One primary's counters moving as a busy OLTP database's do, snapshotted every 5 minutes."""

    def __init__(self, store: QueryStore, statements: int, moving: float, tables: int) -> None:
        self.store, self.moving, self.rng = store, moving, random.Random(36)
        self.qids = [self.rng.getrandbits(63) - (1 << 62) for _ in range(statements)]
        self.stats = {(q, 16384, 10): StatEntry("shop", "app", 0, 0.0, 0, 0, 0, 0, 0, 0, 0.05, 0.5)
                      for q in self.qids}
        self.rels: dict[tuple[str, int], RelEntry] = {}
        for t in range(tables):
            self.rels[("table", 20000 + t)] = RelEntry("inv", f"table_{t}", "", 0, 0, 0, 0, 0, 0, 0, 8192 * 1000)
            for i in range(2):
                self.rels[("index", 30000 + 2 * t + i)] = RelEntry("inv", f"table_{t}", f"table_{t}_ix{i}",
                                                                   0, 0, 0, 0, 0, 0, 0, 8192 * 200)
        self.prev: Previous = Previous()
        self.written = 0

    def _epoch(self, at: datetime) -> Epoch:
        return Epoch(at, START, 7, reset_at=START, xacts=self.written)

    def _move_statements(self) -> list[StatementDelta]:
        deltas = []
        for key in self.rng.sample(list(self.stats), int(len(self.stats) * self.moving)):
            e, calls = self.stats[key], self.rng.randint(1, 400)
            ms, rows, hit, read = calls * 0.7, calls * 3, calls * 40, self.rng.randint(0, calls)
            self.stats[key] = StatEntry(e.dbname, e.rolname, e.calls + calls, e.total_ms + ms, e.rows + rows,
                                        e.shared_hit + hit, e.shared_read + read, 0, 0, e.wal_bytes + calls * 120,
                                        e.min_ms, e.max_ms)
            deltas.append(StatementDelta(key[0], e.dbname, e.rolname, calls, ms, rows, hit, read, 0, 0, calls * 120))
        return deltas

    def _move_relations(self) -> list[RelationDelta]:
        deltas = []
        for key in self.rng.sample(list(self.rels), len(self.rels) // 3):
            e, n = self.rels[key], self.rng.randint(1, 500)
            self.rels[key] = RelEntry(e.schemaname, e.relname, e.indexname, e.seq_scan + (n if key[0] == "table"
                                                                                          else 0),
                                      e.seq_tup_read, e.idx_scan + n, e.n_tup_ins, e.n_tup_upd, e.n_tup_del, e.other,
                                      e.size_bytes)
            deltas.append(RelationDelta(key[0], "shop", e.schemaname, e.relname, e.indexname, 0, 0, n, 0, 0, 0))
        return deltas

    def snapshot(self, at: datetime, first: bool) -> float:
        w = SnapshotWrite(node="pg1", taken_at=at, since=None if first else at - STEP, statements=not first,
                          facts=NodeFacts(at, START, 7, 1, False))
        if not first:
            w.statement_deltas, w.relation_deltas = self._move_statements(), self._move_relations()
        if self.written == 1:
            w.texts = {(q, "shop", "app"): statement_text(i) for i, q in enumerate(self.qids)}
        w.statements_now = StatFamily(self._epoch(at), dict(self.stats))
        w.databases_now = [DbFamily("shop", self._epoch(at), dict(self.rels))]
        w.seen = [Sighting(k[0], "shop", e.schemaname, e.relname, e.indexname, e.size_bytes)
                  for k, e in self.rels.items()]
        w.sizes_day = at.date()
        w.table_sizes = [("shop", e.schemaname, e.relname, e.size_bytes) for k, e in self.rels.items()
                         if k[0] == "table"]
        began = time.perf_counter()
        self.store.write(w, self.prev)
        self.store.thin(at, UTC)  # as the daemon does after each snapshot
        took = time.perf_counter() - began
        self.prev = Previous(w.facts, w.statements_now, {"shop": w.databases_now[0]})
        self.written += 1
        return took


def sizes(db: StateDB) -> dict[str, Any]:
    with db.connect() as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        try:
            per = {t: c.execute("SELECT sum(pgsize) FROM dbstat WHERE name = ? OR name LIKE ?",
                                (t, f"sqlite_autoindex_{t}%")).fetchone()[0] for t in TABLES}
        except Exception:  # SQLite built without dbstat
            per = {}
    return {"file_bytes": db.path.stat().st_size, "rows": rows, "table_bytes": per}


def run(days: int, statements: int, moving: float, tables: int, work: Path) -> dict[str, Any]:
    db = StateDB(work / f"queries-{moving}.sqlite3", owner())
    store = QueryStore(db)
    sim = Simulation(store, statements, moving, tables)
    per_day = int(timedelta(days=1) / STEP)
    times: list[float] = []
    with db.held():
        for i in range(days * per_day + 1):
            times.append(sim.snapshot(START + i * STEP, i == 0))
    size = sizes(db)
    began = time.perf_counter()
    with db.held():
        pruned = store.prune(START + timedelta(days=1))
    prune_s = time.perf_counter() - began
    snaps = days * per_day
    return {"days": days, "statements": statements, "moving": moving, "tables": tables, "snapshots": snaps + 1,
            "snapshots_kept": size["rows"]["query_snapshots"],
            **size, "write_ms_median": statistics.median(times) * 1000,
            "write_ms_p95": sorted(times)[int(len(times) * .95)] * 1000, "prune_first_day_s": prune_s,
            "pruned": pruned}


def markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [f"# Query snapshots in the state file ({meta['date']})", "",
             f"{meta['machine']}; SQLite {meta['sqlite']}; one primary, a snapshot every 5 minutes.", "",
             "| statements | moving a window | tables (+2 indexes) | days | snapshots kept | file | rows of deltas "
             "| write + merge median / p95 | prune a day |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['statements']} | {r['moving']:.0%} | {r['tables']} | {r['days']} | "
                     f"{r['snapshots_kept']} of {r['snapshots']} | {r['file_bytes'] / 2**20:.1f} MiB | "
                     f"{r['rows']['query_stats']:,} statements, {r['rows']['relation_stats']:,} relations | "
                     f"{r['write_ms_median']:.0f} / {r['write_ms_p95']:.0f} ms "
                     f"| {r['prune_first_day_s']:.1f} s ({r['pruned']} snapshots) |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--statements", type=int, default=5000)
    ap.add_argument("--moving", type=float, nargs="+", default=[1.0, 0.2])
    ap.add_argument("--tables", type=int, default=200)
    ap.add_argument("--work", type=Path)
    a = ap.parse_args()
    import sqlite3

    meta = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "sqlite": sqlite3.sqlite_version, "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory(prefix="opsd-bench-qs-") as tmp:
        work = a.work or Path(tmp)
        if a.work is None and os.geteuid() == 0:
            os.chown(work, pwd.getpwnam(owner()).pw_uid, -1)
        results = []
        for moving in a.moving:
            results.append(run(a.days, a.statements, moving, a.tables, work))
            print(json.dumps(results[-1], indent=1), flush=True)
    out = Path(__file__).parent / "results" / f"query_store-{meta['date']}"
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    out.with_suffix(".md").write_text(markdown(results, meta))
    print(markdown(results, meta))


if __name__ == "__main__":
    main()
