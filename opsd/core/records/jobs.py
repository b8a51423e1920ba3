"""What each job saves as its details: backup, check, verify, restore and report results (the drill's is in
``drill.py``). Field names are the ones opsd saved before records were versioned, so version-0 rows load."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field, computed_field

from opsd.core.records.base import Part, Record
from opsd.core.records.checks import CheckResult, Status
from opsd.core.units import format_duration, human_bytes


class BackupResult(Record):
    KIND: ClassVar[str] = "backup"
    label: str
    type: str
    requested_type: str
    size: int
    delta: int
    repo_size: int
    repo_delta: int
    duration: float
    wal_start: str | None = None
    wal_stop: str | None = None

    def summary(self) -> str:
        note = f" (asked for {self.requested_type}: pgBackRest had no prior backup)" \
            if self.type != self.requested_type else ""
        return (f"backup {self.label} ({self.type}{note}): database {human_bytes(self.size)}, "
                f"copied {human_bytes(self.delta)}, stored {human_bytes(self.repo_delta)}, "
                f"took {format_duration(self.duration)}")


class ArchiverFacts(Part):
    """pg_stat_archiver and the ``.ready`` files at a check: read by metrics and the monthly report."""

    archived_count: int
    failed_count: int
    last_archived_wal: str | None = None
    last_failed_wal: str | None = None
    ready_count: int | None = None
    oldest_ready_age: float | None = None  # seconds the oldest .ready segment has waited
    last_archived_at: float | None = None  # unix time


class NewestBackup(Part):
    type: str
    size: int
    repo_size: int
    stop: float  # unix time


class RepositoryFacts(Part):
    backups: int
    lock_held: bool
    oldest_backup_stop: float | None = None  # unix time: the start of the recoverable window
    newest_backup: NewestBackup | None = None


class EndpointProbe(Part):
    """A few requests straight to the repository's S3 endpoint, without retries: what pgBackRest's own retries
    hide (throttling, 5xx, slowness) before it turns into failed archiving."""

    endpoint: str
    requests: int
    failed: int
    errors: dict[str, int] = Field(default_factory=dict)  # "503 SlowDown" / "EndpointConnectionError" -> count
    median_latency: float | None = None  # seconds
    max_latency: float | None = None

    def error_summary(self) -> str:
        return ", ".join(f"{what} x{n}" for what, n in sorted(self.errors.items(), key=lambda kv: -kv[1]))


class BackupForecast(Part):
    """The next full backup against the backup window, at a check (unix times; bytes; bytes/s)."""

    start: float
    end: float
    seconds: float
    size: int
    rate: float
    growth_per_day: float
    fulls: int
    window: str | None = None
    window_end: float | None = None  # the end of the window the next full starts in (None: no window set)


class CheckReport(Record):
    """The check job: every result, the worst status, and the facts other readers use."""

    KIND: ClassVar[str] = "check"
    results: list[CheckResult]
    worst: Status
    archiver: ArchiverFacts | None = None
    repository: RepositoryFacts | None = None
    endpoint: EndpointProbe | None = None
    forecast: BackupForecast | None = None

    @classmethod
    def upgrade(cls, raw: dict[str, Any], version: int) -> dict[str, Any]:
        """Version 0 kept the archiver and repository facts only as the evidence of those two checks."""
        by_name = {r.get("name"): r.get("details") or {} for r in raw.get("results") or []}
        out = dict(raw)
        if "archive.archiver" in by_name and by_name["archive.archiver"].get("archived_count") is not None:
            out.setdefault("archiver", by_name["archive.archiver"])
        if "repository" in by_name and by_name["repository"].get("backups") is not None:
            out.setdefault("repository", by_name["repository"])
        return out


class VerifyItem(Part):
    kind: str  # archive | backup
    name: str  # archive id (15-1) or backup label
    status: str  # valid / invalid / ... for backups, ok / error for archives
    checked: int
    valid: int
    problems: dict[str, int] = Field(default_factory=dict)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return self.checked == self.valid and not any(self.problems.values()) and self.status in ("valid", "ok")


class VerifyResult(Record):
    KIND: ClassVar[str] = "verify"
    stanza: str
    status: str
    items: tuple[VerifyItem, ...]
    damaged: tuple[str, ...] = ()  # the log lines naming damaged files

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return self.status == "ok" and all(i.ok for i in self.items)

    def summary(self) -> str:
        backups = [i for i in self.items if i.kind == "backup"]
        wal = sum(i.checked for i in self.items if i.kind == "archive")
        text = f"stanza {self.stanza}: {self.status}; {len(backups)} backup(s), {wal} WAL file(s) checked"
        bad = [i for i in self.items if not i.ok]
        if bad:
            text += "; damaged: " + ", ".join(
                f"{i.kind} {i.name} ({', '.join(f'{k} {v}' for k, v in i.problems.items() if v) or i.status})"
                for i in bad)
        if self.damaged:
            text += "; first: " + self.damaged[0]
        return text


class RestoreTarget(Part):
    type: str  # time | lsn | xid | immediate
    value: str
    timeline: str  # a number, or "latest"


class RestoreResult(Record):
    KIND: ClassVar[str] = "restore"
    backup: str
    destination: str
    restored_bytes: int
    restore_seconds: float
    restore_rate: float
    started: bool
    recovery_seconds: float | None = None
    replay_rate: float | None = None
    last_replayed_xact: str | None = None
    state: str  # "restored (not started)", "promoted", "paused at target"
    moved_aside: str | None = None
    log_file: str | None = None
    last_replayed_at: datetime | None = None
    target: RestoreTarget | None = None  # what was asked, as the plan showed it
    wal_bytes: int | None = None
    tablespaces: list[str] = Field(default_factory=list)  # "<name>: <source> -> <where it went>"
    tablespaces_moved_aside: list[str] = Field(default_factory=list)  # in place: the old version directories

    def summary(self) -> str:
        parts = [f"restored {self.backup} into {self.destination}: {human_bytes(self.restored_bytes)} in "
                 f"{format_duration(self.restore_seconds)} ({human_bytes(self.restore_rate)}/s)"]
        if self.recovery_seconds is not None:
            rate = f", WAL replay {human_bytes(self.replay_rate)}/s" if self.replay_rate else ""
            parts.append(f"recovery {format_duration(self.recovery_seconds)}{rate}")
        parts.append(self.state)
        if self.last_replayed_xact:
            parts.append(f"last replayed transaction {self.last_replayed_xact}")
        if self.moved_aside:
            parts.append(f"previous data directory kept at {self.moved_aside}")
        if self.tablespaces_moved_aside:
            parts.append(f"previous tablespace directories kept at {', '.join(self.tablespaces_moved_aside)}")
        return "; ".join(parts)


class ReportResult(Record):
    KIND: ClassVar[str] = "report"
    month: str
    files: list[str]
    uploaded: list[str] = Field(default_factory=list)
    recoverable_all_month: bool | None = None
    actions: list[str] = Field(default_factory=list)
