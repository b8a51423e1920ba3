"""The fleet as ``opsd fleet status --json`` and the fleet report's JSON print it: typed views over the fleet's
records (docs/schemas/fleet-status.json, fleet-report.json), times in the configured timezone, durations in
seconds. The text, Markdown and HTML writers render the same views."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from typing_extensions import TypedDict

from opsd.actions.fleet.view import ClusterRow, FleetView
from opsd.core.fleet.month import ClusterMonth, FleetMonth
from opsd.core.records.fleet import Claim, DrillHostEntry, DrillSummary


class ClusterStatus(TypedDict):
    cluster: str
    stanza: str
    repository: str
    host: str  # the cluster host that published it
    database_bytes: int | None
    newest_backup_at: datetime | None
    last_drill: DrillSummary | None
    last_passed: DrillSummary | None
    due_at: datetime
    overdue: bool
    overdue_seconds: float | None
    claim: Claim | None  # a drill in flight
    too_large: bool  # no drill host alive has the scratch space for it


class FleetStatusView(TypedDict):
    fleet: str
    read_at: datetime
    timezone: str
    drill_every_seconds: float
    clusters: list[ClusterStatus]
    hosts: list[DrillHostEntry]
    overdue: list[str]
    too_large: list[str]
    claims: int


class ClusterVerdict(TypedDict):
    cluster: str
    stanza: str
    passed: int
    failed: int
    last: DrillSummary | None  # the last drill of the month, or before it
    overdue_days: list[str]  # YYYY-MM-DD in the configured timezone
    overdue_now: bool


class FleetTotals(TypedDict):
    clusters: int
    passed: int
    failed: int
    overdue_days: int
    overdue_now: int


class FleetReportView(TypedDict):
    fleet: str
    month: str
    timezone: str
    generated_at: datetime
    drill_every_seconds: float
    totals: FleetTotals
    clusters: list[ClusterVerdict]
    hosts: list[DrillHostEntry]


def _at(t: datetime | None, tz: ZoneInfo) -> datetime | None:
    return t.astimezone(tz) if t is not None else None


def _drill(d: DrillSummary | None, tz: ZoneInfo) -> DrillSummary | None:
    if d is None:
        return None
    return d.model_copy(update={"started_at": d.started_at.astimezone(tz), "finished_at": d.finished_at.astimezone(tz)})


def _claim(c: Claim | None, tz: ZoneInfo) -> Claim | None:
    return c.model_copy(update={"started_at": c.started_at.astimezone(tz)}) if c is not None else None


def _host(h: DrillHostEntry, tz: ZoneInfo) -> DrillHostEntry:
    return h.model_copy(update={"updated_at": h.updated_at.astimezone(tz)})


def cluster_status(r: ClusterRow, tz: ZoneInfo) -> ClusterStatus:
    e = r.entry
    return ClusterStatus(
        cluster=e.cluster, stanza=e.stanza, repository=e.repository.name, host=e.host,
        database_bytes=e.database_bytes, newest_backup_at=_at(e.newest_backup_at, tz),
        last_drill=_drill(r.drills.last, tz), last_passed=_drill(r.drills.last_passed, tz),
        due_at=r.due_at.astimezone(tz), overdue=r.overdue_by is not None,
        overdue_seconds=r.overdue_by.total_seconds() if r.overdue_by is not None else None,
        claim=_claim(r.claim, tz), too_large=r.too_large)


def status_view(v: FleetView, tz: ZoneInfo) -> FleetStatusView:
    return FleetStatusView(
        fleet=v.fleet, read_at=v.read_at.astimezone(tz), timezone=str(tz.key),
        drill_every_seconds=v.drill_every.total_seconds(),
        clusters=[cluster_status(r, tz) for r in v.clusters], hosts=[_host(h, tz) for h in v.hosts],
        overdue=v.overdue, too_large=[r.entry.cluster for r in v.clusters if r.too_large], claims=len(v.claims))


def cluster_verdict(c: ClusterMonth, tz: ZoneInfo) -> ClusterVerdict:
    return ClusterVerdict(cluster=c.cluster, stanza=c.stanza, passed=c.passed, failed=c.failed,
                          last=_drill(c.last, tz), overdue_days=[d.isoformat() for d in c.overdue_days],
                          overdue_now=c.overdue_now)


def report_view(m: FleetMonth, v: FleetView, tz: ZoneInfo) -> FleetReportView:
    totals = FleetTotals(clusters=len(m.clusters), passed=m.passed, failed=m.failed, overdue_days=m.overdue_days,
                         overdue_now=sum(1 for c in m.clusters if c.overdue_now))
    return FleetReportView(
        fleet=v.fleet, month=m.month, timezone=str(tz.key), generated_at=v.read_at.astimezone(tz),
        drill_every_seconds=v.drill_every.total_seconds(), totals=totals,
        clusters=[cluster_verdict(c, tz) for c in m.clusters], hosts=[_host(h, tz) for h in v.hosts])
