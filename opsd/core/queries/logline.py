"""PostgreSQL's duration log, one record at a time (pure): jsonlog or csvlog (PostgreSQL 14+: both carry
``query_id``) cut into records, and the records that are a statement's duration (``log_min_duration_statement``)
read as :class:`SlowExec`. The statement text (and the parameters in ``detail``) is never kept: a literal in a
slow statement may be a customer's e-mail. docs/queries.md, "How executions over a threshold are counted".

Which ``duration:`` messages count as one execution (PostgreSQL 15, src/backend/tcop/postgres.c):

* ``duration: N ms  statement: ...``: a simple-protocol query string (several statements in one string are one
  line, with the ``query_id`` of the last one);
* ``duration: N ms  execute <name>: ...``: an extended-protocol Execute (pgbench -M extended/prepared, psycopg,
  JDBC);
* ``duration: N ms`` alone: the statement was logged before it ran (``log_statement``), or ``log_duration``.
  Over ``log_min_duration_statement`` only a statement or an Execute logs it alone: a Parse or Bind that slow
  always names itself.

Never counted: ``parse`` and ``bind`` (the same statement's Execute is its execution), ``execute fetch from``
(more rows of a portal already executed: pg_stat_statements counts the portal once), ``fastpath function call``.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Literal

from opsd.core.queries.counting import destinations, log_faults, log_formats

LogFormat = Literal["jsonlog", "csvlog"]
SUFFIX: dict[str, str] = {"jsonlog": ".json", "csvlog": ".csv"}

# csvlog columns of PostgreSQL 14 to 17 (the docs' "Using CSV-Format Log Output"); 0-based
_C_TIME, _C_USER, _C_DB, _C_SEVERITY, _C_MESSAGE, _C_APP, _C_QUERY_ID = 0, 1, 2, 11, 13, 22, 25
_CSV_COLUMNS = 26

_DURATION = re.compile(r"duration: (\d+(?:\.\d+)?) ms(?:  (statement|execute fetch from|execute|parse|bind|"
                       r"fastpath function call)\b)?")
_COUNTED = (None, "statement", "execute")
_TIME = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)(?: (\S+))?$")
_OFFSET = re.compile(r"([+-])(\d\d):?(\d\d)?(?::?(\d\d))?$")


@dataclass(frozen=True, slots=True)
class SlowExec:
    """One execution the log timed: when it ended (the log line's time), its statement (``queryid``, database,
    login role) and how long it took. ``application`` is the session's application_name, kept for display only
    (pg_stat_statements has none)."""

    at: datetime | None
    queryid: int
    dbname: str
    rolname: str
    application: str
    duration_ms: float


@dataclass(frozen=True, slots=True)
class LogPosition:
    """How far the duration log was read: a file (absolute path), its inode (a file of the same name made
    anew is another file) and the byte offset of the first record not read yet."""

    file: str
    inode: int
    offset: int


def duration_of(message: str) -> float | None:
    """The milliseconds of a ``duration:`` message that is one execution; None for any other message."""
    m = _DURATION.match(message)
    if m is None or m.group(2) not in _COUNTED:
        return None
    return float(m.group(1))


def parse_time(text: str, zone: tzinfo | None = None) -> datetime | None:
    """A log line's time (``%m``: ``2026-12-08 00:17:56.244 UTC``, in log_timezone). The zone is an
    abbreviation (``CET``) or a numeric offset (``+03``, ``-0330``); an abbreviation other than UTC/GMT is read
    in ``zone`` (the server's log_timezone), the fold chosen by the abbreviation. None when unreadable."""
    m = _TIME.match(text.strip())
    if m is None:
        return None
    try:
        naive = datetime.fromisoformat(m.group(1))
    except ValueError:
        return None
    abbrev = m.group(2) or ""
    if abbrev in ("", "UTC", "GMT", "Z"):
        return naive.replace(tzinfo=UTC if abbrev or zone is None else zone).astimezone(UTC)
    if (o := _OFFSET.match(abbrev)) is not None:
        sign = -1 if o.group(1) == "-" else 1
        delta = timedelta(hours=int(o.group(2)), minutes=int(o.group(3) or 0), seconds=int(o.group(4) or 0))
        return naive.replace(tzinfo=timezone(sign * delta))
    if zone is None:
        return None
    for fold in (0, 1):
        at = naive.replace(tzinfo=zone, fold=fold)
        if at.tzname() == abbrev:
            return at.astimezone(UTC)  # aware times of two folds compare equal only once in UTC
    return naive.replace(tzinfo=zone).astimezone(UTC)


def _queryid(value: object) -> int:
    try:
        return int(str(value)) if value not in (None, "") else 0
    except ValueError:
        return 0


def parse_json(record: str, zone: tzinfo | None = None) -> SlowExec | None:
    """One jsonlog line; None unless it is a counted duration message."""
    if '"message":"duration: ' not in record:  # most lines: no JSON decoding at all
        return None
    try:
        d = json.loads(record)
    except ValueError:
        return None
    if not isinstance(d, dict) or d.get("error_severity") != "LOG":
        return None
    ms = duration_of(str(d.get("message", "")))
    if ms is None:
        return None
    return SlowExec(at=parse_time(str(d.get("timestamp", "")), zone), queryid=_queryid(d.get("query_id")),
                    dbname=str(d.get("dbname", "")), rolname=str(d.get("user", "")),
                    application=str(d.get("application_name", "")), duration_ms=ms)


def parse_csv(record: str, zone: tzinfo | None = None) -> SlowExec | None:
    """One csvlog record (physical lines joined: a quoted field may hold newlines); None unless it is a counted
    duration message."""
    if ',"duration: ' not in record:
        return None
    try:
        row = next(csv.reader([record], strict=True))
    except (csv.Error, StopIteration):
        return None
    if len(row) < _CSV_COLUMNS or row[_C_SEVERITY] != "LOG":
        return None
    ms = duration_of(row[_C_MESSAGE])
    if ms is None:
        return None
    return SlowExec(at=parse_time(row[_C_TIME], zone), queryid=_queryid(row[_C_QUERY_ID]), dbname=row[_C_DB],
                    rolname=row[_C_USER], application=row[_C_APP], duration_ms=ms)


def parse_record(fmt: LogFormat, record: str, zone: tzinfo | None = None) -> SlowExec | None:
    return parse_json(record, zone) if fmt == "jsonlog" else parse_csv(record, zone)


def complete_records(data: bytes, fmt: LogFormat) -> tuple[list[bytes], int]:
    """The whole records at the start of ``data`` and how many bytes they take: a record ends at a newline
    (csvlog: a newline outside quotes, i.e. with an even count of ``"`` before it in the record). What follows
    the last one is a record PostgreSQL is still writing: left for the next read."""
    records: list[bytes] = []
    start = 0
    if fmt == "jsonlog":  # JSON escapes newlines inside strings
        while (nl := data.find(b"\n", start)) >= 0:
            records.append(data[start:nl])
            start = nl + 1
        return records, start
    pos, quotes = 0, 0
    while (nl := data.find(b"\n", pos)) >= 0:
        quotes += data.count(b'"', pos, nl)
        pos = nl + 1
        if quotes % 2 == 0:
            records.append(data[start:nl])
            start, quotes = pos, 0
    return records, start


@dataclass(frozen=True)
class LogSource:
    """Where the duration log is and in which format, and what makes it unfit for counting (each one line:
    the windows read meanwhile are unknown)."""

    directory: str | None
    fmt: LogFormat | None
    zone: str | None  # log_timezone
    problems: tuple[str, ...] = ()


def _fmt_of(dest: list[str], wanted: str) -> LogFormat | None:
    """The format read: the one asked for, else jsonlog before csvlog (None: neither is written)."""
    for f in log_formats(wanted):
        if f in dest or wanted != "auto":
            return "jsonlog" if f == "jsonlog" else "csvlog"
    return None


def log_source(server: dict[str, str], *, directory: str | None, fmt: str, lowest_ms: float | None) -> LogSource:
    """From the server's settings (pg_settings names to values; ``data_directory`` absent for a role without
    pg_read_all_settings) and ``[queries] log_directory`` / ``log_format``. What makes the log unfit is decided
    by core/queries/counting.log_faults, the rules the ``queries`` check uses too."""
    problems = [f.what for f in log_faults(server, lowest_ms=lowest_ms, log_format=fmt)]
    chosen = _fmt_of(destinations(server.get("log_destination", "")), fmt)
    if directory is None:
        logdir = server.get("log_directory", "log")
        if logdir.startswith("/"):
            directory = logdir
        elif server.get("data_directory"):
            directory = f"{server['data_directory'].rstrip('/')}/{logdir}"
        else:
            problems.append("the server's data_directory is not readable by opsd's role (pg_read_all_settings, in "
                            "pg_monitor): set [queries] log_directory")
    return LogSource(directory, chosen, server.get("log_timezone"), tuple(problems))
