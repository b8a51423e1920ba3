"""The readers the "Service levels" section takes its figures from: the query objectives per day (the duration
log's counts against pg_stat_statements' calls), the live index report, and the tables' daily sizes."""

from __future__ import annotations

from datetime import datetime

from opsd.context import Context
from opsd.core.records.indexes import IndexReport
from opsd.core.records.service import ObjectiveMonth, TableGrowth
from opsd.errors import OpsdError


def objectives(ctx: Context, start: datetime, end: datetime) -> list[ObjectiveMonth]:
    raise OpsdError("the query objectives are not counted by this opsd yet")


def index_report(ctx: Context) -> IndexReport:
    raise OpsdError("the index report is not built by this opsd yet")


def largest_tables(ctx: Context, start: datetime, end: datetime) -> list[TableGrowth]:
    raise OpsdError("table sizes are not recorded by this opsd yet")
