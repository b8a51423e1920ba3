"""The recovered tables against the live ones, by primary key, on production (read only)."""

from __future__ import annotations

from opsd.context import Context
from opsd.core.records.targeted import TableComparison
from opsd.db import tablecopy
from opsd.db.connection import Conn, per_database
from opsd.db.tablecopy import QName
from opsd.errors import OpsdError


def compare_all(ctx: Context, dbname: str, tables: tuple[QName, ...], schema: str) -> list[TableComparison]:
    pg = ctx.settings.postgres.model_copy(update={"statement_timeout": ctx.settings.drill.verify_statement_timeout})
    with per_database(pg, ctx.settings.opsd.run_as)(dbname) as conn:
        return [compare_one(conn, t, QName(schema, t.table)) for t in tables]


def compare_one(conn: Conn, live: QName, recovered: QName) -> TableComparison:
    base = {"table": str(live), "recovered_as": str(recovered), "recovered_rows": tablecopy.count(conn, recovered)}
    if not tablecopy.exists(conn, live):
        return TableComparison(**base, live_rows=None, matched=False,
                               why_unmatched="the live table does not exist (dropped or renamed since)")
    keys = tablecopy.key(conn, recovered)
    if not keys:
        return TableComparison(**base, live_rows=tablecopy.count(conn, live), matched=False,
                               why_unmatched="no primary key: rows cannot be matched one to one")
    live_cols = tablecopy.columns(conn, live)
    common = [c for c in tablecopy.columns(conn, recovered) if c in live_cols]
    if not all(k in live_cols for k in keys):
        return TableComparison(**base, live_rows=tablecopy.count(conn, live), matched=False,
                               key=keys, why_unmatched="the live table no longer has the key columns")
    try:
        c = tablecopy.compare(conn, live, recovered, keys, common)
    except OpsdError as e:
        return TableComparison(**base, live_rows=None, matched=False, key=keys,
                               why_unmatched=f"comparison failed: {e}")
    return TableComparison(**base, live_rows=c.live, matched=True, key=keys,
                           missing_from_live=c.missing_from_live, only_in_live=c.only_in_live, changed=c.changed,
                           put_back_sql=tablecopy.put_back(conn, live, recovered, keys, common))
