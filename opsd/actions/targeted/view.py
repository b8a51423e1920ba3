"""The table restore plan as plain data (the console and --json both render this)."""

from __future__ import annotations

from typing_extensions import TypedDict

from opsd.actions.restore.view import PlanView, VerdictView, describe
from opsd.actions.targeted.table import TablePlan


class TableSizeView(TypedDict):
    table: str
    live_bytes: int | None  # null: not in the live catalog


class TablePlanView(TypedDict):
    restore: PlanView
    tables: list[TableSizeView]
    into_schema: str | None
    into_file: str | None
    dbname: str
    scratch: str
    scratch_bytes: int | None  # what the scratch copy takes: its databases' files and the WAL replayed (a copy of
    # one database, copies/partial.py), or the backup's size (restore.backup_size: the whole cluster)
    verdicts: list[VerdictView]  # production's side: the schema is new, the file absent
    refused: bool


def table_plan_view(tp: TablePlan) -> TablePlanView:
    r = tp.request
    return TablePlanView(
        restore=describe(tp.restore), tables=[TableSizeView(table=s.name, live_bytes=s.bytes) for s in tp.sizes],
        into_schema=r.into_schema, into_file=str(r.into_file) if r.into_file else None, dbname=r.dbname,
        scratch=str(tp.restore.request.dest),
        scratch_bytes=tp.scratch_bytes,
        verdicts=[VerdictView(level=v.level, message=v.message) for v in tp.verdicts], refused=tp.refused)
