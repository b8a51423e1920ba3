"""The monthly report's "Service levels" section: each success metric of the platform answered with what opsd
measured in the month (query objectives per day, availability, recovery tests, migrations rehearsed, integrity,
storage). A part whose data is missing says what is missing and why, never a clean verdict. The figures read
live (invalid indexes, constraints not validated, unused index bytes: the catalogs when the report is made) say
when they were read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from opsd.actions.report import service_parts as parts
from opsd.actions.report.rows import MonthReport
from opsd.adapters.stores.availability import AvailabilityStore
from opsd.context import Context
from opsd.core.availability import month as availability_month
from opsd.core.records.indexes import IndexReport
from opsd.core.records.service import Availability, ObjectiveMonth, ServiceLevels, TableGrowth
from opsd.core.units import format_duration
from opsd.errors import OpsdError
from opsd.log import get_logger


@dataclass(frozen=True)
class Sources:
    """Where the figures other than the report's own come from (the sample report and tests pass their own):
    ``objectives`` (per objective, per day), ``indexes`` (the live index report), ``tables`` (the largest tables
    and their growth in [start, end))."""

    objectives: Callable[[Context, datetime, datetime], list[ObjectiveMonth]]
    indexes: Callable[[Context], IndexReport]
    tables: Callable[[Context, datetime, datetime], list[TableGrowth]]


def default_sources(*, live: bool = True) -> Sources:
    """The readers of the state store, and the live index report unless ``live`` is False (an offline report,
    made without the repository: no catalog is read either, the parts that need one say so)."""
    from opsd.actions.report import service_sources as src  # the other readers: imported when used

    return Sources(objectives=src.objectives, indexes=src.index_report if live else src.offline,
                   tables=src.largest_tables)


def _availability(ctx: Context, start: datetime, end: datetime) -> tuple[Availability, list[str]]:
    from opsd.actions.health.sample import availability_bound

    now = ctx.now()
    bound = availability_bound(ctx.settings, now)
    spans = AvailabilityStore(ctx.history.db).spans(start, end)
    a = availability_month(spans, start, end, now=now, target=ctx.settings.queries.availability_target,
                           bound=bound)
    missing = []
    if not ctx.settings.schedule.health.strip():
        missing.append("[schedule] health is off: no probe, so nothing is measured")
    if not spans:
        missing.append("no health probe was recorded in the month: the daemon was not running (or ran an opsd "
                       "that did not record availability yet)")
    elif a.unknown_seconds > 0:
        missing.append(f"{format_duration(a.unknown_seconds)} of the month unknown: no probe within "
                       f"{format_duration(bound)} (the daemon stopped, the host was down); never counted as up")
    return a, missing


def _index_report(ctx: Context, sources: Sources) -> IndexReport | str:
    """The live index report, or why it could not be made (one line)."""
    try:
        report = sources.indexes(ctx)
    except OpsdError as e:
        get_logger().warning("report.indexes_unreadable", error=str(e))
        return str(e)
    from opsd.actions.report.index_figures import save

    save(ctx, report)  # what metrics read of it (opsd_invalid_indexes, opsd_unused_index_bytes)
    return report


def gather(ctx: Context, report: MonthReport, start: datetime, end: datetime,
           sources: Sources | None = None) -> ServiceLevels:
    """The section for the month [start, end) of ``report`` (its drills and rehearsals are the report's)."""
    src = sources or default_sources()
    objectives = _objectives(ctx, src, start, end)
    availability, a_missing = _availability(ctx, start, end)
    indexes = _index_report(ctx, src)
    tables, t_missing = _tables(ctx, src, start, end)
    levels = ServiceLevels(
        answers=[], objectives=objectives, availability=availability, availability_missing=a_missing,
        recovery=parts.recovery(report), rehearsals=parts.rehearsals(report),
        integrity=parts.integrity(indexes, report, end),
        storage=parts.storage(indexes, tables, t_missing))
    return levels.model_copy(update={"answers": parts.answers(ctx.settings, levels, report)})


def _objectives(ctx: Context, src: Sources, start: datetime, end: datetime) -> list[ObjectiveMonth]:
    try:
        return src.objectives(ctx, start, end)
    except OpsdError as e:
        get_logger().warning("report.objectives_unreadable", error=str(e))
        return [ObjectiveMonth(name=o.name, threshold_seconds=o.threshold.total_seconds(), target=o.target,
                               database=o.database, role=o.role,
                               missing=[f"the objective's counts could not be read: {e}"])
                for o in ctx.settings.queries.objectives]


def _tables(ctx: Context, src: Sources, start: datetime, end: datetime) -> tuple[list[TableGrowth], list[str]]:
    try:
        tables = src.tables(ctx, start, end)
    except OpsdError as e:
        return [], [f"table sizes could not be read: {e}"]
    if not tables:
        return [], ["no table size was recorded in the month: the daemon's query snapshots did not run "
                    "([queries] enabled, [schedule] queries)"]
    return tables, []
