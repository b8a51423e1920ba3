"""Targeted recovery without processes: pg_waldump's records as events, a table's history through truncation,
VACUUM FULL, subtransactions and rollbacks, dropped tables, the segments a range needs, restore points, and the
plan and argv of name and --before-xid targets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opsd.actions.restore.plan import DestFacts, Request, make_plan
from opsd.actions.restore.window import compute_window
from opsd.actions.wal.points import check_name, merge
from opsd.actions.wal.scan import chain, span
from opsd.adapters import pgbackrest as pb
from opsd.adapters.walscan import Parser, _chunks, _judge_end, rel_node
from opsd.core.records.targeted import RestorePoint
from opsd.core.wal import ArchivedSegment, Segment, Switch, parse_segment
from opsd.core.walfind import End, Event, Point, Table, collect, end_of, table_history
from opsd.db.tablecopy import QName, qualified
from opsd.errors import RepositoryError, UsageError

DATA = Path(__file__).resolve().parent.parent / "data" / "waldump_targeted.txt"
# the live catalog when the capture ended: table mv has OID 16421 and its heap is now file node 16432
MV = Table("public.mv", 16421, frozenset({(1663, 5, 16432)}))


def _events() -> list[Event]:
    parser = Parser()
    out = []
    for line in DATA.read_text().splitlines():
        got = parser.feed(line)
        if got is not None and got[1] is not None:
            out.append(got[1])
    return out


def test_a_tables_history_through_rollback_subtransactions_truncate_and_vacuum_full() -> None:
    got = {t.xid: t for t in table_history(collect(_events()), MV)}
    assert sorted(got) == [752, 753, 757, 758, 759, 760]  # 756 rolled back: not listed
    assert (got[752].inserts, got[752].deletes) == (10, 0)
    # a savepoint released (754) counts; one rolled back to (755, its insert) does not
    assert (got[753].inserts, got[753].updates, got[753].deletes, got[753].subxacts) == (0, 1, 3, (754,))
    assert got[757].truncated and got[757].rewritten and got[757].rows == 0  # TRUNCATE: a new, empty file node
    assert got[758].inserts == 5
    assert got[759].rewritten and not got[759].truncated  # VACUUM FULL: the new file node got the rows' pages
    assert got[760].deletes == 1 and not any(t.dropped for t in got.values())


def test_without_the_rewrite_chain_the_old_file_nodes_changes_are_not_attributed() -> None:
    """A bug that kept only the live file node would lose every change before the VACUUM FULL."""
    got = table_history(collect(_events()), MV)
    assert sum(t.inserts for t in got) == 15 and sum(t.deletes for t in got) == 4


def test_other_live_tables_are_not_counted_and_the_history_is_the_same() -> None:
    """The scan keeps only the table's file nodes and those no live relation has: nothing of MV's is lost."""
    live_others = {16438}  # pretend 'gone' were a live table: its rows are skipped as they stream by
    seen = collect(_events(), keep=lambda n: n[2] not in live_others)
    assert [(t.xid, t.rows) for t in table_history(seen, MV)] == [
        (t.xid, t.rows) for t in table_history(collect(_events()), MV)]
    assert all((1663, 5, 16438) not in nodes for nodes in seen.changes.values())


def test_small_transactions_on_the_live_file_are_dropped_at_commit_but_not_the_rest() -> None:
    """--min-rows applied while streaming: a bug that pruned on rows alone would lose the rewrite chain."""
    seen = collect(_events(), small=lambda e, rows: rows < 2, mine=MV.nodes)
    got = {t.xid: t for t in table_history(seen, MV)}
    assert 760 not in got  # one delete on the live file: pruned
    assert got[752].inserts == 10 and got[757].truncated and got[759].rewritten  # older files, rewrites: kept


def test_commit_abort_and_restore_point_records() -> None:
    ev = _events()
    end = end_of(ev, 754)
    assert end is not None and end.xid == 753 and end.committed  # a subtransaction ends with its parent
    aborted = end_of(ev, 756)
    assert aborted is not None and not aborted.committed
    [p] = [e for e in ev if isinstance(e, Point)]
    assert p.name == "rp-test" and p.lsn == "0/402CF28" and p.after is not None
    assert end_of(ev, 99999) is None


def test_lsns_are_printed_without_leading_zeros_and_times_are_utc() -> None:
    end = next(e for e in _events() if isinstance(e, End))
    assert end.lsn == "0/40231A0" and end.time.tzinfo is not None
    with pytest.raises(ValueError, match=r"TZ=UTC"):
        Parser().feed("rmgr: Transaction len (rec/tot):     34/    34, tx:        752, lsn: 0/04023C38, prev "
                      "0/04023BF8, desc: COMMIT 2026-12-01 05:03:24.665031 CET")


@pytest.mark.parametrize(("path", "node"), [
    ("base/5/16384", (1663, 5, 16384)), ("pg_tblspc/16385/PG_15_202209061/5/16390", (16385, 5, 16390)),
    ("global/1262", (1664, 0, 1262)), ("nonsense", None)])
def test_file_node_paths(path: str, node: tuple[int, int, int] | None) -> None:
    assert rel_node(path) == node


def _segs(*specs: tuple[int, int]) -> list[Segment]:
    return [Segment(tl, n) for tl, n in specs]


def test_chunks_overlap_by_one_segment_and_split_at_timelines_and_gaps() -> None:
    path = _segs((1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 7), (2, 8))
    got = [[[s.segno for s in c] for c in part] for part in _chunks(path, 3)]
    assert got == [[[1, 2, 3], [3, 4, 5]], [[7]], [[8]]]


def test_pg_waldump_stopping_before_the_chunks_last_segment_is_an_error() -> None:
    _judge_end(0, "", Segment(1, 5))
    _judge_end(1, 'pg_waldump: error: could not find file "000000010000000000000006"', Segment(1, 5))
    with pytest.raises(RepositoryError, match="cannot decode"):
        _judge_end(1, "pg_waldump: error: error in WAL record at 0/3000100: invalid magic number", Segment(1, 5))


T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _arch(tl: int, segno: int, minute: int) -> ArchivedSegment:
    return ArchivedSegment(Segment(tl, segno), 1, T0 + timedelta(minutes=minute), "15-1")


def test_chain_follows_the_newest_timelines_history() -> None:
    switches = (Switch(2, 1, "0/5000060", "no recovery target"), Switch(3, 1, "0/7000000", "x"))
    assert chain(switches, 2) == {2: (5, None), 1: (0, 5)}


def test_span_reads_from_the_first_segment_archived_in_the_range_along_the_timeline() -> None:
    segs = [_arch(1, n, n) for n in range(1, 8)] + [_arch(2, 5, 10), _arch(2, 6, 11)]
    sw = (Switch(2, 1, "0/5000060", "x"),)
    sp = span(segs, sw, 2, T0 + timedelta(minutes=3), None)
    # a lead-in segment (2), then timeline 1 up to the switch, then timeline 2 from the switch segment on
    assert [(s.timeline, s.segno) for s in sp.segments] == [(1, 2), (1, 3), (1, 4), (2, 5), (2, 6)]
    ended = span(segs, sw, 2, T0 + timedelta(minutes=3), T0 + timedelta(minutes=4))
    assert [s.segno for s in ended.segments] == [2, 3, 4]
    assert span(segs, sw, 2, T0 + timedelta(hours=1), None).segments == []
    # archive times are whole seconds: a segment stamped in the second of 'since' may hold what came after it
    late = span(segs, sw, 2, T0 + timedelta(minutes=11, microseconds=400000), None)
    assert [(s.timeline, s.segno) for s in late.segments] == [(2, 5), (2, 6)]


def _point(name: str, lsn: str, source: str = "history") -> RestorePoint:
    return RestorePoint(name=name, lsn=lsn, timeline=1, source=source)


def test_points_from_history_and_wal_are_merged_and_pgbackrests_own_left_out() -> None:
    got = merge([_point("before-x", "0/406FFE8")],
                [_point("before-x", "0/406FF80", "wal"), _point("pgBackRest Archive Check", "0/1000000", "wal"),
                 _point("flyway-v42", "0/5000100", "wal")])
    assert [(p.name, p.source) for p in got] == [("before-x", "both"), ("flyway-v42", "wal")]


@pytest.mark.parametrize("bad", ["", "x" * 64, "tab\there"])
def test_bad_point_names(bad: str) -> None:
    with pytest.raises(UsageError):
        check_name(bad)


@pytest.mark.parametrize(("text", "name"), [
    ("public.stock_movements", QName("public", "stock_movements", exact=False)),
    ("Sales.Orders", QName("Sales", "Orders", exact=False)),  # plain form: resolved ignoring case
    ('"Sales"."Order Items"', QName("Sales", "Order Items")), ('Sales."Orders"', QName("sales", "Orders"))])
def test_qualified_table_names(text: str, name: QName) -> None:
    assert qualified(text) == name


@pytest.mark.parametrize("bad", ["orders", "a.b.c", "", ".x"])
def test_unqualified_table_names_are_usage_errors(bad: str) -> None:
    with pytest.raises(UsageError, match=r"SCHEMA\.TABLE"):
        qualified(bad)


def _backup(label: str, lsn_stop: str, wal: str, minute: int) -> pb.BackupInfo:
    return pb.BackupInfo(label=label, type="full", start=T0 + timedelta(minutes=minute - 1),
                         stop=T0 + timedelta(minutes=minute), size=1000, delta=1000, repo_size=1, repo_delta=1,
                         wal_start=wal, wal_stop=wal, lsn_start=None, lsn_stop=lsn_stop, prior=None, reference=(),
                         error=False)


B1 = _backup("B1", "0/2000100", "000000010000000000000002", 1)
B2 = _backup("B2", "0/6000100", "000000010000000000000006", 6)


def _plan(req: Request):  # type: ignore[no-untyped-def]
    info = pb.StanzaInfo("main", 0, "ok", False, (B1, B2), (), ())
    segs = [ArchivedSegment(parse_segment(f"0000000100000000000000{i:02X}"), 1, T0 + timedelta(minutes=i))  # type: ignore[arg-type]
            for i in range(1, 10)]
    w = compute_window(info, segs, lambda n: None)
    return make_plan(req, info, w, DestFacts(False, True, 10**12), [])


def test_a_name_target_uses_the_newest_backup_that_ended_before_the_point() -> None:
    plan = _plan(Request("name", target_value="before-x", stop_lsn="0/5000200", dest=Path("/x"), port=5))
    assert plan.backup is not None and plan.backup.label == "B1" and plan.wal_to == "000000010000000000000005"
    later = _plan(Request("name", target_value="after", stop_lsn="0/8000000", dest=Path("/x"), port=5))
    assert later.backup is not None and later.backup.label == "B2"


def test_a_point_before_every_backup_is_refused() -> None:
    plan = _plan(Request("xid", target_value="700", stop_lsn="0/1000100", exclusive=True, dest=Path("/x"), port=5))
    assert plan.refused and "transaction 700" in plan.refusals()[0]


def test_restore_argv_for_name_and_exclusive_xid_targets() -> None:
    base = pb.Base("pgbackrest", Path("/etc/pgbackrest.conf"), "main")
    argv = pb.restore_cmd(base, pb.RestoreOptions(pg1_path="/d", target_type="name", target="before-x"))
    assert "--type=name" in argv and "--target=before-x" in argv and "--target-exclusive" not in argv
    argv = pb.restore_cmd(base, pb.RestoreOptions(pg1_path="/d", target_type="xid", target="727", exclusive=True))
    assert "--type=xid" in argv and "--target-exclusive" in argv
    with pytest.raises(ValueError, match="exclusive"):
        pb.restore_cmd(base, pb.RestoreOptions(pg1_path="/d", target_type="immediate", exclusive=True))


def test_a_point_is_recoverable_only_with_a_backup_before_it_and_the_wal_up_to_it() -> None:
    from opsd.actions.restore.service import Timelines
    from opsd.actions.wal.points import judge

    info = pb.StanzaInfo("main", 0, "ok", False, (B1,), (), ())
    full = [ArchivedSegment(Segment(1, i), 1, T0 + timedelta(minutes=i), "") for i in range(1, 10)]
    t = Timelines(full, (), {}, None)
    ok = judge(_point("p", "0/5000100"), info, compute_window(info, full, lambda n: None), t)
    assert ok.recoverable and ok.why == "from backup B1"
    holed = [a for a in full if a.segment.segno != 4]  # a segment between the backup and the point is gone
    gap = judge(_point("p", "0/5000100"), info, compute_window(info, holed, lambda n: None), t)
    assert gap.recoverable is False and "missing" in (gap.why or "")
    early = judge(_point("p", "0/1000100"), info, compute_window(info, full, lambda n: None), t)
    assert early.recoverable is False and "no backup" in (early.why or "")  # retention expired it


@pytest.mark.parametrize(("args", "says"), [
    (["--table", "sc.t", "--before-xid", "800", "--into-schema", "u", "--port", "5"], "do not give --port"),
    (["--to-time", "2026-12-01 10:00", "--into-schema", "u", "--target-dir", "/x", "--port", "5"],
     "go with --table"),
    (["--to-name", "p", "--before-xid", "800", "--target-dir", "/x", "--port", "5"], "exactly one target"),
    (["--to-time", "2026-12-01 10:00", "--since", "2026-12-01 09:00", "--target-dir", "/x", "--port", "5"],
     "--since goes with"),
    (["--table", "sc.t", "--table", "other.t", "--before-xid", "800", "--into-schema", "u"], "two tables named"),
    (["--table", "sc.t", "--before-xid", "800"], "--into-schema NAME"),
    (["--table", "orders", "--before-xid", "800", "--into-schema", "u"], "SCHEMA.TABLE"),
    (["--before-xid", "2", "--target-dir", "/x", "--port", "5"], "--before-xid"),
])
def test_restore_usage_errors_name_the_options(tmp_path: Path, capsys, args: list[str], says: str) -> None:  # type: ignore[no-untyped-def]
    from tests.unit.test_jobs_and_cli import _cli

    conf = tmp_path / "opsd.toml"
    conf.write_text(f'[opsd]\nstate_dir = "{tmp_path}"\n')
    code, _out, err = _cli(["--config", str(conf), "restore", *args], capsys)
    assert code == 2 and says in err and "Traceback" not in err


def test_followed_forward_from_a_copy_of_the_start_the_history_is_the_same() -> None:
    """For a table dropped or re-created since: its files at the start of the range come from a recovered copy,
    and each rewrite is followed forward to the new file."""
    at_start = Table("public.mv", 16421, frozenset({(1663, 5, 16421)}))
    forward = table_history(collect(_events()), at_start, forward=True)
    backward = table_history(collect(_events()), MV)
    assert [(t.xid, t.rows, t.truncated, t.rewritten) for t in forward] == [
        (t.xid, t.rows, t.truncated, t.rewritten) for t in backward]


def test_a_dropped_table_followed_from_a_copy_says_dropped() -> None:
    gone = Table("public.gone", 16438, frozenset({(1663, 5, 16438)}))
    [t] = [x for x in table_history(collect(_events()), gone, forward=True) if x.dropped]
    assert t.xid == 763


def test_an_unreadable_point_cache_is_an_empty_one(tmp_path: Path) -> None:
    from opsd.actions.wal.points import _load

    f = tmp_path / "points-15-1.json"
    assert _load(f, 7) == {}
    for bad in ("{", "[]", '{"segments": 3}', '{"other": {}}', '{"version": 2, "system_id": 7, "segments": 3}'):
        f.write_text(bad)
        assert _load(f, 7) == {}
    f.write_text('{"version": 2, "system_id": 7, "segments": {"000000010000000000000004": [["before-x", '
                 '"0/406FF80", null]]}}')
    assert _load(f, 7) == {"000000010000000000000004": [["before-x", "0/406FF80", None]]}


def test_the_next_chunk_never_starts_before_the_segment_kept_for_it(tmp_path: Path) -> None:
    """A chunk whose last segment holds no record of ours: resuming at the last record printed pointed
    pg_waldump at a segment already deleted (it waited 5 s, then failed: 'transaction did not end in the WAL').
    Each task now starts at its first segment's start, whatever the task before printed."""
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from opsd.adapters.runner import Completed
    from opsd.adapters.walparallel import DumpSpec, decode_with
    from opsd.adapters.walscan import plan_tasks

    class Runner:
        def __init__(self) -> None:
            self.starts: list[str] = []

        def run(self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
                on_line: Callable[[str, str], None] | None = None, **_: Any) -> Completed:
            start = argv[argv.index("-s") + 1]
            self.starts.append(start)
            if start == "0/1000000" and on_line is not None:  # a commit in segment 1, nothing in 2 or 3
                on_line("stdout", "rmgr: Transaction len (rec/tot):     34/    34, tx:        735, lsn: 0/01000060, "
                                  "prev 0/01000028, desc: COMMIT 2026-12-01 07:00:00.123456 UTC")
            return Completed(tuple(argv), 0, "", "", 0.01)

    runner = Runner()
    spec = DumpSpec("/bin/pg_waldump", str(tmp_path))
    got = [decode_with(runner, spec, t) for t in plan_tasks(_segs((1, 1), (1, 2), (1, 3), (1, 4), (1, 5)), 3)]
    assert runner.starts == ["0/1000000", "0/3000000"]  # segment 3 (kept), not 0/1000060 in segment 1 (deleted)
    assert [[seg for seg, _e in d.segments] for d in got] == [[1], []]


def test_a_search_that_found_nothing_says_what_it_searched() -> None:
    from opsd.actions.wal.find import Found
    from opsd.actions.wal.scan import Span
    from opsd.report.targeted_console import none_found

    segs = [parse_segment("000000010000000000000003"), parse_segment("000000010000000000000005")]
    t = Table('"Inventory"."StockMovements"', 16390, frozenset({(1663, 5, 16391), (1663, 5, 16400)}))
    found = Found([], Span(segs, None, None, 0), 0.1, t, T0, None)
    said = found.searched()
    assert said.startswith('searched "Inventory"."StockMovements" (OID 16390, file node(s) 1663/5/16391, '
                           "1663/5/16400)")
    assert "to the end of the archive in 2 WAL segment(s) 000000010000000000000003 .. 000000010000000000000005" in said
    assert none_found(t.name, said, 100).startswith('no committed transaction of 100 row(s) or more changed '
                                                    '"Inventory"."StockMovements" in the range: searched')


def test_the_put_back_warns_which_live_triggers_fire() -> None:
    from opsd.actions.targeted.compare import trigger_notes

    [note] = trigger_notes(QName("Inventory", "StockMovements"), ["StockMovements_apply", "audit"])
    assert note.startswith("WARNING: the live table's triggers fire") and '"StockMovements_apply", audit on ' \
        '"Inventory"."StockMovements"' in note
    assert trigger_notes(QName("sc", "t"), []) == []


def test_the_undo_hint_names_the_table_as_the_shell_and_table_read_it_back() -> None:
    from zoneinfo import ZoneInfo

    from opsd.core.records.targeted import WalChange
    from opsd.report.targeted_console import changes

    c = WalChange(table='"Inventory"."StockMovements"', xid=781, commit_time=T0, lsn="0/3000100", timeline=1,
                  inserts=0, updates=0, deletes=206, truncated=False, dropped=False)
    out = changes([c], ZoneInfo("UTC"))
    assert "undo one: opsd restore --table '\"Inventory\".\"StockMovements\"' --before-xid XID" in out
    plain = changes([c.model_copy(update={"table": "sc.stock_movements"})], ZoneInfo("UTC"))
    assert "--table sc.stock_movements --before-xid" in plain
