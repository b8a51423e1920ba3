"""Deltas of cumulative counters (core/queries/delta.py): a plain window, a statistics reset, a restart that kept or
discarded the counters, a crash re-initialisation, another server behind the node's name, an entry evicted and
added again (fewer calls, or more calls but a higher minimum), a single table's reset, a disappeared queryid,
evictions, hidden statements; never a negative delta, never a value counted twice, only moved rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from opsd.core.queries.delta import (
    DbFamily,
    Epoch,
    RelEntry,
    StatEntry,
    StatFamily,
    relation_deltas,
    statement_deltas,
)

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
START = T0 - timedelta(days=3)
SYSID = 7000000000000000001


def epoch(minutes: float, **kw: object) -> Epoch:
    base: dict[str, object] = {"at": T0 + timedelta(minutes=minutes), "started_at": START,
                               "system_identifier": SYSID, "reset_at": START}
    base.update(kw)
    return Epoch(**base)  # type: ignore[arg-type]


def st(calls: int, total: float = 0.0, *, rows: int = 0, mn: float = 1.0, mx: float = 9.0,
       hidden: bool = False, db: str = "shop", role: str = "app") -> StatEntry:
    return StatEntry(db, role, calls, total or calls * 2.0, rows, calls * 3, calls, 0, 0, calls * 10, mn, mx, hidden)


def fam(minutes: float, entries: dict[tuple[int, int, int], StatEntry], **kw: object) -> StatFamily:
    return StatFamily(epoch(minutes, **kw), entries)


def calls(out: object) -> dict[int, int]:
    return {d.queryid: d.calls for d in out.deltas}  # type: ignore[attr-defined]


A, B, C = (11, 5, 10), (22, 5, 10), (33, 5, 10)


def test_first_reading_is_a_baseline() -> None:
    out = statement_deltas(None, fam(0, {A: st(5)}))
    assert not out.counted and out.deltas == []


def test_plain_window_counts_the_difference_and_only_moved_rows() -> None:
    prev = fam(0, {A: st(5), B: st(7)})
    cur = fam(5, {A: st(12), B: st(7), C: st(2)})  # B did not move; C is new: all its calls are in the window
    out = statement_deltas(prev, cur)
    assert out.counted and not out.reset and out.notes == []
    assert calls(out) == {11: 7, 33: 2}
    a = next(d for d in out.deltas if d.queryid == 11)
    assert (a.total_ms, a.shared_hit, a.shared_read, a.wal_bytes) == (14.0, 21, 7, 70)
    assert out.created == frozenset({C})


def test_a_disappeared_queryid_yields_nothing() -> None:
    out = statement_deltas(fam(0, {A: st(5), B: st(9)}), fam(5, {A: st(6)}))
    assert calls(out) == {11: 1}


def test_a_statistics_reset_counts_from_the_reset_never_negative_never_twice() -> None:
    prev = fam(0, {A: st(100), B: st(50)})
    # reset at minute 2; since then A ran 120 times (more than before: the difference would undercount), B 3
    cur = fam(5, {A: st(120), B: st(3)}, reset_at=T0 + timedelta(minutes=2))
    out = statement_deltas(prev, cur)
    assert out.counted and out.reset
    assert calls(out) == {11: 120, 22: 3}
    assert "pg_stat_statements was reset" in out.notes[0]


def test_a_clean_restart_keeps_counting() -> None:
    prev = fam(0, {A: st(100)})
    cur = fam(5, {A: st(130)}, started_at=T0 + timedelta(minutes=3))
    out = statement_deltas(prev, cur)
    assert calls(out) == {11: 30} and not out.reset and out.notes == []
    assert "restarted" in out.info[0]


def test_a_crash_reinitialisation_resets_pg_stat_statements() -> None:
    # the postmaster did not restart (same start time): pg_stat_statements' reset time tells it
    prev = fam(0, {A: st(100)})
    cur = fam(5, {A: st(4)}, reset_at=T0 + timedelta(minutes=4))
    assert calls(statement_deltas(prev, cur)) == {11: 4}


def test_another_server_under_the_same_name_is_a_new_baseline() -> None:
    prev = fam(0, {A: st(100)})
    failover = fam(5, {A: st(900)}, started_at=START - timedelta(days=9))  # started before the previous reading
    out = statement_deltas(prev, failover)
    assert not out.counted and out.deltas == [] and "another server" in out.notes[0]
    other_cluster = fam(5, {A: st(900)}, system_identifier=SYSID + 1)
    assert not statement_deltas(prev, other_cluster).counted


def test_an_entry_evicted_and_added_again_counts_from_its_re_creation() -> None:
    prev = fam(0, {A: st(100, mn=0.5, mx=40.0), B: st(100, mn=0.5, mx=40.0)})
    cur = fam(5, {A: st(3, mn=1.0, mx=2.0),  # fewer calls
                  B: st(150, mn=0.7, mx=30.0)},  # more calls, but its minimum rose and maximum fell: a new entry
              dealloc=2)
    out = statement_deltas(prev, cur)
    assert calls(out) == {11: 3, 22: 150}
    assert any("added again" in n for n in out.notes)
    assert out.dealloc == 2 and any("evicted 2" in n for n in out.notes)


def test_dealloc_growth_is_the_windows_own() -> None:
    prev = fam(0, {A: st(1)}, dealloc=40)
    assert statement_deltas(prev, fam(5, {A: st(2)}, dealloc=40)).dealloc == 0
    assert statement_deltas(prev, fam(5, {A: st(2)}, dealloc=45)).dealloc == 5
    after_reset = fam(5, {A: st(2)}, dealloc=3, reset_at=T0 + timedelta(minutes=1))
    assert statement_deltas(prev, after_reset).dealloc == 3


def test_hidden_statements_are_summed_and_counted_without_the_min_max_rule() -> None:
    h = (0, 5, 10)
    prev = fam(0, {h: st(10, mn=0.1, mx=50.0, hidden=True)}, all_visible=False)
    cur = fam(5, {h: st(14, mn=0.3, mx=20.0, hidden=True)}, all_visible=False)
    assert calls(statement_deltas(prev, cur)) == {0: 4}
    granted = fam(5, {A: st(14)}, all_visible=True)  # texts visible now: per queryid, a new baseline
    assert not statement_deltas(prev, granted).counted


def test_a_database_dropped_and_created_again_keeps_apart_and_sums_under_one_name() -> None:
    old, new = (11, 5, 10), (11, 6, 10)
    prev = fam(0, {old: st(40, db="#5")})
    cur = fam(5, {old: st(40, db="#5"), new: st(2, db="shop")})
    assert [(d.dbname, d.calls) for d in statement_deltas(prev, cur).deltas] == [("shop", 2)]


def rel(seq: int = 0, idx: int = 0, ins: int = 0, *, other: int = 0, index: str = "") -> RelEntry:
    return RelEntry("inv", "stockMovements", index, seq, seq * 1000, idx, ins, 0, 0, other, 8192)


def dbf(minutes: float, entries: dict[tuple[str, int], RelEntry], **kw: object) -> DbFamily:
    kw.setdefault("reset_at", None)
    kw.setdefault("xacts", 1000 + int(minutes))
    return DbFamily("shop", epoch(minutes, **kw), entries)


T, IX = ("table", 100), ("index", 101)


def by_name(out: object) -> dict[str, tuple[int, int, int]]:
    return {d.indexname or d.relname: (d.seq_scan, d.idx_scan, d.n_tup_ins) for d in out.deltas}  # type: ignore


def test_relations_plain_window_keeps_names_exactly() -> None:
    prev = dbf(0, {T: rel(3, 10, 5), IX: rel(idx=10, index="stockMovements_pkey")})
    cur = dbf(5, {T: rel(4, 12, 5), IX: rel(idx=12, index="stockMovements_pkey")})
    out = relation_deltas(prev, cur)
    assert by_name(out) == {"stockMovements": (1, 2, 0), "stockMovements_pkey": (0, 2, 0)}
    d = out.deltas[0]
    assert (d.kind, d.dbname, d.schemaname, d.relname, d.seq_tup_read) == ("table", "shop", "inv", "stockMovements",
                                                                            1000)


def test_relations_discarded_at_a_start_after_a_crash_count_from_then() -> None:
    prev = dbf(0, {T: rel(300, 500, 70)}, discarded_at=START)
    # an immediate restart at minute 2: the statistics start over (more scans since then than before would hide it)
    cur = dbf(5, {T: rel(400, 2, 1)}, started_at=T0 + timedelta(minutes=2), discarded_at=T0 + timedelta(minutes=2),
              xacts=20)
    out = relation_deltas(prev, cur)
    assert out.reset and by_name(out) == {"stockMovements": (400, 2, 1)}
    assert "discarded" in out.notes[0]


def test_pg_stat_reset_counts_from_the_reset_a_single_table_reset_counts_from_its_own() -> None:
    prev = dbf(0, {T: rel(300, 500, 70), IX: rel(idx=500, index="ix")}, xacts=5000)
    whole = dbf(5, {T: rel(310, 2), IX: rel(idx=2, index="ix")}, reset_at=T0 + timedelta(minutes=1), xacts=30)
    out = relation_deltas(prev, whole)
    assert out.reset and by_name(out) == {"stockMovements": (310, 2, 0), "ix": (0, 2, 0)}
    # pg_stat_reset_single_table_counters moves the database's stats_reset, not its transactions
    single = dbf(5, {T: rel(2, 1, other=0), IX: rel(idx=520, index="ix")}, reset_at=T0 + timedelta(minutes=1),
                 xacts=5100)
    out = relation_deltas(prev, replace(single))
    assert not out.reset and by_name(out) == {"stockMovements": (2, 1, 0), "ix": (0, 20, 0)}
    assert "pg_stat_reset_single_table_counters" in out.notes[0]


def test_a_reset_table_is_told_by_a_counter_not_kept_as_a_delta() -> None:
    # seq_scan and idx_scan grew past their old values after the reset, but the vacuum/analyze counts fell
    prev = dbf(0, {T: rel(3, 4, other=50)})
    cur = dbf(5, {T: rel(9, 8, other=1)})
    assert by_name(relation_deltas(prev, cur)) == {"stockMovements": (9, 8, 0)}


def test_a_relation_created_in_the_window_is_new_and_unmoved_ones_are_left_out() -> None:
    prev = dbf(0, {T: rel(3)})
    cur = dbf(5, {T: rel(3), IX: rel(idx=0, index="new_ix")})
    out = relation_deltas(prev, cur)
    assert out.deltas == [] and out.created == frozenset({IX})
    assert relation_deltas(None, cur).counted is False


def test_never_negative() -> None:
    prev = fam(0, {A: st(10, 100.0, rows=5)})
    cur = fam(5, {A: StatEntry("shop", "app", 12, 99.0, 4, 0, 0, 0, 0, 0, 1.0, 9.0)})  # went down: re-created
    d = statement_deltas(prev, cur).deltas[0]
    assert (d.calls, d.total_ms, d.rows) == (12, 99.0, 4)
    assert all(v >= 0 for v in (d.shared_hit, d.shared_read, d.temp_read, d.temp_written, d.wal_bytes))


def test_only_whole_hours_and_days_past_their_age_are_merged() -> None:
    from zoneinfo import ZoneInfo

    from opsd.core.queries.tiers import FINE, HOURLY, Taken, buckets

    tz = ZoneInfo("America/New_York")
    now = datetime(2026, 11, 20, 17, 7, tzinfo=UTC)

    def at(delta: timedelta, *minutes: int) -> list[Taken]:
        base = now - delta
        return [Taken(i + int(base.timestamp()), "pg1", base + timedelta(minutes=m)) for i, m in enumerate(minutes)]

    straddling = at(FINE, -10, -5)  # the hour that holds the edge is not whole yet: left alone
    old_hour = at(FINE + timedelta(hours=2), 0, 5, 10)
    other_node = [replace(t, node="pg2") for t in old_hour[:2]]
    lone = at(FINE + timedelta(hours=5), 0)  # one snapshot in its hour: nothing to merge
    old_day = at(HOURLY + timedelta(days=3), 0, 60, 120)
    groups = buckets([*straddling, *old_hour, *other_node, *lone, *old_day], now, tz)
    assert [[t.id for t in g] for g in groups] == [[t.id for t in old_day], [t.id for t in old_hour],
                                                   [t.id for t in other_node]]
