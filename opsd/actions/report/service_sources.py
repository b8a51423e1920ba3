"""The readers the "Service levels" section takes its figures from: the query objectives per day
(actions/queries/objectives: the duration log's counts against pg_stat_statements' calls), the live index report
(actions/queries/indexes, without hypothetical-index advice) and the tables' daily sizes (the query store)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from opsd.context import Context
from opsd.core.queries.objectives import period_state
from opsd.core.records.indexes import IndexReport
from opsd.core.records.objectives import INCOMPLETE, NO_STATEMENTS, UNKNOWN, ObjectiveResult
from opsd.core.records.objectives import MET as DAY_MET
from opsd.core.records.objectives import MISSED as DAY_MISSED
from opsd.core.records.queries import TableSize
from opsd.core.records.service import MET, MISSED, NO_DATA, NOT_PROVEN, ObjectiveDay, ObjectiveMonth, TableGrowth
from opsd.errors import OpsdError


def month_of(r: ObjectiveResult, notes: list[str]) -> ObjectiveMonth:
    """One objective's month: per day met | missed | unknown | incomplete | no_statements (with why), and the
    month's verdict: missed when a day missed (core/queries/objectives.period_state, the rule ``opsd queries
    --month`` applies too); else no data when nothing was counted at all, not proven when a day is unknown or
    incomplete, met when every day with statements met."""
    days = [ObjectiveDay(day=d.day, calls=d.calls, over=d.over, share_under=d.share_under, verdict=d.state,
                         why="; ".join(d.reasons)) for d in r.days]
    states = [d.state for d in r.days]
    met, missed = states.count(DAY_MET), states.count(DAY_MISSED)
    unknown = states.count(UNKNOWN) + states.count(INCOMPLETE)
    state = period_state(r.state, r.days)
    if state == DAY_MISSED:
        verdict = MISSED
    elif not met and not r.calls:  # nothing counted at all (no snapshot yet, or no statement): nothing to prove
        verdict = NO_DATA
    else:
        verdict = NOT_PROVEN if unknown else MET if met else NO_DATA
    missing = []
    if unknown:
        whys = sorted({why for d in r.days if d.state in (UNKNOWN, INCOMPLETE) for why in d.reasons})
        missing.append(f"{unknown} day(s) unknown or incomplete: " + ("; ".join(whys[:3]) or "no reason recorded"))
    if verdict == NO_DATA:
        missing.append("; ".join(r.reasons) if r.reasons else
                       "no statement of this objective was counted in the month" if NO_STATEMENTS in states else
                       "no snapshot counted this objective in the month")
    if verdict != MET or unknown:
        missing += notes
    return ObjectiveMonth(name=r.name, threshold_seconds=r.threshold_ms / 1000, target=r.target,
                          database=r.database, role=r.role, calls=r.calls, over=r.over, share_under=r.share_under,
                          days_met=met, days_missed=missed, days_unknown=unknown, verdict=verdict, days=days,
                          missing=missing)


def objectives(ctx: Context, start: datetime, end: datetime) -> list[ObjectiveMonth]:
    from opsd.actions.queries.objectives import objective_report

    report = objective_report(ctx, start, end, selectors=False)  # the server is not asked: a report made offline
    return [month_of(r, report.notes) for r in report.objectives]


def index_report(ctx: Context) -> IndexReport:
    from opsd.actions.queries.indexes import index_report as read

    return read(ctx, advise=False)  # no EXPLAIN with hypothetical indexes: the section needs none of it


def offline(ctx: Context) -> IndexReport:
    raise OpsdError("not read: a report made offline (without the repository) reads no catalog")


def growth(sizes: list[TableSize]) -> list[TableGrowth]:
    """Each table's first and last size in ``sizes`` (its own first and last day: a table created or dropped in
    the month has a shorter span)."""
    by: dict[tuple[str, str, str], list[TableSize]] = defaultdict(list)
    for s in sorted(sizes, key=lambda s: s.day):
        by[(s.dbname, s.schemaname, s.relname)].append(s)
    out = []
    for (db, schema, table), rows in by.items():
        first, last = rows[0], rows[-1]
        out.append(TableGrowth(dbname=db, schema_name=schema, table_name=table, first_day=first.day.isoformat(),
                               last_day=last.day.isoformat(), size_first=first.size_bytes, size_last=last.size_bytes,
                               growth_bytes=last.size_bytes - first.size_bytes,
                               growth_share=(last.size_bytes - first.size_bytes) / first.size_bytes
                               if first.size_bytes else None))
    return out


def largest_tables(ctx: Context, start: datetime, end: datetime) -> list[TableGrowth]:
    from opsd.adapters.stores.queries import QueryStore

    tz = ctx.settings.opsd.tz
    last = (end.astimezone(tz) - timedelta(seconds=1)).date()
    return growth(QueryStore(ctx.history.db).table_sizes(start.astimezone(tz).date(), last))
