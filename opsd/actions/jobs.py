"""Every job run, from the CLI or the scheduler, goes through :func:`run_job`: it records the run in
the history, binds the job's log context, and ends with one summary event (``backup.finished``...)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from opsd.context import Context
from opsd.core.records.base import Note, Record
from opsd.core.records.runs import Outcome
from opsd.errors import BusyError, CommandCancelled, OpsdError
from opsd.log import get_logger

JOBS = ("backup-full", "backup-diff", "backup-incr", "check", "verify", "drill", "report")
BACKUP_JOBS = {"backup-full": "full", "backup-diff": "diff", "backup-incr": "incr"}
DRILL_HOST_JOBS = ("check", "verify", "drill", "report")  # a drill host has no primary: no backups, no heartbeats


def role_jobs(role: str) -> tuple[str, ...]:
    return DRILL_HOST_JOBS if role == "drill" else JOBS


@dataclass(frozen=True)
class JobOutcome:
    """What a job's body returns: ``ok`` or ``skipped``, a one-line summary, and details for the history."""

    outcome: Outcome
    summary: str
    details: Record = field(default_factory=Note)


def event_name(job: str) -> str:
    return ("backup" if job.startswith("backup-") else job) + ".finished"


def run_job(ctx: Context, job: str, trigger: str, body: Callable[[], JobOutcome]) -> JobOutcome:
    """Run ``body`` as ``job``; record it; re-raise its error after recording (callers decide what it means)."""
    run_id = ctx.history.start(job, trigger, ctx.now())
    log = get_logger()
    started = time.monotonic()
    with structlog.contextvars.bound_contextvars(job=job, run_id=run_id, trigger=trigger):
        try:
            result = body()
        except BaseException as e:
            outcome = Outcome.BUSY if isinstance(e, BusyError) else Outcome.FAILED
            if isinstance(e, KeyboardInterrupt | SystemExit | CommandCancelled):
                outcome = Outcome.INTERRUPTED
            msg = str(e) if isinstance(e, OpsdError) else f"{type(e).__name__}: {e}"
            produced = getattr(e, "details", None)  # what a failed job made before it failed (DrillFailed...)
            details: Record = produced if isinstance(produced, Record) else Note()
            if isinstance(e, OpsdError) and e.hint:
                details = details.model_copy(update={"hint": e.hint})
            ctx.history.finish(run_id, outcome, error=msg, details=details, finished_at=ctx.now())
            emit = log.warning if outcome in ("busy", "interrupted") else log.error
            emit(event_name(job), outcome=outcome, error=msg, duration=round(time.monotonic() - started, 3))
            _alert(ctx, job, outcome, msg, details)
            raise
        ctx.history.finish(run_id, result.outcome, details=result.details, finished_at=ctx.now())
        log.info(event_name(job), outcome=result.outcome, summary=result.summary,
                 duration=round(time.monotonic() - started, 3), **_flat(result.details))
        _alert(ctx, job, result.outcome, None, result.details)
    return result


def _alert(ctx: Context, job: str, outcome: str, error: str | None, details: Record) -> None:
    """Alerting never changes a job's outcome: its own problems are logged."""
    from opsd.actions import alerts

    try:
        alerts.after_job(ctx, job, outcome, error, details)
    except Exception as e:  # the alert store or a channel broke: the job's result stands
        get_logger().error("alert.failed", job=job, error=f"{type(e).__name__}: {e}")


_RESERVED = frozenset({"event", "outcome", "summary", "duration", "level", "timestamp", "job", "run_id", "trigger"})


def _flat(details: Record) -> dict[str, Any]:
    """Scalar details for the summary event; names the event itself uses get a ``detail_`` prefix."""
    return {(f"detail_{k}" if k in _RESERVED else k): v for k, v in details.as_json().items()
            if isinstance(v, str | int | float | bool) or v is None}
