"""The query-statistics store (adapters/stores/queries.py) on a temporary state file: a snapshot written in one
go and read back; the raw counters kept for the next delta (entries gone deleted, a database gone dropped); texts
stored once; index use per node over a window (summed scans, sightings clipped to the window, an index created
again starts over); node coverage; table activity on the primary with its indexes' sizes; daily sizes kept once a
day; pruning in bounded batches, with the deltas and over-threshold counts of the snapshots it removes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from opsd.adapters.stores import queries as store_mod
from opsd.adapters.stores.database import StateDB
from opsd.adapters.stores.queries import QueryStore, Sighting, SnapshotWrite
from opsd.adapters.stores.query_last import NodeFacts
from opsd.core.queries.delta import DbFamily, Epoch, RelationDelta, RelEntry, StatEntry, StatFamily
from opsd.core.records.queries import StatementDelta
from tests.conftest import _me

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
START = T0 - timedelta(days=1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def store(tmp_path: Path) -> QueryStore:
    return QueryStore(StateDB(tmp_path / "state.sqlite3", _me()))


def facts(minutes: float, in_recovery: bool = False) -> NodeFacts:
    return NodeFacts(at(minutes), START, 42, 1, in_recovery)


def ep(minutes: float) -> Epoch:
    return Epoch(at(minutes), START, 42, reset_at=START)


def sd(qid: int, calls: int) -> StatementDelta:
    return StatementDelta(qid, "shop", "app", calls, calls * 1.5, calls, 1, 2, 3, 4, 5)


def ixd(name: str, scans: int, db: str = "shop") -> RelationDelta:
    return RelationDelta("index", db, "inv", "stockMovements", name, 0, 0, scans, 0, 0, 0)


def seen(name: str, size: int = 8192, new: bool = False, kind: str = "index") -> Sighting:
    return Sighting(kind, "shop", "inv", "stockMovements", name if kind == "index" else "", size, new)


def snap(store: QueryStore, node: str, minutes: float, **kw: object) -> int:
    prev = store.previous(node)
    w = SnapshotWrite(node=node, taken_at=at(minutes), since=store.last_taken(node), statements=True,
                      facts=facts(minutes, node != "pg1"))
    for k, v in kw.items():
        setattr(w, k, v)
    return store.write(w, prev)


def test_a_snapshot_reads_back_and_keeps_the_raw_counters_for_the_next_delta(store: QueryStore) -> None:
    stats = StatFamily(ep(0), {(11, 5, 10): StatEntry("shop", "app", 5, 1.0, 5, 0, 0, 0, 0, 0, 0.1, 0.3),
                               (22, 5, 10): StatEntry("shop", "app", 7, 1.0, 7, 0, 0, 0, 0, 0, 0.1, 0.3)})
    rels = DbFamily("shop", Epoch(at(0), START, 42, xacts=900),
                    {("table", 100): RelEntry("inv", "stockMovements", "", 1, 2, 3, 4, 5, 6, 7, 8192)})
    sid = snap(store, "pg1", 0, statements_now=stats, databases_now=[rels], problems=["a problem"],
               texts={(11, "shop", "app"): "SELECT $1"})
    prev = store.previous("pg1")
    assert prev.statements == stats and prev.databases == {"shop": rels} and prev.node == facts(0)
    [info] = store.snapshots(at(-1), at(1))
    assert (info.id, info.node, info.taken_at, info.since, info.statements, info.problems) == (
        sid, "pg1", at(0), None, True, ["a problem"])
    assert store.texts_known([(11, "shop", "app"), (22, "shop", "app")]) == {(11, "shop", "app")}
    # the next reading: one statement gone, the database gone
    fewer = StatFamily(ep(5), {(11, 5, 10): StatEntry("shop", "app", 9, 2.0, 9, 0, 0, 0, 0, 0, 0.1, 0.3)})
    snap(store, "pg1", 5, statements_now=fewer, databases_gone=["shop"], statement_deltas=[sd(11, 4)])
    prev = store.previous("pg1")
    assert prev.statements == fewer and prev.databases == {}
    assert store.snapshots(at(4), at(6))[0].since == at(0)
    store.set_log_state(sid, "unknown", "the duration log is not readable")
    assert store.snapshots(at(-1), at(1))[0].problems == ["a problem", "the duration log is not readable"]
    assert store.snapshots(at(-1), at(1))[0].log_state == "unknown"


def test_index_use_per_node_over_the_window(store: QueryStore) -> None:
    snap(store, "pg1", 0, seen=[seen("a"), seen("b")])
    snap(store, "pg2", 0, seen=[seen("a"), seen("b")])
    snap(store, "pg1", 5, seen=[seen("a", 16384), seen("b")], relation_deltas=[ixd("a", 3)])
    snap(store, "pg2", 5, seen=[seen("a"), seen("b")], relation_deltas=[ixd("b", 2)])
    snap(store, "pg1", 10, seen=[seen("a"), seen("b", new=True)], relation_deltas=[ixd("a", 4)])
    use = {(u.node, u.indexname): u for u in store.index_use(at(-60), at(60))}
    assert {k: u.scans for k, u in use.items()} == {("pg1", "a"): 7, ("pg1", "b"): 0, ("pg2", "a"): 0,
                                                    ("pg2", "b"): 2}
    assert use["pg1", "a"].first_at == at(0) and use["pg1", "a"].last_at == at(10)
    assert use["pg1", "a"].size_bytes == 8192 and use["pg1", "a"].relname == "stockMovements"
    assert use["pg1", "b"].first_at == at(10)  # created again under its name: seen from then
    window = {(u.node, u.indexname): u for u in store.index_use(at(5), at(10))}  # [5, 10): pg1's minute 5 only
    assert window["pg1", "a"].scans == 3 and window["pg1", "a"].first_at == at(5)
    assert window["pg1", "a"].last_at == at(10)
    cover = {c.node: c for c in store.node_coverage(at(-60), at(60))}
    assert (cover["pg1"].first_at, cover["pg1"].last_at, cover["pg1"].snapshots) == (at(0), at(10), 3)
    assert cover["pg2"].snapshots == 2
    assert [c.first_at for c in store.node_coverage(at(3), at(60))] == [at(3), at(3)]


def test_table_activity_on_the_primary_with_its_indexes_sizes(store: QueryStore) -> None:
    table = RelationDelta("table", "shop", "inv", "stockMovements", "", 2, 2000, 5, 10, 1, 0)
    everything = [seen("", 81920, kind="table"), seen("a", 8192), seen("b", 16384)]
    snap(store, "pg1", 0, seen=everything)
    snap(store, "pg2", 0, seen=everything)
    snap(store, "pg1", 5, seen=everything, relation_deltas=[table])
    snap(store, "pg2", 5, seen=everything, relation_deltas=[table])
    snap(store, "pg1", 10, seen=everything, relation_deltas=[table])
    assert store.primary_node() == "pg1"
    [t] = store.table_activity(at(-1), at(60))
    assert (t.relname, t.seq_scan, t.seq_tup_read, t.idx_scan, t.n_tup_ins, t.n_tup_upd) == (
        "stockMovements", 4, 4000, 10, 20, 2)
    assert (t.size_bytes, t.indexes_bytes) == (81920, 24576)
    assert store.table_activity(at(-1), at(60), node="pg2")[0].seq_scan == 2


def test_table_sizes_once_a_day(store: QueryStore) -> None:
    day = date(2026, 11, 2)
    snap(store, "pg1", 0, sizes_day=day, table_sizes=[("shop", "inv", "stockMovements", 100)])
    snap(store, "pg1", 5, sizes_day=day, table_sizes=[("shop", "inv", "stockMovements", 200),
                                                      ("shop", "inv", "new", 5)])
    snap(store, "pg1", 1440, sizes_day=day + timedelta(days=1), table_sizes=[("shop", "inv", "stockMovements", 300)])
    got = [(s.day, s.relname, s.size_bytes) for s in store.table_sizes(day, day + timedelta(days=1))]
    assert got == [(day, "new", 5), (day, "stockMovements", 100), (day + timedelta(days=1), "stockMovements", 300)]


def test_prune_in_bounded_batches_with_the_deltas(store: QueryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_mod, "SNAPSHOTS_A_BATCH", 2)
    for m in range(5):
        sid = snap(store, "pg1", m, statement_deltas=[sd(11, 1)], relation_deltas=[ixd("a", 1)],
                   texts={(m, "shop", "app"): "SELECT 1"} if m == 0 else {}, seen=[seen("a")])
        with store.db.connect() as c:
            c.execute("INSERT INTO query_over VALUES (?, 'all', 11, 'shop', 'app', 1)", (sid,))
    assert store.prune(at(3.5), batches=1) == 2  # bounded: the rest at the next call
    assert store.prune(at(3.5)) == 2
    with store.db.connect() as c:
        counts = [c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("query_snapshots", "query_stats", "relation_stats", "query_over", "query_texts")]
    assert counts == [1, 1, 1, 1, 0]
    assert [s.taken_at for s in store.snapshots(at(-1), at(10))] == [at(4)]


def test_old_snapshots_are_merged_by_the_hour_then_by_the_day_totals_kept(store: QueryStore) -> None:
    paris = ZoneInfo("Europe/Paris")
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    day9 = datetime(2026, 11, 11, 0, 30, tzinfo=paris)  # 9 days back: by the day (a Paris day)
    hour30 = now - timedelta(hours=30, minutes=50)  # 30 hours back: by the hour
    times = ([day9 + timedelta(hours=h) for h in (0, 5, 23)] + [hour30 + timedelta(minutes=m) for m in (0, 5, 10)]
             + [now - timedelta(minutes=10)])
    ids = []
    for i, t in enumerate(times):
        ids.append(snap(store, "pg1", (t - T0).total_seconds() / 60, statement_deltas=[sd(11, i + 1), sd(22, 1)],
                        relation_deltas=[ixd("a", 10)], problems=[f"p{i % 2}"], seen=[seen("a")],
                        log_state="complete" if i != 1 else "unknown"))
        with store.db.connect() as c:
            c.execute("INSERT INTO query_over VALUES (?, 'all', 11, 'shop', 'app', 2)", (ids[-1],))
    merged_away = store.thin(now, paris)
    assert merged_away == 4
    snaps = store.snapshots(now - timedelta(days=30), now)
    assert [s.taken_at for s in snaps] == [times[2], times[5], times[6]]
    day, hour, recent = snaps
    assert day.since == times[0] and hour.since == times[2] and recent.since == times[5]
    assert (day.problems, day.log_state, hour.log_state) == (["p0", "p1"], "unknown", "complete")
    assert [(d.queryid, d.calls) for d in store.statement_deltas(day.id)] == [(11, 1 + 2 + 3), (22, 3)]
    assert [(d.queryid, d.calls) for d in store.statement_deltas(hour.id)] == [(11, 4 + 5 + 6), (22, 3)]
    with store.db.connect() as c:
        assert tuple(c.execute("SELECT sum(over), count(*) FROM query_over").fetchone()) == (14, 3)
        assert c.execute("SELECT count(*) FROM query_stats").fetchone()[0] == 6
    assert sum(u.scans for u in store.index_use(now - timedelta(days=30), now)) == 70
    assert store.thin(now, paris) == 0  # nothing left to merge
