"""What a drill checks on the promoted scratch copy: amcheck on every heap and B-tree index, every table read
in full, the operator's smoke queries, and the marker rows. Each check returns a CheckResult naming what
failed; one failure never hides the others."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pydantic import JsonValue

from opsd.actions.drill.pool import Item, Tally, run
from opsd.core.records.checks import CRITICAL, OK, WARNING, CheckResult
from opsd.core.units import human_bytes
from opsd.db.connection import Conn, ConnectTo
from opsd.db.drill_reads import amcheck_rows, amcheck_schema, read_relation, scalar_text
from opsd.db.queries import (
    CheckedRow,
    CorruptionRow,
    HeartbeatRow,
    NameRow,
    PresentRow,
    RelationRow,
    execute_script,
    fetch_all,
    fetch_one,
)
from opsd.errors import DatabaseError, NotChecked
from opsd.settings_drill import SmokeQuery

MAX_NAMED = 5
Report = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def databases(connect: ConnectTo) -> list[str]:
    with connect("postgres") as conn:
        return [r.name for r in fetch_all(conn, "databases", NameRow)]


def _relations(connect: ConnectTo, dbs: list[str], kinds: tuple[str, ...], install: bool,
               unchecked: list[str]) -> list[Item]:
    """The relations of ``kinds`` in every database (amcheck installed first when ``install``; a database where
    it cannot be is unchecked, not corrupt)."""
    items: list[Item] = []
    for db in dbs:
        with connect(db) as conn:
            if install:
                try:
                    execute_script(conn, "amcheck_install")
                except DatabaseError as e:
                    unchecked.append(f"{db}: cannot install amcheck, its relations are unchecked: {e}")
                    continue
            items += [Item(db, r) for r in fetch_all(conn, "relations", RelationRow) if r.kind in kinds]
    return items


def _check_one(conn: Conn, rel: RelationRow) -> str | None:
    schema = amcheck_schema(conn)
    if schema is None:
        raise NotChecked("amcheck is not installed in this database")
    if rel.kind == "i":
        amcheck_rows(conn, "amcheck_btree", schema, rel.name, CheckedRow)
        return None
    bad = amcheck_rows(conn, "amcheck_heap", schema, rel.name, CorruptionRow)
    return f"block {bad[0].blkno}: {bad[0].msg}" if bad else None


def _details(t: Tally, dbs: list[str], unchecked: list[str]) -> dict[str, JsonValue]:
    return {"databases": len(dbs), "relations": t.total, "done": t.done, "jobs": t.jobs, "bytes": t.bytes,
            "seconds": t.seconds, "rate": round(t.rate), "problems": list(t.problems),
            "unchecked": list(unchecked)}


def _verdict(name: str, t: Tally, unchecked: list[str], *, damage: str, sound: str,
             details: dict[str, JsonValue]) -> CheckResult:
    """Damage is critical; a relation the check could not run on is a warning that names it and why (never
    'corrupt'); otherwise ``sound``."""
    if t.problems:
        return CheckResult(name, CRITICAL, f"{len(t.problems)} {damage}: " + "; ".join(t.problems[:MAX_NAMED])
                           + (f" ({len(unchecked)} more unchecked)" if unchecked else ""), details)
    if unchecked:
        return CheckResult(name, WARNING, f"{sound}; {len(unchecked)} not checked: "
                                          + "; ".join(unchecked[:MAX_NAMED]), details)
    return CheckResult(name, OK, sound, details)


def amcheck(connect: ConnectTo, dbs: list[str], jobs: int = 1, report: Report = _quiet) -> CheckResult:
    """verify_heapam (TOAST included) on every table, bt_index_check(heapallindexed) on every B-tree index,
    ``jobs`` relations at a time, largest first."""
    unchecked: list[str] = []
    items = _relations(connect, dbs, ("r", "m", "t", "i"), True, unchecked)
    t = run(connect, items, _check_one, jobs, "amcheck", report=report)
    unchecked += t.unchecked
    indexes = t.by_kind.get("i", 0)
    heaps = t.done - indexes
    details = _details(t, dbs, unchecked) | {"heaps": heaps, "btree_indexes": indexes}
    sound = (f"{heaps} heap(s) and {indexes} B-tree index(es) {'checked' if unchecked else 'sound'} in {len(dbs)} "
             f"database(s): {human_bytes(t.bytes)} in {t.seconds:.1f}s, {t.jobs} at a time")
    return _verdict("amcheck", t, unchecked, damage="corrupt relation(s)", sound=sound, details=details)


def readable(connect: ConnectTo, dbs: list[str], jobs: int = 1, report: Report = _quiet) -> CheckResult:
    """Every table and materialized view of every database read in full (COPY, as pg_dump would), ``jobs``
    at a time, largest first."""
    unchecked: list[str] = []
    items = _relations(connect, dbs, ("r", "m"), False, unchecked)
    t = run(connect, items, lambda conn, rel: read_relation(conn, rel.name), jobs, "full reads", report=report)
    unchecked += t.unchecked
    details = _details(t, dbs, unchecked) | {"tables": t.done - len(t.problems) - len(t.unchecked)}
    sound = (f"{t.done - len(t.unchecked)} table(s) in {len(dbs)} database(s) read in full: "
             f"{human_bytes(t.bytes)} in {t.seconds:.1f}s ({human_bytes(int(t.rate))}/s, {t.jobs} at a time)")
    return _verdict("readable", t, unchecked, damage="table(s) not readable", sound=sound, details=details)


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
