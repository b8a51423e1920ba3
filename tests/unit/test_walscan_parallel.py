"""The archived WAL decoded in parallel tasks and merged back (no processes: a fake pg_waldump over a model of
the WAL, tasks run in threads): every record once, in WAL order, whatever order the tasks finish in; records that
cross a task's boundary read whole; restore points' time carried over from the task before; a task that fails
or a segment the repository lacks ends the scan after everything before it was fed."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from opsd.adapters.runner import Completed
from opsd.adapters.walparallel import DumpSpec, Task, WalScanner, decode_with
from opsd.adapters.walscan import Parser, Progress, plan_tasks
from opsd.core.wal import SEGMENT_BYTES, Segment, lsn_to_int
from opsd.core.walfind import End, Event, Keep, Point
from opsd.errors import RepositoryError

SEG = SEGMENT_BYTES
T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def _lsn(n: int) -> str:
    return f"{n >> 32:X}/{n & 0xFFFFFFFF:08X}"


def _wal(segments: int) -> list[tuple[int, int, str]]:
    """(start, length, pg_waldump line) of each record: a delete and a commit per transaction, records of 0.3 to
    0.9 segment (most cross a boundary), a restore point first in segments 2 and 5 (5: the first record of a task
    of 3 segments, before any end in that task)."""
    out: list[tuple[int, int, str]] = []
    at, xid = SEG + 40, 1000

    def add(size: int, rmgr: str, tx: int, desc: str) -> None:
        nonlocal at
        if rmgr != "XLOG" and at // SEG in (2, 5) and not any("RESTORE_POINT" in r[2] and r[0] // SEG == at // SEG
                                                           for r in out):
            add(40, "XLOG", 0, f"RESTORE_POINT rp-{at // SEG}")
        out.append((at, size, f"rmgr: {rmgr:<11} len (rec/tot):     54/    54, tx: {tx:>10}, lsn: {_lsn(at)}, "
                              f"prev 0/0, desc: {desc}"))
        at += size

    while at < (segments + 1) * SEG:
        add(SEG * (3 + xid % 7) // 10, "Heap", xid, f"DELETE off 5 flags 0x00, blkref #0: rel 1663/5/{16384 + xid % 2} "
                                                   "blk 0")
        add(40, "Transaction", xid, f"COMMIT {(T0 + timedelta(seconds=xid)).strftime('%Y-%m-%d %H:%M:%S.%f')} UTC")
        xid += 1
    return [r for r in out if r[0] + r[1] <= (segments + 1) * SEG]


class FakeWaldump:
    """pg_waldump over the model: from the first record that starts at or after -s (a segment's start skips the
    end of a record running on into it), each record that ends by -e, as long as its segments are in -p."""

    def __init__(self, wal: list[tuple[int, int, str]], *, fail_in: int | None = None,
                 slow: Callable[[int], float] = lambda _s: 0.0) -> None:
        self.wal, self.fail_in, self.slow = wal, fail_in, slow

    def run(self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
            on_line: Callable[[str, str], None] | None = None, **_: Any) -> Completed:
        assert on_line is not None and env == {"TZ": "UTC"}
        where = Path(argv[argv.index("-p") + 1])
        s, e = lsn_to_int(argv[argv.index("-s") + 1]), lsn_to_int(argv[argv.index("-e") + 1])
        time.sleep(self.slow(s // SEG))
        for start, size, line in self.wal:
            if start < s:
                continue
            if start + size > e:
                break
            if self.fail_in is not None and start // SEG == self.fail_in:
                return Completed(tuple(argv), 1, "", f"pg_waldump: error: error in WAL record at {_lsn(start)}: "
                                                     "invalid record length", 0.0)
            for segno in range(start // SEG, (start + size - 1) // SEG + 1):
                assert (where / Segment(1, segno).name).exists(), f"segment {segno} deleted while needed"
            on_line("stdout", line)
        return Completed(tuple(argv), 0, "", "", 0.0)


class Repo:
    def __init__(self, missing: frozenset[int] = frozenset()) -> None:
        self.missing, self.most = missing, 0

    def archive_get(self, name: str, dest: str) -> bool:
        if int(name[16:], 16) in self.missing:
            return False
        Path(dest).write_bytes(b"")
        self.most = max(self.most, len(list(Path(dest).parent.iterdir())))
        return True


def _reference(wal: list[tuple[int, int, str]]) -> list[Event]:
    """One pg_waldump over the whole range, parsed in one process: what the scan must reproduce exactly."""
    p = Parser()
    return [got[1] for _s, _n, line in wal if (got := p.feed(line)) is not None and got[1] is not None]


def _scan(tmp: Path, wal: list[tuple[int, int, str]], segments: int, *, repo: Repo | None = None,
          enough: Callable[[], bool] | None = None, **fake: Any) -> tuple[list[Event], list[Progress]]:
    sc = WalScanner(repo or Repo(), Path("/usr/lib/postgresql/15/bin"), tmp, workers=3, procs=2, chunk=3,
                    executor=ThreadPoolExecutor, decoder=partial(decode_with, FakeWaldump(wal, **fake)))
    got: list[Event] = []
    progress: list[Progress] = []
    try:
        sc.scan([Segment(1, n) for n in range(1, segments + 1)], got.append, progress.append, enough)
    finally:
        assert list(tmp.iterdir()) == []
        got.append(End(0, "done", T0, True))  # a marker: what was fed before an error is checked by the caller
    return got[:-1], progress


def test_every_record_once_in_wal_order_when_the_tasks_finish_out_of_order(tmp_path: Path) -> None:
    """Later tasks finish first (the first ones are slow): a merge that fed results as they came would reorder;
    one that fed the record crossing a boundary from both tasks would duplicate it."""
    wal = _wal(12)
    got, progress = _scan(tmp_path, wal, 12, slow=lambda segno: 0.05 if segno < 4 else 0.0)
    assert got == _reference(wal) and len(got) > 40
    assert [p.segment for p in progress] == sorted({Segment(1, s // SEG).name for s, _n, _l in wal})
    assert [p.done for p in progress] == list(range(1, len(progress) + 1)) and progress[-1].total == 12


def test_tasks_overlap_by_one_segment_and_keep_the_records_that_start_before_the_next_task() -> None:
    tasks = plan_tasks([Segment(1, n) for n in (1, 2, 3, 4, 5, 6, 9)], 3)
    assert [(t.first, t.last, t.stop) for t in tasks] == [(1, 3, 3 * SEG), (3, 5, 5 * SEG), (5, 6, None),
                                                          (9, 9, None)]


def test_a_restore_point_takes_the_time_of_the_last_end_before_it_from_an_earlier_task(tmp_path: Path) -> None:
    wal = _wal(12)
    points = [e for e in _scan(tmp_path, wal, 12)[0] if isinstance(e, Point)]
    assert points == [e for e in _reference(wal) if isinstance(e, Point)] and len(points) == 2
    assert all(p.after is not None for p in points)
    assert [p.name for p in points] == ["rp-2", "rp-5"]  # rp-5: no end before it in its own task


def test_a_task_that_fails_ends_the_scan_after_everything_before_it(tmp_path: Path) -> None:
    wal = _wal(12)
    got: list[Event] = []
    sc = WalScanner(Repo(), Path("/bin"), tmp_path, procs=2, chunk=3, executor=ThreadPoolExecutor,
                    decoder=partial(decode_with, FakeWaldump(wal, fail_in=6)))
    with pytest.raises(RepositoryError, match="cannot decode the archived WAL"):
        sc.scan([Segment(1, n) for n in range(1, 13)], got.append)
    before = _reference(wal[:next(i for i, r in enumerate(wal) if r[0] // SEG == 6)])
    assert got == before and len(before) > 10  # in order, none after the failure, none twice
    assert list(tmp_path.iterdir()) == []


def test_a_segment_missing_from_the_repository_after_what_was_read(tmp_path: Path) -> None:
    wal = _wal(12)
    got: list[Event] = []
    progress: list[Progress] = []
    sc = WalScanner(Repo(frozenset({8})), Path("/bin"), tmp_path, procs=2, chunk=3, executor=ThreadPoolExecutor,
                    decoder=partial(decode_with, FakeWaldump(wal)))
    with pytest.raises(RepositoryError, match="WAL segment 000000010000000000000008 is not in the repository"):
        sc.scan([Segment(1, n) for n in range(1, 13)], got.append, progress.append)
    whole = [r for r in wal if r[0] + r[1] <= 8 * SEG]  # every record that ends before the missing segment
    assert got == _reference(whole) and progress[-1].segment == Segment(1, 7).name
    assert list(tmp_path.iterdir()) == []


def test_enough_stops_after_the_task_where_it_turned_true_and_memory_stays_bounded(tmp_path: Path) -> None:
    wal = _wal(30)
    repo = Repo()
    got: list[Event] = []
    sc = WalScanner(repo, Path("/bin"), tmp_path, workers=3, procs=2, chunk=3, executor=ThreadPoolExecutor,
                    decoder=partial(decode_with, FakeWaldump(wal)))
    sc.scan([Segment(1, n) for n in range(1, 31)], got.append,
            enough=lambda: any(isinstance(e, End) and e.xid == 1005 for e in got))
    at = next(r[0] for r in wal if "tx:       1005" in r[2] and "COMMIT" in r[2])
    task = next(t for t in plan_tasks([Segment(1, n) for n in range(1, 31)], 3) if t.stop and at < t.stop)
    assert got == _reference([r for r in wal if r[0] < (task.stop or 0)])  # up to the end of its task, no further
    assert repo.most <= 2 * 2 * 3  # at most 2 x processes tasks of 3 segments on disk at once
    assert list(tmp_path.iterdir()) == []


def test_the_keep_filter_is_plain_data_and_filters_in_the_task(tmp_path: Path) -> None:
    import pickle

    keep = Keep(frozenset({(1663, 5, 16384)}), 5, frozenset({16385}))
    assert pickle.loads(pickle.dumps(keep)) == keep
    assert keep((1663, 5, 16384)) and not keep((1663, 5, 16385)) and keep((1663, 5, 20000))
    assert not keep((1663, 6, 20000)) and Keep(database=5)((1663, 5, 16385))
    wal = _wal(3)
    for n in range(1, 4):
        (tmp_path / Segment(1, n).name).write_bytes(b"")
    d = decode_with(FakeWaldump(wal), DumpSpec("/bin/pg_waldump", str(tmp_path), keep=Keep(database=7)),
                    Task(1, 1, 3))
    assert d.error is None and all(p[0] != 0 for _s, events in d.segments for p in events)  # no Change kept


def test_the_time_before_a_restore_point_is_carried_over_tasks_without_an_end() -> None:
    from opsd.adapters.walparallel import Decoded, Merge, pack

    got: list[Event] = []
    merge = Merge(got.append, 9)
    end = End(7, "0/1000100", T0, True)
    merge.feed(Task(1, 1, 3, 3 * SEG), Decoded([(1, [pack(end)])], T0))
    merge.feed(Task(1, 3, 5, 5 * SEG), Decoded([(3, [])], None))  # no transaction ended in this task
    merge.feed(Task(1, 5, 7), Decoded([(5, [pack(Point("rp", "0/5000028"))])], None))
    assert got == [end, Point("rp", "0/5000028", T0)]
