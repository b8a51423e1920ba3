"""The rows of the monthly report's tables (typed; they are written into the report's JSON)."""

from __future__ import annotations

from datetime import datetime

from typing_extensions import TypedDict  # pydantic reads these on Python 3.11


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
