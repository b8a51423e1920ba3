"""The scheduler's view of jobs: which are enabled, their bodies, and a wrapper that never lets a failure
escape into APScheduler (a failing job never kills the daemon)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opsd.actions.backup import backup_job
from opsd.actions.checks import check_job
from opsd.actions.jobs import BACKUP_JOBS, JOBS, JobOutcome, run_job
from opsd.context import Context
from opsd.log import get_logger
from opsd.schedule import Schedule


@dataclass(frozen=True)
class JobSpec:
    job: str
    schedule: Schedule


def enabled_jobs(ctx: Context) -> list[JobSpec]:
    out = []
    for job in JOBS:
        sched = ctx.settings.schedule.parsed(BACKUP_JOBS.get(job, job))
        if sched is not None:
            out.append(JobSpec(job, sched))
    return out


def body_for(ctx: Context, job: str) -> Callable[[], JobOutcome]:
    if job in BACKUP_JOBS:
        return backup_job(ctx, BACKUP_JOBS[job])
    if job == "check":
        return check_job(ctx)
    raise ValueError(f"unknown job {job!r}")


def run_safely(ctx: Context, job: str, trigger: str) -> str:
    """Run one job; return its outcome. Errors are recorded and logged by run_job, never raised."""
    try:
        return run_job(ctx, job, trigger, body_for(ctx, job)).outcome
    except Exception:
        last = ctx.history.last(job)
        return last.outcome if last else "failed"
    except BaseException:  # KeyboardInterrupt/SystemExit in a worker: recorded as interrupted
        get_logger().warning("job.interrupted", job=job)
        return "interrupted"
