"""The duration log parser on real PostgreSQL 15 lines (tests/data/durationlog: jsonlog and csvlog captured with
log_min_duration_statement=100, pg_stat_statements preloaded; simple and extended protocol, prepared statements,
SQL EXECUTE, DO, functions, utility statements, log_statement=all, a slow Bind, a newline and quotes in a
statement)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from opsd.core.queries.logline import (
    LogFormat,
    SlowExec,
    complete_records,
    duration_of,
    parse_csv,
    parse_json,
    parse_record,
    parse_time,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "durationlog"
LITERALS = ("example.com", "alice", "bob", "carol", "dave", "erin", "frank", "gina")


def _parsed(fmt: LogFormat) -> list[SlowExec]:
    data = (DATA / ("pg15.json" if fmt == "jsonlog" else "pg15.csv")).read_bytes()
    records, used = complete_records(data, fmt)
    assert used == len(data)
    return [e for r in records if (e := parse_record(fmt, r.decode(), None)) is not None]


@pytest.mark.parametrize("fmt", ["jsonlog", "csvlog"])
def test_both_formats_read_the_same_executions(fmt: LogFormat) -> None:
    execs = _parsed(fmt)
    # 24 duration lines; the slow Bind is not an execution (its Execute is)
    assert len(execs) == 23
    assert execs == _parsed("jsonlog")
    first = execs[0]
    assert first == SlowExec(at=datetime(2026, 12, 8, 0, 17, 56, 50000, UTC), queryid=-8514118259248513686,
                             dbname="postgres", rolname="postgres", application="psql", duration_ms=4535.395)
    ids = [e.queryid for e in execs]
    assert ids.count(397170035451349686) == 4  # pgbench -M extended and -M prepared: Execute lines
    assert ids.count(4886029646263231914) == 4  # incl. a bare "duration:" (log_statement=all) and a newline
    assert 1596314277083284475 not in ids  # the Bind
    assert -2297681446945592710 in ids  # its neighbour's Execute (psycopg: no application_name key)
    assert {e.rolname for e in execs} == {"postgres", "reporting"}
    assert 'app, "x"' in {e.application for e in execs}


@pytest.mark.parametrize("fmt", ["jsonlog", "csvlog"])
def test_no_literal_survives_parsing(fmt: LogFormat) -> None:
    text = repr(_parsed(fmt))
    assert not [w for w in LITERALS if w in text]


def test_which_durations_are_executions() -> None:
    assert duration_of("duration: 101.556 ms") == 101.556
    assert duration_of("duration: 110.2 ms  statement: select 1") == 110.2
    assert duration_of("duration: 110.284 ms  execute <unnamed>: select $1") == 110.284
    assert duration_of("duration: 111.2 ms  execute P_0: select $1") == 111.2
    assert duration_of("duration: 5.0 ms  execute fetch from S_1/C_2: select 1") is None
    assert duration_of("duration: 122.8 ms  bind <unnamed>: select $1") is None
    assert duration_of("duration: 122.8 ms  parse S_1: select $1") is None
    assert duration_of('duration: 1.0 ms  fastpath function call: "lo_open" (OID 952)') is None
    assert duration_of("statement: select 1") is None
    assert duration_of("checkpoint complete: wrote 3 buffers") is None


def test_times_in_the_log_timezone() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert parse_time("2026-12-08 01:17:56.050 CET", paris) == datetime(2026, 12, 8, 0, 17, 56, 50000, UTC)
    # the hour that happens twice: the abbreviation picks it
    assert parse_time("2026-10-25 02:30:00.000 CEST", paris) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert parse_time("2026-10-25 02:30:00.000 CET", paris) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    plus3 = parse_time("2026-12-08 03:00:00.000 +03", None)
    assert plus3 is not None and plus3.utcoffset() == timedelta(hours=3)
    minus = parse_time("2026-12-08 03:00:00 -0330", None)
    assert minus is not None and minus.utcoffset() == -timedelta(hours=3, minutes=30)
    assert parse_time("2026-12-08 03:00:00 CET", None) is None  # an abbreviation and no zone: unknown
    assert parse_time("garbage", paris) is None


def test_a_partial_record_is_left_for_the_next_read() -> None:
    data = (DATA / "pg15.csv").read_bytes()
    at = data.index(b"frank") + 3  # inside a quoted statement that spans two physical lines
    records, used = complete_records(data[:at], "csvlog")
    assert data[used:at].startswith(b"2026-12-08 00:19:35.735 UTC,")  # the record cut short is not consumed
    assert all(r.count(b'"') % 2 == 0 for r in records)
    nl = data.rindex(b"\n", 0, at)  # the record's first physical line, inside its quoted statement
    assert complete_records(data[:nl + 1], "csvlog")[1] == used
    jdata = (DATA / "pg15.json").read_bytes()
    records, used = complete_records(jdata[:-10], "jsonlog")
    assert len(records) == jdata.count(b"\n") - 1 and jdata[used:].count(b"\n") == 1


def test_damaged_and_foreign_records_are_ignored() -> None:
    assert parse_json('{"message":"duration: 1 ms", broken') is None
    assert parse_json('{"error_severity":"ERROR","message":"duration: 150 ms  statement: x"}') is None
    assert parse_csv('2026-12-08 00:00:00 UTC,"u","d",1,,,,,,,,LOG,00000,"duration: 150 ms"') is None  # 14 cols
    row = parse_json('{"timestamp":"x","error_severity":"LOG","message":"duration: 150.5 ms","query_id":"junk"}')
    assert row == SlowExec(at=None, queryid=0, dbname="", rolname="", application="", duration_ms=150.5)
