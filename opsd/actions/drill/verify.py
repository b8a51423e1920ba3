"""What a drill checks on the promoted scratch copy: amcheck on every heap and B-tree index, every table read
in full, the operator's smoke queries, and the marker rows. Each check returns a CheckResult naming what
failed; one failure never hides the others."""

from __future__ import annotations

import time
from datetime import datetime

from pydantic import JsonValue

from opsd.core.records.checks import CRITICAL, OK, CheckResult
from opsd.core.units import human_bytes
from opsd.db.connection import Conn, ConnectTo
from opsd.db.drill_reads import read_relation, scalar_text
from opsd.db.queries import (
    CheckedRow,
    CorruptionRow,
    HeartbeatRow,
    NameRow,
    PresentRow,
    RelationRow,
    execute,
    fetch_all,
    fetch_one,
)
from opsd.errors import DatabaseError
from opsd.settings import SmokeQuery

MAX_NAMED = 5


def databases(connect: ConnectTo) -> list[str]:
    with connect("postgres") as conn:
        return [r.name for r in fetch_all(conn, "databases", NameRow)]


def amcheck(connect: ConnectTo, dbs: list[str]) -> CheckResult:
    """verify_heapam (TOAST included) on every table, bt_index_check(heapallindexed) on every B-tree index."""
    problems: list[str] = []
    heaps = indexes = 0
    for db in dbs:
        with connect(db) as conn:
            try:
                execute(conn, "amcheck_install", {})
            except DatabaseError as e:
                problems.append(f"{db}: cannot install amcheck: {e}")
                continue
            for rel in fetch_all(conn, "relations", RelationRow):
                try:
                    if rel.kind == "i":
                        fetch_one(conn, "amcheck_btree", CheckedRow, {"rel": rel.name})
                        indexes += 1
                    else:
                        bad = fetch_all(conn, "amcheck_heap", CorruptionRow, {"rel": rel.name})
                        heaps += 1
                        if bad:
                            problems.append(f"{db}.{rel.name} block {bad[0].blkno}: {bad[0].msg}")
                except DatabaseError as e:
                    problems.append(f"{db}.{rel.name}: {e}")
    details: dict[str, JsonValue] = {"heaps": heaps, "btree_indexes": indexes, "databases": len(dbs),
                                     "problems": list(problems)}
    if problems:
        return CheckResult("amcheck", CRITICAL, f"{len(problems)} corrupt relation(s): "
                                                + "; ".join(problems[:MAX_NAMED]), details)
    return CheckResult("amcheck", OK, f"{heaps} heap(s) and {indexes} B-tree index(es) sound in {len(dbs)} "
                                      "database(s)", details)


def readable(connect: ConnectTo, dbs: list[str]) -> CheckResult:
    """Every table and materialized view of every database read in full (COPY, as pg_dump would)."""
    problems: list[str] = []
    tables = 0
    total = 0
    t0 = time.monotonic()
    for db in dbs:
        with connect(db) as conn:
            for rel in fetch_all(conn, "relations", RelationRow):
                if rel.kind not in ("r", "m"):
                    continue
                try:
                    total += read_relation(conn, rel.name)
                    tables += 1
                except DatabaseError as e:
                    problems.append(f"{db}.{rel.name}: {e}")
    secs = time.monotonic() - t0
    details: dict[str, JsonValue] = {"tables": tables, "bytes": total, "seconds": round(secs, 3),
                                     "problems": list(problems)}
    if problems:
        return CheckResult("readable", CRITICAL, f"{len(problems)} table(s) not readable: "
                                                 + "; ".join(problems[:MAX_NAMED]), details)
    return CheckResult("readable", OK, f"{tables} table(s) in {len(dbs)} database(s) read in full: "
                                       f"{human_bytes(total)} in {secs:.1f}s", details)


def smoke(connect: ConnectTo, queries: list[SmokeQuery]) -> list[CheckResult]:
    out = []
    for q in queries:
        name = f"smoke.{q.name}"
        try:
            with connect(q.dbname) as conn:
                got = scalar_text(conn, q.sql)
        except DatabaseError as e:
            out.append(CheckResult(name, CRITICAL, f"{q.sql!r} on {q.dbname} failed: {e}"))
            continue
        status = OK if got == q.expect else CRITICAL
        out.append(CheckResult(name, status, f"{q.sql!r} on {q.dbname} returned {got!r}, expected {q.expect!r}",
                               {"got": got, "expect": q.expect, "dbname": q.dbname}))
    return out


def heartbeat_rows(conn: Conn, since: datetime) -> list[HeartbeatRow] | None:
    """Marker rows written at or after ``since``; None when the table does not exist."""
    if not fetch_one(conn, "heartbeat_exists", PresentRow).present:
        return None
    return fetch_all(conn, "heartbeat_rows", HeartbeatRow, {"since": since})
