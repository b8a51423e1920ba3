"""What a drill checks on the promoted scratch copy: amcheck on every heap and B-tree index, every table read
in full, the operator's smoke queries, and the marker rows. Each check returns a CheckResult naming what
failed; one failure never hides the others."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import JsonValue

from opsd.actions.drill import classify
from opsd.actions.drill.pool import Item, Tally, run
from opsd.core.records.checks import CRITICAL, OK, WARNING, CheckResult
from opsd.core.records.drill import DatabaseCounts
from opsd.core.units import human_bytes
from opsd.db.connection import Conn, ConnectTo
from opsd.db.drill_reads import amcheck_rows, amcheck_schema, read_relation, scalar_text
from opsd.db.queries import (
    CheckedRow,
    CorruptionRow,
    DatabaseRow,
    HeartbeatRow,
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


@dataclass
class Listing:
    """Every relation of every database of the copy with its plan (classify.py), the databases skipped whole,
    and the gaps found before any check ran (amcheck that cannot be installed, a database not listed)."""

    rels: list[tuple[str, RelationRow, classify.Plan]] = field(default_factory=list)
    dbs: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    unlisted: dict[str, str] = field(default_factory=dict)
    no_amcheck: set[str] = field(default_factory=set)
    unchecked: list[str] = field(default_factory=list)

    def items(self, what: str) -> list[Item]:
        """The relations planned for ``what`` (amcheck | read) that it can run on."""
        return [Item(db, r) for db, r, p in self.rels
                if getattr(p, what) and not (what == "amcheck" and db in self.no_amcheck)]


def for_checks(connect: ConnectTo) -> ConnectTo:
    """Connections to the copy that verification can write with (amcheck's extension) even in a database set to
    ``default_transaction_read_only = on``; search_path stays opsd's own (pg_catalog, pg_temp)."""

    def open_(db: str) -> Conn:
        conn = connect(db)
        try:
            execute_script(conn, "drill_session")
        except DatabaseError:
            conn.close()
            raise
        return conn

    return open_


def _prepare(conn: Conn, db: str, listing: Listing) -> None:
    """amcheck in the copy's database: installed in opsd_amcheck when absent, updated when old; where it cannot
    be, its relations are not checked (named), never corrupt."""
    try:
        execute_script(conn, "amcheck_install")
        execute_script(conn, "amcheck_update")
    except DatabaseError as e:
        listing.no_amcheck.add(db)
        listing.unchecked.append(f"{db}: cannot install amcheck, its relations are not checked by it: {e}")


def list_relations(connect: ConnectTo) -> Listing:
    listing = Listing()
    with connect("postgres") as conn:
        for d in fetch_all(conn, "drill_databases", DatabaseRow):
            (listing.dbs if d.allowed else listing.refused).append(d.name)
    for db in listing.dbs:
        try:
            with connect(db) as conn:
                _prepare(conn, db, listing)
                rows = fetch_all(conn, "relations", RelationRow)
        except DatabaseError as e:
            listing.unlisted[db] = str(e)
            listing.unchecked.append(f"{db}: its relations could not be listed: {e}")
            continue
        listing.rels += [(db, r, classify.plan(r)) for r in rows]
    return listing


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
                           + (f" ({len(unchecked)} more not checked)" if unchecked else ""), details)
    if unchecked:
        return CheckResult(name, WARNING, f"{sound}; {len(unchecked)} not checked: "
                                          + "; ".join(unchecked[:MAX_NAMED]), details)
    return CheckResult(name, OK, sound, details)


class Verification:
    """The relation checks of one drill: list (phase ``databases``), amcheck, full reads, then the verdict of
    every relation, counted per database (``counts``) and judged (``coverage``)."""

    def __init__(self, connect: ConnectTo, jobs: int = 1, report: Report = _quiet) -> None:
        self.connect, self.jobs, self.report = connect, jobs, report
        self.listing = Listing()
        self.tallies: dict[str, Tally] = {}

    def databases(self) -> list[str]:
        self.listing = list_relations(self.connect)
        return self.listing.dbs

    def amcheck(self) -> CheckResult:
        """verify_heapam (TOAST included) on every table, matview, TOAST table and sequence,
        bt_index_check(heapallindexed) on every valid B-tree index, ``jobs`` at a time, largest first."""
        lst = self.listing
        t = self.tallies["amcheck"] = run(self.connect, lst.items("amcheck"), _check_one, self.jobs, "amcheck",
                                          report=self.report)
        unchecked = list(lst.unchecked) + t.unchecked
        indexes = t.by_kind.get("i", 0)
        heaps = t.done - indexes
        details = _details(t, lst.dbs, unchecked) | {"heaps": heaps, "btree_indexes": indexes}
        sound = (f"{heaps} heap(s) and {indexes} B-tree index(es) {'checked' if unchecked else 'sound'} in "
                 f"{len(lst.dbs)} database(s): {human_bytes(t.bytes)} in {t.seconds:.1f}s, {t.jobs} at a time")
        return _verdict("amcheck", t, unchecked, damage="corrupt relation(s)", sound=sound, details=details)

    def readable(self) -> CheckResult:
        """Every table (each partition and inheritance child once), populated matview and sequence read in full
        (COPY, as pg_dump would, TOAST detoasted; pg_largeobject is a table too), ``jobs`` at a time."""
        lst = self.listing
        t = self.tallies["read"] = run(self.connect, lst.items("read"),
                                       lambda conn, rel: read_relation(conn, rel.name), self.jobs, "full reads",
                                       report=self.report)
        unchecked = [f"{db}: {why}" for db, why in lst.unlisted.items()] + t.unchecked
        details = _details(t, lst.dbs, unchecked) | {"tables": t.done - len(t.problems) - len(t.unchecked)}
        sound = (f"{t.done - len(t.unchecked)} relation(s) in {len(lst.dbs)} database(s) read in full: "
                 f"{human_bytes(t.bytes)} in {t.seconds:.1f}s ({human_bytes(int(t.rate))}/s, {t.jobs} at a time)")
        return _verdict("readable", t, unchecked, damage="relation(s) not readable", sound=sound, details=details)

    def _gap(self, what: str, db: str, name: str) -> bool:
        t = self.tallies.get(what)  # the passes are tallied by these names
        if t is None or (what == "amcheck" and db in self.listing.no_amcheck):
            return True  # the pass did not run (it failed as a whole) or could not run in this database
        return (db, name) in t.gaps

    def counts(self) -> list[DatabaseCounts]:
        """Every database's counts: checked, skipped by reason, not checked, corrupt."""
        per_db: dict[str, list[tuple[classify.Plan, classify.Verdict]]] = {db: [] for db in self.listing.dbs}
        for db, rel, p in self.listing.rels:
            key = (db, rel.name)
            damaged = any(key in t.damaged for t in self.tallies.values())
            gap = any(self._gap(what, db, rel.name) for what in ("amcheck", "read") if getattr(p, what))
            per_db[db].append((p, classify.verdict(p, damaged, gap)))
        out = [classify.count(db, rels) for db, rels in per_db.items()]
        for c in out:
            c.error = self.listing.unlisted.get(c.database)
        return sorted(out + [classify.refused(db) for db in self.listing.refused], key=lambda c: c.database)


def coverage(counts: list[DatabaseCounts]) -> CheckResult:
    """Critical when a relation is corrupt; a warning naming the gap when one could not be checked (or a
    database could not be listed); otherwise every relation is checked or skipped for a reason."""
    tot = DatabaseCounts(database="*")
    for c in counts:
        tot.checked, tot.not_checked, tot.corrupt = (tot.checked + c.checked, tot.not_checked + c.not_checked,
                                                     tot.corrupt + c.corrupt)
        for reason, n in c.skipped.items():
            tot.skipped[reason] = tot.skipped.get(reason, 0) + n
    refused = [c.database for c in counts if c.refused]
    unlisted = [f"{c.database} ({c.error})" for c in counts if c.error]
    skipped = ", ".join(f"{r} {n}" for r, n in sorted(tot.skipped.items())) or "none"
    msg = (f"{tot.relations} relation(s) in {len(counts) - len(refused)} database(s): {tot.checked} checked, "
           f"{sum(tot.skipped.values())} skipped ({skipped}), {tot.not_checked} not checked, {tot.corrupt} corrupt"
           + (f"; database(s) refusing connections, skipped: {', '.join(refused)}" if refused else ""))
    details: dict[str, JsonValue] = {"checked": tot.checked, "skipped": dict(tot.skipped),
                                     "not_checked": tot.not_checked, "corrupt": tot.corrupt,
                                     "refused": list(refused), "unlisted": list(unlisted)}
    if tot.corrupt:
        return CheckResult("coverage", CRITICAL, msg, details)
    if tot.not_checked or unlisted:
        gaps = f"; not listed: {'; '.join(unlisted)}" if unlisted else ""
        return CheckResult("coverage", WARNING, msg + gaps + " (not proven for those: see amcheck/readable)",
                           details)
    return CheckResult("coverage", OK, msg, details)


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
