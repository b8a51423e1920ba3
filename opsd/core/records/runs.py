"""A job run as the history keeps it, and a health incident as the health store keeps it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import ConfigDict, ValidationError, computed_field
from pydantic.dataclasses import dataclass

from opsd.core.records.base import Note, Record, Skipped, Unreadable
from opsd.core.records.drill import DrillResult
from opsd.core.records.health import IncidentMoment
from opsd.core.records.jobs import BackupResult, CheckReport, ReportResult, RestoreResult, VerifyResult
from opsd.core.records.rehearse import RehearsalResult
from opsd.core.records.targeted import RestorePoint, TableRestoreResult


class Outcome(StrEnum):
    """How a job run ended (``running`` until it does)."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    BUSY = "busy"  # another backup, restore or drill held the lock
    INTERRUPTED = "interrupted"  # a signal, a daemon stop, or the process died


OUTCOMES = tuple(o.value for o in Outcome)
R = TypeVar("R", bound=Record)


AnyRecord = (BackupResult | CheckReport | VerifyResult | RestoreResult | ReportResult | DrillResult | RestorePoint
             | TableRestoreResult | RehearsalResult | Skipped | Note | Unreadable)


@dataclass(frozen=True, config=ConfigDict(defer_build=True))  # built at first use: fast start-up
class Run:
    """A job run as the history keeps it (and as ``info``/``status --json`` print it)."""

    id: int
    job: str
    trigger: str
    host: str
    pid: int
    started_at: datetime
    finished_at: datetime | None
    outcome: Outcome
    error: str | None
    details: AnyRecord

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration(self) -> float | None:
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else None

    def details_as(self, kind: type[R]) -> R | None:
        """The details if they are a ``kind`` (a failed backup has no BackupResult), else None."""
        return self.details if isinstance(self.details, kind) else None


@dataclass(frozen=True, config=ConfigDict(defer_build=True))
class Incident:
    id: int
    key: str
    kind: str  # lock | pool | connections | probe
    opened_at: datetime
    last_seen: datetime
    closed_at: datetime | None
    summary: str  # of the worst moment
    peak: float  # longest wait (s), pool maxwait (s), utilisation (%)
    worst: IncidentMoment

    @computed_field  # type: ignore[prop-decorator]
    @property
    def open(self) -> bool:
        return self.closed_at is None


KINDS: dict[str, type[Record]] = {c.KIND: c for c in (
    Note, Skipped, BackupResult, CheckReport, VerifyResult, RestoreResult, ReportResult, DrillResult, RestorePoint,
    TableRestoreResult, RehearsalResult)}
_V0_MARK = {"backup": "label", "check": "results", "verify": "items", "restore": "destination", "report": "month",
            "drill": "target_mode"}


def _v0_kind(job: str, raw: dict[str, Any]) -> str:
    """Rows saved before records were versioned carry no kind: the job and a key it always wrote decide."""
    kind = "backup" if job.startswith("backup-") else job
    return kind if _V0_MARK.get(kind, "\0") in raw else "note"


def load_details(job: str, kind: str | None, version: int, raw: dict[str, Any]) -> Record:
    cls = KINDS.get(kind or _v0_kind(job, raw))
    try:
        if cls is None:  # written by a newer opsd: keep what every run has
            return Note.model_validate(raw)
        return cls.load(raw, version)
    except ValidationError as e:
        return Unreadable(problem=f"{cls.KIND if cls else kind} record: {e.error_count()} problem(s), first: "
                                  f"{e.errors()[0]['msg']}")
