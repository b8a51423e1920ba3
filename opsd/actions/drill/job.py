"""A recovery drill: restore a backup into a scratch instance, recover it to a target time, promote it, and
prove the data at that time is there and sound. Measures RTO by phase and RPO; always tears down.

The copy is made, quarantined, recorded and torn down by the copies room (``actions/copies/room.py``): its own
port and private socket, archive_mode=off, no replication or background workers, removed afterwards (also after
a failure, a timeout or SIGTERM); leftovers of a crashed run are removed when the next copy is made.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from opsd.actions.copies import leftovers, registry
from opsd.actions.copies.room import Room, copy_room
from opsd.actions.copies.room import facts as copy_facts
from opsd.actions.drill.plan import (
    Target,
    judge_heartbeats,
    judge_objective,
    judge_recovery_point,
    pick_stanza,
    pick_target,
)
from opsd.actions.drill.verify import Verification, coverage, for_checks, heartbeat_rows, smoke
from opsd.actions.jobs import JobOutcome
from opsd.actions.restore.plan import END_PRECISION, Plan, Request, make_plan
from opsd.actions.restore.service import likely_set, load_window, measured_runs
from opsd.adapters.pgbackrest_errors import unreachable
from opsd.context import Context
from opsd.core.records.checks import CRITICAL, OK, SKIPPED, CheckResult
from opsd.core.records.drill import DrillResult
from opsd.core.records.jobs import RestoreResult
from opsd.core.records.runs import Outcome
from opsd.core.timeparse import show
from opsd.core.units import format_duration
from opsd.db.queries import HeartbeatRow
from opsd.errors import CommandCancelled, OpsdError
from opsd.log import get_logger

T = TypeVar("T")
KEEP_LOGS = 20
MAX_DAMAGE = 5


@dataclass(frozen=True)
class DrillRequest:
    target: str = "random"  # latest | random | given
    target_time: datetime | None = None
    stanza: str | None = None
    keep: bool = False
    keep_for: timedelta | None = None  # None: drill.keep_for
    seed: int | None = None
    cancel: threading.Event | None = None  # set by the daemon on SIGTERM: stop at the next phase, tear down


class DrillCancelled(CommandCancelled):
    """The daemon is stopping: the drill was cancelled and torn down (recorded as interrupted)."""

    def __init__(self, result: DrillResult) -> None:
        super().__init__("drill cancelled (opsd is stopping); the scratch instance was torn down")
        self.details = result


class DrillFailed(OpsdError):
    def __init__(self, result: DrillResult) -> None:
        super().__init__(result.summary(), hint="opsd drill show <id> for every check; docs/drills.md")
        self.result = result
        self.details = result


# --------------------------------------------------------------------------- copies the daemon stops
def stop_scratch_servers(ctx: Context) -> None:
    """Immediate shutdown of this process's copies (the daemon cancelling its drill): queries on them fail at
    once, so the drill reaches its teardown without waiting for a long verification."""
    registry.stop_mine(ctx)


def clean(ctx: Context) -> list[str]:
    """``opsd drill clean``: ``opsd scratch clean --all`` (kept copies too), under the drill lock."""
    return [v.record.directory for v in leftovers.clean(ctx, everything=True, report=lambda _m: None)]


def _prune_logs(work: Path) -> None:
    logs = sorted(work.glob("drill-*.log"), key=lambda p: p.stat().st_mtime)
    for old in logs[:-KEEP_LOGS]:
        old.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the drill
def _phase(result: DrillResult, name: str, fn: Callable[[], T], cancel: threading.Event | None = None) -> T | None:
    """Run one phase and time it (``result.phases.<name>_seconds``); a failure becomes a critical check naming
    it (and stops the drill). A set ``cancel`` skips the phase (the caller then stops)."""
    if cancel is not None and cancel.is_set():
        result.checks.append(CheckResult(name, SKIPPED, "cancelled: opsd is stopping"))
        return None
    t0 = time.monotonic()
    try:
        return fn()
    except OpsdError as e:
        msg = str(e) + (f" ({e.hint})" if e.hint else "")
        result.checks.append(CheckResult(name, CRITICAL, msg))
        return None
    except Exception as e:  # a bug must still fail the drill by name, and still tear down
        get_logger().error("drill.internal_error", phase=name, exc_info=True)
        result.checks.append(CheckResult(name, CRITICAL, f"internal error: {type(e).__name__}: {e}"))
        return None
    finally:
        setattr(result.phases, f"{name}_seconds", round(time.monotonic() - t0, 3))


def _rotation(ctx: Context) -> str:
    """The stanza whose last drill is oldest; without a readable history, the first one."""
    stanzas = ctx.settings.drill_stanzas
    if len(stanzas) == 1:
        return stanzas[0]
    try:
        return pick_stanza(stanzas, ctx.history.runs("drill", limit=200))
    except OpsdError as e:
        get_logger().warning("drill.rotation_unknown", error=str(e))
        return stanzas[0]


def run_drill(ctx: Context, dreq: DrillRequest, report: Callable[[str], None]) -> DrillResult:
    s = ctx.settings
    stanza = dreq.stanza or _rotation(ctx)
    sctx = ctx.for_stanza(stanza)
    result = DrillResult(stanza=stanza, target_mode=dreq.target, port=s.drill.port)
    dest = registry.scratch_root(ctx) / f"drill-{stanza}-{ctx.now():%Y%m%dT%H%M%S}"
    started = time.monotonic()
    try:
        with copy_room(sctx, "drill", dest, report, keep=dreq.keep, keep_for=dreq.keep_for) as room:
            result.cleaned, result.port = room.cleaned, room.port
            _drill(sctx, dreq, result, room, report)
            result.kept = dreq.keep and dest.exists()
            if room.watcher is not None and room.watcher.tripped:
                result.checks.append(CheckResult("scratch.space", CRITICAL, room.watcher.tripped))
    finally:
        result.phases.total_seconds = round(time.monotonic() - started, 3)
    return result


def _plan(ctx: Context, dreq: DrillRequest, result: DrillResult, room: Room) -> tuple[Plan, Target] | None:
    """Read the repository, pick the target and plan the restore with the restore code (None: the drill stops;
    the reason is a check in ``result``)."""
    s = ctx.settings
    guess = likely_set(Request(target_type="time", target_time=dreq.target_time, dest=room.dest))
    loaded = _phase(result, "plan", lambda: load_window(ctx, guess), dreq.cancel)
    if loaded is None:
        return None
    info, window = loaded
    if window.latest is not None:
        result.rpo_seconds = round((ctx.now() - window.latest.time).total_seconds(), 3)
    mode = "given" if dreq.target_time is not None else dreq.target
    target = pick_target(mode, window, info, heartbeat=s.drill.heartbeat_interval, rng=random.Random(dreq.seed),
                         given=dreq.target_time)
    if target is None:
        result.checks.append(CheckResult("plan", CRITICAL, "no recoverable window: no usable backup with its WAL"))
        return None
    result.target, result.target_why = show(target.time), target.why
    for gap in window.gaps:
        result.checks.append(CheckResult(
            "archive.continuity", CRITICAL, f"WAL gap on timeline {gap.timeline}: {gap.missing_from.name} .. "
                                            f"{gap.missing_to.name} ({gap.count} segment(s) missing); recovery "
                                            "cannot pass it"))
    req = Request(target_type="time", target_time=target.time, dest=room.dest, port=room.port, start=True)
    plan = make_plan(req, info, window, copy_facts(ctx, req), measured_runs(ctx))
    if plan.refused:
        result.checks.append(CheckResult("plan", CRITICAL, "refused: " + "; ".join(plan.refusals())))
        return None
    assert plan.backup is not None
    result.backup, result.backup_type, result.scratch = plan.backup.label, plan.backup.type, str(room.dest)
    pinned = f"; {plan.pin.message}" if plan.pin else ""
    result.checks.append(CheckResult("plan", OK, f"backup {plan.backup.label} ({plan.why}); WAL {plan.wal_from} .. "
                                                 f"{plan.wal_to} ({plan.wal_segments} segment(s)){pinned}"))
    return plan, target


def _drill(ctx: Context, dreq: DrillRequest, result: DrillResult, room: Room, report: Callable[[str], None]) -> None:
    s = ctx.settings
    _prune_logs(room.launch.work_dir)
    report(f"reading the repository of stanza {result.stanza} ...")
    cancel = dreq.cancel
    planned = _plan(ctx, dreq, result, room)
    if planned is None:
        return
    plan, target = planned
    assert plan.backup is not None
    restored = _phase(result, "restore", lambda: room.restore(plan, report), cancel)
    if restored is None:
        if not (cancel and cancel.is_set()):
            _name_damage(ctx, result, plan.backup.label, report)
        return
    result.phases.restore_bytes, result.phases.restore_rate = restored.restored_bytes, round(restored.restore_rate)
    result.checks.append(CheckResult("restore", OK, f"{restored.backup} restored in "
                                                    f"{format_duration(restored.restore_seconds)}"))
    recovered = _phase(result, "recovery", lambda: room.start(plan, restored, report), cancel)
    if recovered is None:  # the failure message names the server log
        return
    _record_recovery(ctx, result, plan, recovered, target)
    result.checks.append(room.quarantine())
    if cancel is not None and cancel.is_set():
        return
    verify_started = time.monotonic()
    report("verifying the restored copy (marker rows, amcheck, full reads, smoke queries) ...")
    _verify(ctx, result, plan, target, room, report=report)
    result.phases.verify_seconds = round(time.monotonic() - verify_started, 3)
    result.checks.append(judge_objective("rto", result.rto_seconds, s.drill.rto_target,
                                         "RTO (plan + restore + recovery)"))
    result.checks.append(judge_objective("rpo", result.rpo_seconds, s.drill.rpo_target,
                                         "RPO (newest archived commit vs now)"))


def _name_damage(ctx: Context, result: DrillResult, label: str, report: Callable[[str], None]) -> None:
    """pgBackRest's restore error rarely names the file; verify of the same set does."""
    failed = result.checks[-1]
    message = failed.message.split(" (the partial restore is left in")[0]
    if unreachable(message):  # verify would read the whole set over the same dead link, for up to backup_timeout
        message += "; the repository could not be reached (a network fault, not damage): the set was not verified"
        result.checks[-1] = CheckResult(failed.name, failed.status, message, failed.details)
        return
    report(f"restore failed; verifying backup set {label} to name the damage ...")
    try:
        found = ctx.pgbackrest.verify(label)
    except OpsdError as e:
        found = None
        get_logger().warning("drill.verify_failed", error=str(e))
    if found is not None and found.damaged:
        message += f"; pgbackrest verify --set={label}: " + "; ".join(found.damaged[:MAX_DAMAGE])
    result.checks[-1] = CheckResult(failed.name, failed.status, message, failed.details)


def _record_recovery(ctx: Context, result: DrillResult, plan: Plan, rec: RestoreResult, target: Target) -> None:
    result.log_file = rec.log_file
    ph = result.phases
    ph.recovery_seconds, ph.wal_bytes = round(rec.recovery_seconds or 0, 3), plan.wal_bytes
    ph.replay_rate = round(rec.replay_rate or 0)
    result.rto_seconds = round((ph.plan_seconds or 0) + (ph.restore_seconds or 0) + (ph.recovery_seconds or 0), 3)
    result.checks.append(CheckResult("recovery", OK, f"{rec.state} after {format_duration(rec.recovery_seconds or 0)}"))
    result.checks.append(judge_recovery_point(rec.last_replayed_at, _checked_until(plan, target),
                                              ctx.settings.drill.heartbeat_interval))


def _checked_until(plan: Plan, target: Target) -> datetime:
    """The time the checks hold the copy to. Recovery pinned to a backup's end stops at its consistency point,
    which pgBackRest dates in whole seconds: somewhere in the second after the recorded stop."""
    pinned_to_end = plan.pin is not None and plan.pin.target_type == "immediate"
    return target.time + END_PRECISION if pinned_to_end else target.time


def _verify(ctx: Context, result: DrillResult, plan: Plan, target: Target, room: Room, *,
            report: Callable[[str], None]) -> None:
    s = ctx.settings
    assert plan.backup is not None
    connect = for_checks(room.connect(s.drill.verify_statement_timeout))
    since = plan.backup.start
    checks = Verification(connect, s.drill.jobs(s.beside_production), report)
    dbs = _phase(result, "databases", checks.databases)
    if dbs is None:
        return
    try:
        with connect(s.postgres.dbname) as conn:
            restored = heartbeat_rows(conn, since)
        primary = _primary_heartbeats(ctx, since) if s.opsd.role == "primary" else None
        result.checks.append(judge_heartbeats(restored, primary, _checked_until(plan, target), since,
                                              s.drill.heartbeat_interval))
    except OpsdError as e:
        result.checks.append(CheckResult("heartbeat", CRITICAL, f"cannot read the marker rows: {e}"))
    for name, check in (("amcheck", checks.amcheck), ("readable", checks.readable)):
        got = _phase(result, name, check)
        if got is not None:
            result.checks.append(got)
    result.databases = checks.counts()
    result.checks.append(coverage(result.databases))
    # the operator's own SQL, with the database's own search_path (opsd's SQL runs with pg_catalog, pg_temp)
    result.checks.extend(smoke(room.connect(s.drill.verify_statement_timeout, search_path=None),
                               list(s.drill.smoke_queries)))


def _primary_heartbeats(ctx: Context, since: datetime) -> list[HeartbeatRow] | None:
    """The primary's marker rows: the ground truth to compare with (None when unreachable)."""
    try:
        with ctx.connect() as conn:
            return heartbeat_rows(conn, since)
    except OpsdError as e:
        get_logger().warning("drill.primary_unreachable", error=str(e))
        return None


# --------------------------------------------------------------------------- job body
def drill_job(ctx: Context, dreq: DrillRequest, report: Callable[[str], None] | None = None
              ) -> Callable[[], JobOutcome]:
    def body() -> JobOutcome:
        result = run_drill(ctx, dreq, report or (lambda m: get_logger().info("drill.progress", message=m)))
        if dreq.cancel is not None and dreq.cancel.is_set():
            raise DrillCancelled(result)
        if not result.passed:  # run_job records it and raises the alert job.drill.<stanza>
            raise DrillFailed(result)
        return JobOutcome(Outcome.OK, result.summary(), result)

    return body
