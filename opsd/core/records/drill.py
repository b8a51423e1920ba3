"""The drill's result: built step by step while the drill runs, saved as the drill run's details."""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict, Field, computed_field

from opsd.core.records.base import Part, Record
from opsd.core.records.checks import CRITICAL, WARNING, CheckResult
from opsd.core.units import format_duration


class DrillPhases(Part):
    """Seconds per phase (RTO = plan + restore + recovery), and the measured rates."""

    model_config = ConfigDict(frozen=False, extra="ignore", defer_build=True)
    plan_seconds: float | None = None
    restore_seconds: float | None = None
    recovery_seconds: float | None = None
    verify_seconds: float | None = None  # the whole verification; its timed steps follow
    databases_seconds: float | None = None
    amcheck_seconds: float | None = None
    readable_seconds: float | None = None
    total_seconds: float | None = None
    restore_bytes: int | None = None
    restore_rate: float | None = None  # bytes/s
    wal_bytes: int | None = None
    replay_rate: float | None = None  # bytes/s


class DrillResult(Record):
    model_config = ConfigDict(frozen=False, extra="ignore", defer_build=True)
    KIND: ClassVar[str] = "drill"
    stanza: str
    target_mode: str
    target: str | None = None
    target_why: str = ""
    backup: str | None = None
    backup_type: str | None = None
    scratch: str | None = None
    port: int | None = None
    phases: DrillPhases = Field(default_factory=DrillPhases)
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    checks: list[CheckResult] = Field(default_factory=list)
    kept: bool = False
    cleaned: list[str] = Field(default_factory=list)
    log_file: str | None = None

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == CRITICAL]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        return not self.failed

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failed_checks(self) -> list[str]:
        return [c.name for c in self.failed]

    def summary(self) -> str:
        head = f"drill of {self.stanza} to {self.target or '?'} ({self.target_mode})"
        if not self.passed:
            return f"{head} FAILED: " + "; ".join(f"{c.name}: {c.message}" for c in self.failed)
        warns = [c.name for c in self.checks if c.status == WARNING]
        rto = format_duration(self.rto_seconds) if self.rto_seconds is not None else "?"
        rpo = format_duration(self.rpo_seconds) if self.rpo_seconds is not None else "?"
        return (f"{head} passed {len(self.checks)} checks from backup {self.backup}: RTO {rto}, RPO {rpo}"
                + (f"; warnings: {', '.join(warns)}" if warns else ""))
