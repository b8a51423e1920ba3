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


# Why a relation was not verified, when that is not a problem (docs/drills.md says what a DBA does about each)
SKIP_REASONS = ("no_connections", "no_storage", "foreign_table", "unlogged", "not_populated", "invalid_index",
                "access_method")


class DatabaseCounts(Part):
    """What became of every relation of one database: checked (every check that applies passed), skipped by
    reason (``SKIP_REASONS``), not checked (opsd's own tooling failed there: a gap, never damage), corrupt.
    ``refused``: the whole database was skipped for that reason (it refuses connections, like template0)."""

    model_config = ConfigDict(frozen=False, extra="ignore", defer_build=True)
    database: str
    checked: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)
    not_checked: int = 0
    corrupt: int = 0
    refused: str | None = None
    error: str | None = None  # its relations could not even be listed (then none is counted): the cause

    @property
    def relations(self) -> int:
        return self.checked + sum(self.skipped.values()) + self.not_checked + self.corrupt


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
    databases: list[DatabaseCounts] = Field(default_factory=list)  # empty in drills recorded before the counts

    def total(self, what: str) -> int:
        """``checked``, ``not_checked`` or ``corrupt`` over every database."""
        return sum(int(getattr(d, what)) for d in self.databases)

    def skipped(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.databases:
            for reason, n in d.skipped.items():
                out[reason] = out.get(reason, 0) + n
        return out

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
