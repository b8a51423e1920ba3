"""Every job run, from the CLI or the scheduler, goes through :func:`run_job`: it records the run in
the history, binds the job's log context, and ends with one summary event (``backup.finished``...)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from opsd.actions.role import RoleSkip, node_role, observe_quietly, require
from opsd.context import Context
from opsd.core.records.base import Note, Record, Skipped
from opsd.core.records.runs import Outcome
from opsd.core.role import PRIMARY_JOBS, Role
from opsd.errors import BusyError, CommandCancelled, OpsdError
from opsd.log import get_logger


@dataclass(frozen=True)
class JobOutcome:
    """What a job's body returns: ``ok`` or ``skipped``, a one-line summary, and details for the history."""

    outcome: Outcome
    summary: str
    details: Record = field(default_factory=Note)


def event_name(job: str) -> str:
    return ("backup" if job.startswith("backup-") else job) + ".finished"


@dataclass
class _Entry:
    """Where a run goes: its row in the history, or, when the history cannot be written, the pending journal
    (written into the history by the next run that can). A broken history never stops a job."""

    ctx: Context
    job: str
    trigger: str
    started_at: datetime
    run_id: int | None = None

    def open(self) -> None:
        try:
            self.run_id = self.ctx.history.start(self.job, self.trigger, self.started_at)
        except OpsdError as e:
            history_down(self.ctx, e)
            return
        history_up(self.ctx)

    def close(self, outcome: Outcome, error: str | None, details: Record) -> None:
        finished = self.ctx.now()
        if self.run_id is not None:
            try:
                self.ctx.history.finish(self.run_id, outcome, error=error, details=details, finished_at=finished)
                return
            except OpsdError as e:
                history_down(self.ctx, e)
        on_disk = self.ctx.history.keep(self.job, self.trigger, self.started_at, finished, outcome, error=error,
                                        details=details)
        get_logger().warning("history.run_kept", job=self.job, outcome=outcome,
                             kept_in=str(self.ctx.history.journal.path) if on_disk else "memory")


def history_down(ctx: Context, e: OpsdError) -> None:
    """The history cannot be written: say so loudly (log, alert, STATUS=, metric), never skip the job."""
    first = ctx.history.db.problem is None
    ctx.history.db.problem = str(e)
    get_logger().error("history.unwritable", error=str(e), hint=e.hint, path=str(ctx.history.path))
    if first:
        from opsd.actions import alerts

        alerts.fire(ctx, "history.unwritable", f"run history not writable: {e}; jobs still run, their records "
                                               f"are kept in {ctx.history.journal.path} until it works again")


def history_up(ctx: Context) -> None:
    """The history took a row: write what was kept meanwhile, and clear the alarm."""
    try:
        written = ctx.history.flush()
    except OpsdError as e:
        history_down(ctx, e)
        return
    if written:
        get_logger().info("history.pending_written", runs=written)
    if ctx.history.db.problem is not None or written:  # kept runs: the alarm was raised, maybe by another process
        ctx.history.db.problem = None
        get_logger().info("history.writable_again", path=str(ctx.history.path))
        from opsd.actions import alerts

        alerts.resolve(ctx, "history.unwritable", f"run history writable again; {written} kept run(s) written",
                       fired_elsewhere=bool(written))


def _failure(e: BaseException) -> tuple[Outcome, str, Record]:
    outcome = Outcome.BUSY if isinstance(e, BusyError) else Outcome.FAILED
    if isinstance(e, KeyboardInterrupt | SystemExit | CommandCancelled):
        outcome = Outcome.INTERRUPTED
    msg = str(e) if isinstance(e, OpsdError) else f"{type(e).__name__}: {e}"
    produced = getattr(e, "details", None)  # what a failed job made before it failed (DrillFailed...)
    details: Record = produced if isinstance(produced, Record) else Note()
    if isinstance(e, OpsdError) and e.hint:
        details = details.model_copy(update={"hint": e.hint})
    return outcome, msg, details


def run_job(ctx: Context, job: str, trigger: str, body: Callable[[], JobOutcome]) -> JobOutcome:
    """Run ``body`` as ``job``; record it; re-raise its error after recording (callers decide what it means)."""
    entry = _Entry(ctx, job, trigger, ctx.now())
    entry.open()
    log = get_logger()
    started = time.monotonic()
    with structlog.contextvars.bound_contextvars(job=job, run_id=entry.run_id, trigger=trigger):
        try:
            if job in PRIMARY_JOBS:
                observe_quietly(ctx, require(ctx, job))
            elif job == "check" and ctx.settings.patroni.url:  # every node's periodic look at its role
                observe_quietly(ctx, node_role(ctx))
            result = body()
        except RoleSkip as e:  # not this node's job: recorded with the role, exit 0 from the CLI; undecided: alerted
            skipped = Skipped(role=str(e.node.role), source=e.node.source, reason=str(e))
            entry.close(Outcome.SKIPPED, None, skipped)
            observe_quietly(ctx, e.node, job if e.node.role == Role.UNKNOWN else None)
            log.info(event_name(job), outcome=Outcome.SKIPPED, reason=str(e), role=str(e.node.role),
                     duration=round(time.monotonic() - started, 3))
            return JobOutcome(Outcome.SKIPPED, str(e), skipped)
        except BaseException as e:
            outcome, msg, details = _failure(e)
            entry.close(outcome, msg, details)
            emit = log.warning if outcome in ("busy", "interrupted") else log.error
            emit(event_name(job), outcome=outcome, error=msg, duration=round(time.monotonic() - started, 3))
            _alert(ctx, job, outcome, msg, details)
            raise
        entry.close(result.outcome, None, result.details)
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
