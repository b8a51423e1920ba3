"""The monthly report's data: the month report, its sections and the rows of its tables (typed; all of it is
written into the report's JSON, docs/schemas/report.json). Built by data.py, read by items.py and the renderers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from typing_extensions import TypedDict  # pydantic reads these on Python 3.11

from opsd.core.records.service import ServiceLevels


class RepoBackup(TypedDict):
    label: str
    type: str
    stop: datetime


class RepoWindow(TypedDict):
    seen_at: datetime
    as_of_month_end: bool
    earliest_recoverable: datetime | None
    full_backups: int
    retention_full: int | None
    backups: int


class WindowNight(TypedDict):
    """A full backup of the month against the backup window it started in."""

    started_at: datetime
    ended_at: datetime
    seconds: float
    window_end: datetime | None  # None: it started outside the window
    margin: float | None  # seconds between its end and the window's close (negative: it overran)


class BackupFailure(TypedDict):
    started_at: datetime
    job: str
    error: str | None


class VerifyDamage(TypedDict):
    started_at: datetime
    error: str | None
    damaged: list[str]


class Blocker(TypedDict):
    who: str  # user@database (application)
    incidents: int
    longest_wait: float
    most_waiters: int
    idle_in_transaction: int


class LockWait(TypedDict):
    opened_at: datetime
    who: str
    wait: float
    summary: str


class PoolPeak(TypedDict):
    pool: str
    incidents: int
    peak_maxwait: float


@dataclass(frozen=True)
class RepoFacts:
    """The repository as seen when the report is made (None when unreachable)."""

    backups: list[RepoBackup]
    retention_full: int | None
    seen_at: datetime


@dataclass
class MonthVerdict:
    has_data: bool
    recoverable_all_month: bool
    statement: str
    drills_run: int
    drills_passed: int
    drills_failed: int
    rto_worst: float | None
    rto_median: float | None
    rto_target: float
    rpo_worst: float | None
    rpo_target: float
    longest_unproven: float | None  # seconds in the month without a passing drill younger than drill.max_age
    restorability_age_at_end: float | None  # age of the last passing drill at month end
    max_age: float
    # the month's last drill: relations proven (checked), and not proven although they hold data (None: no drill,
    # or one recorded before opsd counted relations)
    relations_proven: int | None = None
    relations_unproven: int | None = None


@dataclass
class DrillRow:
    id: int
    started_at: datetime
    host: str  # where it ran: this cluster's host, or the fleet drill host it was imported from (trigger fleet)
    stanza: str
    passed: bool
    target: str | None
    target_mode: str | None
    backup: str | None
    rto: float | None
    restore_seconds: float | None
    recovery_seconds: float | None
    verify_seconds: float | None
    restore_rate: float | None
    replay_rate: float | None
    rpo: float | None
    checks: dict[str, str]
    failure: str | None
    # relations: checked (proven), skipped by reason, not checked, corrupt; None: recorded before these counts
    checked: int | None = None
    skipped: dict[str, int] | None = None
    not_checked: int | None = None
    corrupt: int | None = None


@dataclass
class BackupTypeStats:
    type: str
    ok: int
    failed: int
    busy: int
    copied: int  # bytes copied by these backups (pgBackRest's delta)
    largest: int  # largest database size backed up
    median_duration: float | None
    longest_duration: float | None


@dataclass
class BackupSection:
    by_type: list[BackupTypeStats]
    failures: list[BackupFailure]
    archive_checks: int
    archive_critical: int
    longest_archive_lag: float | None  # oldest .ready age seen by the check job (s)
    archive_failures: int | None  # growth of pg_stat_archiver.failed_count over the month
    window: RepoWindow | None  # earliest recoverable, full backups vs retention (at report time)
    verify_runs: int
    verify_failed: int
    verify_damage: list[VerifyDamage]
    backup_window: str | None = None  # [schedule] backup_window
    nights: list[WindowNight] = field(default_factory=list)  # each full backup against it


class SlotPeak(TypedDict):
    slot: str
    incidents: int
    peak_retained_bytes: int


@dataclass
class HealthSummary:
    lock_incidents: int
    pool_incidents: int
    connection_incidents: int
    probe_incidents: int
    top_blockers: list[Blocker]
    longest_lock_waits: list[LockWait]
    pool_peaks: list[PoolPeak]
    connection_peak: float | None
    slot_incidents: int = 0  # inactive replication slots that retained too much WAL
    slot_peaks: list[SlotPeak] = field(default_factory=list)
    replay_lag_peak: float | None = None  # longest standby replay lag seen by the sampler (s)


@dataclass
class Series:
    name: str
    unit: str
    points: list[tuple[str, float]]  # (x label or ISO time, value)
    target: float | None = None  # drawn as a line: RTO target, archive lag limit


class RehearsalRow(TypedDict):
    """A migration rehearsal of the month (docs/rehearse.md)."""

    started_at: datetime
    dbname: str
    verdict: str  # PASSED | HAZARDS | FAILED
    migration_seconds: float | None
    hazards: list[str]  # their codes
    rollback: str  # exact | not exact | none
    why: str | None  # the first reason it failed


@dataclass
class MonthReport:
    month: str
    timezone: str
    generated_at: datetime
    period_start: datetime
    period_end: datetime
    verdict: MonthVerdict
    drills: list[DrillRow]
    backups: BackupSection
    health: HealthSummary
    trends: dict[str, Series]
    actions: list[str] = field(default_factory=list)
    rehearsals: list[RehearsalRow] = field(default_factory=list)
    service: ServiceLevels | None = None  # "Service levels" (actions/report/service.py); None: [queries] off
