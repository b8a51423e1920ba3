"""Records opsd writes and reads back: runs of jobs and health incidents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

OUTCOMES = ("running", "ok", "failed", "skipped", "busy", "interrupted")


@dataclass(frozen=True)
class Run:
    id: int
    job: str
    trigger: str
    host: str
    pid: int
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    error: str | None
    details: dict[str, Any]

    @property
    def duration(self) -> float | None:
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else None


@dataclass(frozen=True)
class Incident:
    id: int
    key: str
    kind: str  # lock | pool | connections | probe
    opened_at: datetime
    last_seen: datetime
    closed_at: datetime | None
    summary: str  # of the worst moment
    peak: float  # longest wait (s), pool maxwait (s), utilisation (%)
    worst: dict[str, Any]  # the worst tree / pool / report seen

    @property
    def open(self) -> bool:
        return self.closed_at is None
