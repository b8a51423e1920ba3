"""Copies of production (drill scratch instances, side copies for restore --table, rehearsals): the record opsd
keeps of each while it lives, and the pure judgement of whether its job is still there."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from opsd.core.records.base import Part, Record

CopyState = Literal["running", "kept", "orphan", "expired"]


class CopyRecord(Record):
    """One copy, written before its files are restored and removed once they are gone. ``pid`` and
    ``pid_started`` (the kernel's start time of that process, in clock ticks) name the job that owns it: a
    reused pid is not the same job."""

    KIND: ClassVar[str] = "copy"
    id: str  # the directory's name under the scratch root
    purpose: str  # drill | table | catalog | rehearsal
    stanza: str
    directory: str
    port: int
    socket_dir: str
    host: str
    pid: int
    pid_started: int | None = None
    started_at: datetime
    expires_at: datetime | None = None  # a kept copy (--keep): stopped and removed after this
    kept: bool = False
    postmaster_pid: int | None = None
    # production's shared_preload_libraries the copy started without
    preload_dropped: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class CopyVerdict:
    record: CopyRecord
    state: CopyState
    why: str

    @property
    def leftover(self) -> bool:
        """To be stopped and removed: its job is gone (and it was not kept), or its keep expired."""
        return self.state in ("orphan", "expired")


def judge_copy(rec: CopyRecord, job_alive: bool, now: datetime) -> CopyVerdict:
    """What a recorded copy is now: ``job_alive`` says whether the process that made it still runs."""
    if rec.kept:
        if rec.expires_at is not None and now >= rec.expires_at:
            return CopyVerdict(rec, "expired", f"kept until {rec.expires_at:%Y-%m-%d %H:%M %Z}, expired")
        until = f" until {rec.expires_at:%Y-%m-%d %H:%M %Z}" if rec.expires_at else ""
        return CopyVerdict(rec, "kept", f"kept (--keep){until}")
    if job_alive:
        return CopyVerdict(rec, "running", f"its job (pid {rec.pid}) is running")
    return CopyVerdict(rec, "orphan", f"its job (pid {rec.pid}) is gone")


def unrecorded(directory: str, stanza: str = "?") -> CopyVerdict:
    """A scratch instance directory no record names (left by an opsd before copies were recorded, or a record
    lost with the state file): an orphan."""
    rec = CopyRecord(id=directory.rsplit("/", 1)[-1], purpose="unknown", stanza=stanza, directory=directory,
                     port=0, socket_dir="", host="", pid=0, started_at=datetime.fromtimestamp(0).astimezone())
    return CopyVerdict(rec, "orphan", "no record names it (its job is gone)")


class CopyView(Part):
    """``opsd scratch list --json``: one copy of production on this host and what it is now."""

    id: str
    purpose: str
    stanza: str
    state: CopyState
    why: str
    directory: str
    port: int
    pid: int
    started_at: datetime
    expires_at: datetime | None = None
    preload_dropped: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, v: CopyVerdict) -> CopyView:
        r = v.record
        return cls(id=r.id, purpose=r.purpose, stanza=r.stanza, state=v.state, why=v.why, directory=r.directory,
                   port=r.port, pid=r.pid, started_at=r.started_at, expires_at=r.expires_at,
                   preload_dropped=list(r.preload_dropped))
