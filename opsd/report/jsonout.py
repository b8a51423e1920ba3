"""JSON for ``--json`` and the monthly report. What every ``--json`` prints is a type here: the records of
opsd/core/records and a few views over them. Output goes through :func:`dump` (pydantic serialisation of exactly
these types), and scripts/schemas writes the JSON Schema of each into docs/schemas/, where a test keeps it
current: the documented shape is the printed one. ``dumps`` (untyped) is left for ``config show``."""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, NotRequired

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from opsd.actions.rehearse.view import RehearsePlanView
from opsd.actions.report.rows import MonthReport
from opsd.actions.restore.view import PlanView
from opsd.actions.restore.window import Bound, Interval
from opsd.actions.status import JobStatus
from opsd.actions.targeted.view import TablePlanView
from opsd.adapters.pgbackrest import StanzaInfo
from opsd.core.records.base import Skipped
from opsd.core.records.copies import CopyView
from opsd.core.records.drill import DrillResult
from opsd.core.records.health import HealthSample
from opsd.core.records.indexes import IndexReport
from opsd.core.records.jobs import BackupResult, CheckReport, RestoreResult, VerifyResult
from opsd.core.records.objectives import ObjectiveReport
from opsd.core.records.rehearse import RehearsalResult
from opsd.core.records.runs import Incident, Run
from opsd.core.records.targeted import RestorePoint, TableRestoreResult, WalChange
from opsd.core.wal import Switch
from opsd.report.fleet_views import FleetReportView, FleetStatusView


class DrillRunView(DrillResult):
    """A drill from the history: the run's id, host, trigger, times, outcome and error beside its result. A drill
    that ran on a drill host of the fleet and was imported from the repository: that host, trigger ``fleet``."""

    id: int
    host: str
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    error: str | None


def drill_run_view(r: Run) -> DrillRunView:
    d = r.details_as(DrillResult) or DrillResult(stanza="", target_mode="", hint=r.details.hint)
    return DrillRunView(**dict(d), id=r.id, host=r.host, trigger=r.trigger, started_at=r.started_at,
                        finished_at=r.finished_at, outcome=r.outcome, error=r.error)


class TimelinesView(TypedDict):
    current: int  # the newest timeline with WAL in the repository
    switches: list[Switch]  # from the archived .history files, each with its LSN and when it reached the archive


class InfoView(TypedDict):
    stanza: StanzaInfo
    timelines: TimelinesView
    recent_runs: list[Run]


GapView = TypedDict("GapView", {"timeline": int, "from": str, "to": str, "missing": int})


class WindowView(TypedDict):
    intervals: list[Interval]
    gaps: list[GapView]
    unusable_backups: list[str]
    switches: list[Switch]
    earliest: Bound | None
    latest: Bound | None


class RestoreView(TypedDict):
    plan: PlanView
    result: NotRequired[RestoreResult]


class TableRestoreView(TypedDict):
    plan: TablePlanView
    result: NotRequired[TableRestoreResult]


class RehearseView(TypedDict):
    plan: RehearsePlanView
    result: NotRequired[RehearsalResult]


class SampleRecorded(TypedDict):
    sample: HealthSample
    opened: list[str]
    closed: list[str]


class StatusView(TypedDict):
    job: str
    schedule: str
    enabled: bool
    overdue: bool
    previous_due: datetime | None
    next_due: datetime | None
    last: Run | None
    last_ok: Run | None


def status_view(s: JobStatus) -> StatusView:
    return StatusView(job=s.job, schedule=s.schedule, enabled=s.enabled, overdue=s.overdue,
                      previous_due=s.previous_due, next_due=s.next_due,
                      last=s.last, last_ok=s.last_ok)


# command -> the type its --json prints (the key names docs/schemas/<key>.json)
OUTPUTS: dict[str, Any] = {
    "backup": BackupResult | Skipped,
    "info": InfoView,
    "check": CheckReport,
    "window": WindowView,
    "restore": RestoreView,
    "drill-run": DrillResult | Skipped,
    "drill-list": list[DrillRunView],
    "drill-show": DrillRunView,
    "verify": VerifyResult | Skipped,
    "health-sample": HealthSample,
    "health-recorded": SampleRecorded,
    "health-incidents": list[Incident],
    "status": list[StatusView],
    "report": MonthReport,
    "restore-point": RestorePoint,
    "restore-point-list": list[RestorePoint],
    "wal-find": list[WalChange],
    "restore-table": TableRestoreView,
    "rehearse": RehearseView,
    "scratch-list": list[CopyView],
    "fleet-status": FleetStatusView,
    "fleet-report": FleetReportView,
    "queries": ObjectiveReport,
    "indexes": IndexReport,
}


@cache
def adapter(name: str) -> TypeAdapter[Any]:
    return TypeAdapter(OUTPUTS[name])


def dump(name: str, value: Any) -> str:
    """``value`` as JSON in the shape of OUTPUTS[name]; a value of another shape is a bug (pydantic warns).
    Times keep Python's ISO form (``+00:00``, as opsd always printed them), durations are seconds."""
    strict = os.environ.get("OPSD_STRICT_JSON") == "1"  # the test suite: a shape mismatch fails the test
    data = adapter(name).dump_python(value, mode="python", warnings="error" if strict else "warn")
    return json.dumps(data, default=_default, indent=2)


def schema(name: str) -> dict[str, Any]:
    s = adapter(name).json_schema(mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"opsd/{name}.json",
            "title": f"opsd {name.replace('-', ' ')} --json", **s}


# --------------------------------------------------------------------------- untyped (config show only)
def _default(o: Any) -> Any:
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return {f.name: getattr(o, f.name) for f in dataclasses.fields(o)}
    if isinstance(o, datetime):
        return o.isoformat()
    if isinstance(o, timedelta):
        return o.total_seconds()
    if isinstance(o, Path | set | frozenset):
        return str(o) if isinstance(o, Path) else sorted(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=_default, indent=2, sort_keys=False)
