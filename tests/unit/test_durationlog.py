"""Reading the duration log directory from a stored position: continuing the file, later files in order, a
record still being written, rotation away, truncation, an unreadable file, the bound a call reads."""

from __future__ import annotations

import os
from pathlib import Path

from opsd.adapters.durationlog import read_since
from opsd.core.queries.logline import LogPosition

DATA = Path(__file__).resolve().parent.parent / "data" / "durationlog"
REAL = (DATA / "pg15.json").read_text().splitlines(keepends=True)


def _line(qid: int, ms: float = 150.0, db: str = "shop", user: str = "app") -> str:
    return ('{"timestamp":"2026-12-08 00:18:07.881 UTC","user":"%s","dbname":"%s","error_severity":"LOG",'
            '"message":"duration: %.3f ms  statement: select \'x@example.com\'","query_id":%d}\n' % (user, db, ms, qid))


def _write(p: Path, text: str, mtime: int) -> None:
    with open(p, "a") as fh:
        fh.write(text)
    os.utime(p, ns=(mtime, mtime))


def test_first_read_starts_at_the_end_then_continues(tmp_path: Path) -> None:
    a = tmp_path / "postgresql-1.json"
    _write(a, "".join(REAL), 1_000)
    (tmp_path / "postgresql-1.csv").write_text("not read")
    first = read_since(tmp_path, "jsonlog", None)
    assert first.execs == [] and first.problem is None
    assert first.position == LogPosition(str(a), a.stat().st_ino, a.stat().st_size)
    _write(a, _line(1) + _line(2) + _line(3)[:40], 2_000)  # the third is being written
    second = read_since(tmp_path, "jsonlog", first.position)
    assert [e.queryid for e in second.execs] == [1, 2] and second.problem is None
    _write(a, _line(3)[40:], 3_000)
    third = read_since(tmp_path, "jsonlog", second.position)
    assert [e.queryid for e in third.execs] == [3]
    assert read_since(tmp_path, "jsonlog", third.position).execs == []


def test_later_files_in_the_order_written(tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"postgresql-{n}.json" for n in ("a", "b", "c"))
    old = tmp_path / "postgresql-0.json"
    _write(old, _line(99), 500)  # older than the position: never read again
    _write(a, _line(1), 1_000)
    pos = read_since(tmp_path, "jsonlog", None).position
    _write(a, _line(2), 2_000)
    _write(c, _line(3), 3_000)  # rotated to c, then to b: the order is when they were written, not the name
    _write(b, _line(4) + _line(5), 4_000)
    got = read_since(tmp_path, "jsonlog", pos)
    assert [e.queryid for e in got.execs] == [2, 3, 4, 5] and got.problem is None
    assert got.files == [str(a), str(c), str(b)]
    assert got.position == LogPosition(str(b), b.stat().st_ino, b.stat().st_size)


def test_csv_records_across_physical_lines(tmp_path: Path) -> None:
    src = (DATA / "pg15.csv").read_bytes()
    cut = src.index(b"frank")  # inside the statement spanning two lines
    f = tmp_path / "pg.csv"
    f.write_bytes(src[:cut])
    pos = LogPosition(str(f), f.stat().st_ino, 0)
    one = read_since(tmp_path, "csvlog", pos)
    with open(f, "ab") as fh:
        fh.write(src[cut:])
    two = read_since(tmp_path, "csvlog", one.position)
    assert len(one.execs) + len(two.execs) == 23 and two.execs[0].queryid == 4886029646263231914
    assert two.position is not None and two.position.offset == len(src)


def test_rotated_away_truncated_or_replaced_is_a_problem(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _write(a, _line(1) * 3, 1_000)
    pos = LogPosition(str(a), a.stat().st_ino, a.stat().st_size)
    _write(b, _line(2), 2_000)
    a.unlink()
    gone = read_since(tmp_path, "jsonlog", pos)
    assert gone.problem == f"{a} was rotated away or removed before it was read to the end"
    assert gone.execs == [] and gone.position == LogPosition(str(b), b.stat().st_ino, b.stat().st_size)
    b.write_text(_line(3))  # truncated in place, shorter than the position
    cut = read_since(tmp_path, "jsonlog", LogPosition(str(b), b.stat().st_ino, 10_000))
    assert cut.problem is not None and "truncated" in cut.problem
    other = read_since(tmp_path, "jsonlog", LogPosition(str(b), b.stat().st_ino + 1, 0))
    assert other.problem is not None and "replaced" in other.problem


def test_unreadable_file_or_directory(tmp_path: Path) -> None:
    a = tmp_path / "a.json"
    _write(a, _line(1), 1_000)
    pos = LogPosition(str(a), a.stat().st_ino, 0)
    (tmp_path / "b.json").mkdir()  # cannot be opened as a file, whoever we are
    os.utime(tmp_path / "b.json", ns=(2_000, 2_000))
    got = read_since(tmp_path, "jsonlog", pos)
    assert got.problem is not None and got.problem.startswith(f"cannot read {tmp_path / 'b.json'}: ")
    assert got.execs == []
    missing = read_since(tmp_path / "nope", "jsonlog", pos)
    assert missing.problem == f"cannot list the log directory {tmp_path / 'nope'}: No such file or directory"
    assert missing.position is None


def test_bounded_read_says_how_far_behind(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _write(a, _line(1) * 4000, 1_000)
    _write(b, _line(2) * 4000, 2_000)
    pos, seen, calls = LogPosition(str(a), a.stat().st_ino, 0), 0, 0
    while True:
        got = read_since(tmp_path, "jsonlog", pos, limit=200_000)
        calls += 1
        seen += len(got.execs)
        assert got.position is not None
        pos = got.position
        if got.problem is None:
            break
        assert "MiB behind" in got.problem
    assert seen == 8000 and calls > 3
    assert pos == LogPosition(str(b), b.stat().st_ino, b.stat().st_size)


def test_a_reused_file_name_resumes_where_it_was_read_to(tmp_path: Path) -> None:
    """log_filename postgresql-%a.json, log_truncate_on_rotation off: a week later PostgreSQL appends to Monday's
    file again; its old lines were read (or were there before the first read) and are not counted twice."""
    mon, tue = tmp_path / "postgresql-Mon.json", tmp_path / "postgresql-Tue.json"
    _write(mon, _line(1), 1_000)
    _write(tue, _line(2), 2_000)
    first = read_since(tmp_path, "jsonlog", None)
    _write(tue, _line(3), 3_000)
    second = read_since(tmp_path, "jsonlog", first.position, seen=first.seen)
    assert [e.queryid for e in second.execs] == [3]
    _write(mon, _line(4), 4_000)  # the name comes round again
    third = read_since(tmp_path, "jsonlog", second.position, seen=second.seen)
    assert [e.queryid for e in third.execs] == [4] and third.problem is None
    assert third.seen[(str(mon), mon.stat().st_ino)] == mon.stat().st_size
    _write(tue, _line(5), 5_000)
    assert [e.queryid for e in read_since(tmp_path, "jsonlog", third.position, seen=third.seen).execs] == [5]


def test_a_read_cut_short_says_so(tmp_path: Path) -> None:
    a = tmp_path / "a.json"
    _write(a, _line(1), 1_000)
    first = read_since(tmp_path, "jsonlog", None)
    _write(a, _line(2) * 4000, 2_000)
    got = read_since(tmp_path, "jsonlog", first.position, limit=100_000, seen=first.seen)
    assert got.behind and got.problem is not None
    assert not read_since(tmp_path, "jsonlog", got.position, seen=got.seen).behind
