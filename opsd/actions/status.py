"""``opsd status``: the last run of each job, its next due time, and what is overdue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from opsd.core.role import BACKUP_JOBS, JOBS, role_jobs
from opsd.core.schedule import Schedule

if TYPE_CHECKING:  # 'opsd status' starts in a quarter of a second: no adapter, no pydantic record it does not read
    from opsd.context import Context
    from opsd.core.records.runs import Run

CHECK_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class JobStatus:
    job: str
    schedule: str  # "" when disabled
    last: Run | None
    last_ok: Run | None
    previous_due: datetime | None
    next_due: datetime | None
    overdue: bool

    @property
    def enabled(self) -> bool:
        return bool(self.schedule)


def schedule_key(job: str) -> str:
    return BACKUP_JOBS.get(job, job)


def is_overdue(sched: Schedule, last_ok: Run | None, now: datetime, grace: timedelta) -> tuple[bool, datetime | None]:
    """Overdue: the schedule fired more than ``grace`` ago and no successful run started since (about) then."""
    if sched.kind == "interval":
        assert sched.interval is not None
        due = (last_ok.started_at + sched.interval) if last_ok else None
        late = last_ok is None or now - last_ok.started_at > sched.interval * 2 + grace
        return late, due
    prev = sched.previous_fire(now)
    if prev is None:
        return False, None
    tolerance = timedelta(minutes=5)
    done = last_ok is not None and last_ok.started_at >= prev - tolerance
    return (not done and now - prev > grace), prev


def job_status(ctx: Context) -> list[JobStatus]:
    now = ctx.now().astimezone(ctx.settings.opsd.tz)
    out = []
    runs = ctx.history.latest(tuple(JOBS), ("ok", "skipped"))
    for job in JOBS:
        sched = ctx.settings.schedule.parsed(schedule_key(job))
        if job not in role_jobs(ctx.settings.opsd.role):
            sched = None
        last, last_ok = runs[job]
        if sched is None:
            out.append(JobStatus(job, "", last, last_ok, None, None, False))
            continue
        grace = CHECK_GRACE if job == "check" else ctx.settings.check.backup_grace
        overdue, prev = is_overdue(sched, last_ok, now, grace)
        nxt = sched.trigger(ctx.settings.opsd.tz).get_next_fire_time(None, now)
        out.append(JobStatus(job, sched.expr, last, last_ok, prev, nxt, overdue))
    return out + manual_jobs(ctx)


MANUAL_JOBS = ("rehearse",)  # run by hand only: their last run is shown, never overdue


def manual_jobs(ctx: Context) -> list[JobStatus]:
    runs = ctx.history.latest(MANUAL_JOBS, ("ok", "skipped"))
    return [JobStatus(job, "", *runs[job], None, None, False) for job in MANUAL_JOBS if runs[job][0] is not None]
