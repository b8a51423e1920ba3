"""The recovered tables against the live ones, by primary key, on production (read only), and the put-back
statement a DBA may run.

The comparison must never hold up production: it reads the live table in key ranges of BATCH_ROWS rows, one
short statement each (its lock on the live table is released between them), under LOCK_TIMEOUT and
STATEMENT_TIMEOUT, and before each range it looks for a session waiting for a lock on the live table (a
migration's ACCESS EXCLUSIVE queued there holds up all traffic behind it): then it stops with one line saying
so, rather than keep the migration, and everyone behind it, waiting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from opsd.actions.targeted.owners import victims_name
from opsd.context import Context
from opsd.core.records.targeted import TableComparison
from opsd.core.relname import quote
from opsd.db import tablecopy
from opsd.db.connection import Conn, per_database
from opsd.db.tablecopy import ZERO, Column, Counts, KeyColumn, QName
from opsd.errors import OpsdError, QueryTimeout

LOCK_TIMEOUT = timedelta(seconds=2)  # a candidate for a setting ([restore] compare_lock_timeout)
STATEMENT_TIMEOUT = timedelta(seconds=10)  # one key range; a candidate for a setting too
BATCH_ROWS = 20_000


class Stopped(OpsdError):
    """The comparison stopped so as not to hold up production."""


def compare_all(ctx: Context, dbname: str, tables: tuple[QName, ...], schema: str, xids: tuple[int, ...] = ()
                ) -> list[TableComparison]:
    with per_database(ctx.settings.postgres, ctx.settings.opsd.run_as)(dbname) as conn:
        tablecopy.pin(conn)
        tablecopy.limit(conn, lock_timeout=LOCK_TIMEOUT, statement_timeout=STATEMENT_TIMEOUT)
        return [compare_one(conn, t, QName(schema, t.table),
                            QName(schema, victims_name(t.table, xids[0])) if xids else None, xids[:1])
                for t in tables]


def compare_one(conn: Conn, live: QName, recovered: QName, victims: QName | None = None,
                xid: tuple[int, ...] = ()) -> TableComparison:
    base = {"table": str(live), "recovered_as": str(recovered), "recovered_rows": tablecopy.count(conn, recovered)}
    if not tablecopy.exists(conn, live):
        return TableComparison(**base, live_rows=None, matched=False,
                               why_unmatched="the live table does not exist (dropped or renamed since)")
    keys = tablecopy.key(conn, recovered)
    if not keys:
        return TableComparison(**base, live_rows=None, matched=False,
                               why_unmatched="no primary key: rows cannot be matched one to one")
    live_cols = tablecopy.columns(conn, live)
    names = {c.name for c in live_cols}
    common = [c.name for c in tablecopy.columns(conn, recovered) if c.name in names]
    key_names = [k.name for k in keys]
    if not all(k in names for k in key_names):
        return TableComparison(**base, live_rows=None, matched=False, key=key_names,
                               why_unmatched="the live table no longer has the key columns")
    try:
        c = walk(conn, live, recovered, keys, common=common)
    except OpsdError as e:
        return TableComparison(**base, live_rows=None, matched=False, key=key_names,
                               why_unmatched=str(e) if isinstance(e, Stopped) else f"comparison failed: {e}")
    pb = put_back(conn, live, victims if victims is not None else recovered, keys=key_names,
                  cols=[c for c in live_cols if c.name in common], xid=xid[0] if xid else None)
    return TableComparison(**base, live_rows=c.live, matched=True, key=key_names,
                           missing_from_live=c.missing_from_live, only_in_live=c.only_in_live, changed=c.changed,
                           put_back_sql=pb.sql, put_back_scope=pb.scope, put_back_notes=pb.notes,
                           victims=tablecopy.count(conn, victims) if victims is not None else None,
                           victims_table=str(victims) if victims is not None else None)


def walk(conn: Conn, live: QName, recovered: QName, keys: list[KeyColumn], *, common: list[str],
         batch: int = BATCH_ROWS) -> Counts:
    """The counts over the whole key space, one range of ``batch`` recovered rows at a time (the first range
    open below, the last open above: live rows outside the recovered keys are counted too)."""
    total, lo = ZERO, None
    while True:
        waiting = tablecopy.lock_waiters(conn, live)
        if waiting:
            raise Stopped(f"stopped comparing {live}: {waiting} session(s) wait for a lock on it (a migration?); "
                          "opsd does not hold them up (compare again later)")
        try:
            hi = tablecopy.batch_end(conn, recovered, keys, lo, batch)
            total += tablecopy.compare_range(conn, live, recovered, keys, common=common, lo=lo, hi=hi)
        except QueryTimeout as e:
            raise Stopped(_why(live, str(e))) from None
        if hi is None:
            return total
        lo = hi


def _why(live: QName, error: str) -> str:
    if "lock timeout" in error:
        return (f"stopped comparing {live}: it could not be read within {LOCK_TIMEOUT.total_seconds():g} s (a "
                "session holds or waits for a conflicting lock, e.g. a migration); opsd does not queue behind it")
    return (f"stopped comparing {live}: one key range took longer than {STATEMENT_TIMEOUT.total_seconds():g} s; "
            "opsd does not hold the live table that long")


@dataclass(frozen=True)
class PutBack:
    sql: str
    scope: str  # victims | missing
    notes: list[str]


def put_back(conn: Conn, live: QName, source: QName, *, keys: list[str], cols: list[Column], xid: int | None
             ) -> PutBack:
    """The statement(s) that put rows of ``source`` back into ``live``: with the bad transaction known
    (``source``: its victims), the rows it deleted (INSERT) and changed (UPDATE back); else every recovered row
    missing from live. GENERATED ALWAYS identity columns get OVERRIDING SYSTEM VALUE, stored generated columns
    are left out (computed again)."""
    given = [c for c in cols if c.generated != "s"]
    always = [c.name for c in given if c.identity == "a"]
    notes = column_notes(cols) + trigger_notes(live, tablecopy.triggers(conn, live))
    stmt = tablecopy.put_back_insert(conn, live, source, keys=keys, cols=[c.name for c in given],
                                     overriding=bool(always))
    if xid is None:
        notes.insert(0, "this puts back EVERY recovered row missing from the live table, rows deleted on purpose "
                        "since the target included (the bad transaction is not known: with --before-xid opsd puts "
                        "back only the rows that transaction deleted or changed)")
        return PutBack(stmt, "missing", notes)
    settable = [c.name for c in given if c.name not in keys and c.identity != "a"]
    if settable:
        stmt += "\n" + tablecopy.put_back_update(conn, live, source, keys=keys, cols=settable)
    notes.insert(0, f"only the rows transaction {xid} deleted (INSERT) or changed (UPDATE, back to their values "
                    f"before it, also where they changed again since) are put back, from {source}; rows deleted or "
                    "changed since by other transactions are left as they are")
    return PutBack(stmt, "victims", notes)


def trigger_notes(live: QName, names: list[str]) -> list[str]:
    if not names:
        return []
    shown = ", ".join(quote(n) for n in names)
    return [f"WARNING: the live table's triggers fire for every row put back, as for the application's own writes: "
            f"{shown} on {live} (their effects, e.g. stock quantities or audit rows, happen again; ALTER TABLE ... "
            "DISABLE TRIGGER first if that is not wanted)"]


def column_notes(cols: list[Column]) -> list[str]:
    out = []
    always = [c.name for c in cols if c.identity == "a" and c.generated != "s"]
    if always:
        out.append(f"OVERRIDING SYSTEM VALUE: {', '.join(always)} (GENERATED ALWAYS AS IDENTITY) get their old "
                   "values back; the identity sequence is not moved")
    by_default = [c.name for c in cols if c.identity == "d"]
    if by_default:
        out.append(f"{', '.join(by_default)} (GENERATED BY DEFAULT AS IDENTITY) get their old values back")
    generated = [c.name for c in cols if c.generated == "s"]
    if generated:
        out.append(f"{', '.join(generated)} left out: stored generated column(s), computed again by the live "
                   "table")
    return out
