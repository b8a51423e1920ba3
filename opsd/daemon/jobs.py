"""The scheduler's view of jobs: which are enabled, their bodies, and a wrapper that never lets a failure
escape into APScheduler (a failing job never kills the daemon)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

from opsd.actions import alerts
from opsd.actions.backup import heartbeat
from opsd.actions.backup.job import backup_job
from opsd.actions.backup.verify import verify_job
from opsd.actions.checks import check_job
from opsd.actions.drill.job import DrillRequest, drill_job, stop_scratch_servers
from opsd.actions.drill.plan import pick_stanza
from opsd.actions.fleet.drill import fleet_drill_job
from opsd.actions.fleet.presence import Presence
from opsd.actions.health.sample import sample_job
from opsd.actions.jobs import JobOutcome, run_job
from opsd.actions.queries.snapshot import snapshot_job
from opsd.actions.report import index_figures
from opsd.actions.report.job import report_job
from opsd.actions.role import RoleSkip, require
from opsd.adapters.runner import ProcessRunner
from opsd.context import Context
from opsd.core.role import BACKUP_JOBS, role_jobs
from opsd.core.schedule import Schedule, parse_schedule
from opsd.db.probe import Probe, probe_for
from opsd.errors import OpsdError
from opsd.log import get_logger
from opsd.report import publish

HEARTBEAT = "heartbeat"  # frequent and cheap: logged when it fails, not recorded in the run history
HEALTH = "health"  # every 30s: samples and incidents have tables of their own
FLEET = "fleet"  # every [fleet] publish_every: fleet.json and the fleet's alerts, not the run history
QUERIES = "queries"  # every 5 min: query-statistics snapshots have tables of their own
QUIET = (HEARTBEAT, HEALTH, FLEET, QUERIES)  # jobs the run history does not record


@dataclass
class DrillControl:
    """What the daemon needs to cancel its running drill on SIGTERM, without touching a running backup: the
    drill's own runner (killed), a flag checked between phases, and the scratch servers (stopped at once)."""

    runner: ProcessRunner | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def prepare(self, ctx: Context) -> Context:
        self.runner = ProcessRunner(run_as=ctx.settings.opsd.run_as)
        return replace(ctx, runner=self.runner)

    def stop(self, ctx: Context) -> None:
        self.cancel.set()
        self.abort(ctx)

    def abort(self, ctx: Context) -> None:
        """The running drill's commands killed and its copy stopped, the daemon going on: a fleet drill whose
        lease was lost. ``cancel`` stays clear, or every later drill would stop at its first phase."""
        if self.runner is not None:
            self.runner.cancel_all()
        stop_scratch_servers(ctx)


@dataclass(frozen=True)
class JobSpec:
    job: str
    schedule: Schedule
    phase: timedelta = timedelta(0)  # an interval job's fire times shifted by this (away from another job's)


def enabled_jobs(ctx: Context) -> list[JobSpec]:
    out = []
    for job in role_jobs(ctx.settings.opsd.role):
        sched = ctx.settings.schedule.parsed(BACKUP_JOBS.get(job, job))
        if sched is not None:
            out.append(JobSpec(job, sched))
    fleet = ctx.settings.fleet
    if fleet.enabled:
        sched = parse_schedule(f"{max(1, int(fleet.publish_every.total_seconds()))}s")
        assert sched is not None
        out.append(JobSpec(FLEET, sched))
    if ctx.settings.opsd.role != "primary":
        return out
    every = ctx.settings.drill.heartbeat_interval.total_seconds()
    if every >= 1:
        sched = parse_schedule(f"{int(every)}s")
        assert sched is not None
        out.append(JobSpec(HEARTBEAT, sched))
    health = ctx.settings.schedule.parsed(HEALTH)
    if health is not None:
        out.append(JobSpec(HEALTH, health))
    queries = ctx.settings.schedule.parsed(QUERIES) if ctx.settings.queries.enabled else None
    if queries is not None:  # on every database node; a standby's run skips itself (the primary reads it)
        # half a health interval apart: a snapshot never runs at the moment of a health probe
        between = health.interval / 2 if health is not None and health.interval is not None else timedelta(0)
        out.append(JobSpec(QUERIES, queries, between))
    return out


def body_for(ctx: Context, job: str, drill: DrillControl | None = None, fleet: Presence | None = None
             ) -> Callable[[], JobOutcome]:
    if job == "drill" and fleet is not None:  # a fleet drill host: claims the next drill of the fleet
        if drill is not None:
            dctx = drill.prepare(ctx)
            return fleet_drill_job(dctx, fleet, drill.cancel, drill.abort)
        return fleet_drill_job(ctx, fleet)
    if job in BACKUP_JOBS:
        return backup_job(ctx, BACKUP_JOBS[job])
    if job == "check":
        return check_job(ctx)
    if job == "drill":
        if drill is not None:
            return drill_job(drill.prepare(ctx), DrillRequest(target="random", cancel=drill.cancel))
        return drill_job(ctx, DrillRequest(target="random"))
    if job == "report":
        return report_job(ctx, publish.to_state_dir(ctx))
    if job == "verify":
        return verify_job(ctx, _verify_stanza(ctx))
    raise ValueError(f"unknown job {job!r}")


def _verify_stanza(ctx: Context) -> str | None:
    """The stanza whose verify is oldest (a drill host's rotation); without a readable history, the first."""
    stanzas = ctx.settings.drill_stanzas
    if len(stanzas) < 2:
        return None
    try:
        return pick_stanza(stanzas, ctx.history.runs("verify", limit=200))
    except OpsdError as e:
        get_logger().warning("verify.rotation_unknown", error=str(e))
        return stanzas[0]


def fleet_tick(ctx: Context, fleet: Presence | None) -> str:
    from opsd.actions.fleet.tick import tick

    try:
        return tick(ctx, fleet)
    except Exception as e:  # a bug: never silent, never a dead scheduler thread
        get_logger().error("fleet.internal_error", error=f"{type(e).__name__}: {e}", exc_info=True)
        return "failed"


def beat(ctx: Context) -> str:
    try:
        require(ctx, HEARTBEAT)
    except RoleSkip as e:  # a standby, every minute: not worth more than a debug line
        get_logger().debug("heartbeat.skipped", reason=str(e))
        return "skipped"
    try:
        heartbeat.write(ctx)
    except OpsdError as e:
        get_logger().warning("heartbeat.failed", error=str(e), hint=e.hint)
        return "failed"
    return "ok"


def sample(ctx: Context, probe: Probe | None) -> str:
    own = probe is None
    p = probe or probe_for(ctx.settings)
    try:
        return sample_job(ctx, p)
    except OpsdError as e:  # the history itself failed: logged, the daemon goes on
        get_logger().error("health.failed", error=str(e))
        return "failed"
    finally:
        if own:
            p.close()


INDEX_FIGURES_EVERY = timedelta(hours=1)  # the catalogs read again for the index metrics (invalid, unused bytes)


def snapshot(ctx: Context) -> str:
    try:
        outcome = snapshot_job(ctx)
        if outcome != "skipped":  # the primary: its index figures at most an hour old (OpsdInvalidIndex)
            index_refresh(ctx)
        return outcome
    except OpsdError as e:  # the state file failed: logged, the daemon goes on
        get_logger().error("queries.failed", error=str(e), hint=e.hint)
        return "failed"
    except Exception as e:  # a bug: never silent, never a dead scheduler thread
        get_logger().error("queries.internal_error", error=f"{type(e).__name__}: {e}", exc_info=True)
        return "failed"


def index_refresh(ctx: Context) -> None:
    """Read the catalogs for the index metrics when the last index report is an hour old. A failure is logged and
    alerted (``queries.indexes``): the metrics would go stale silently otherwise."""
    last = index_figures.load(ctx.settings)
    if last is not None and ctx.now() - last.at < INDEX_FIGURES_EVERY:
        return
    try:
        index_figures.refresh(ctx)
    except OpsdError as e:
        get_logger().error("indexes.refresh_failed", error=str(e))
        alerts.fire(ctx, "queries.indexes", f"the index figures could not be read: {e}", severity="warning")
        return
    alerts.resolve(ctx, "queries.indexes", "the index figures are read again")


def run_safely(ctx: Context, job: str, trigger: str, probe: Probe | None = None, *,
               drill: DrillControl | None = None, fleet: Presence | None = None) -> str:
    """Run one job; return its outcome. Errors are recorded and logged by run_job, never raised.
    ``probe``: the daemon's reused health probe connection; ``drill``: lets the daemon cancel a drill;
    ``fleet``: a fleet drill host's presence (its lease), through which its drills are claimed."""
    if job == HEARTBEAT:
        return beat(ctx)
    if job == HEALTH:
        return sample(ctx, probe)
    if job == FLEET:
        return fleet_tick(ctx, fleet)
    if job == QUERIES:
        return snapshot(ctx)
    try:
        return run_job(ctx, job, trigger, body_for(ctx, job, drill, fleet)).outcome
    except OpsdError:  # run_job recorded it (or kept it for later), logged it and raised its alert
        return "failed"
    except Exception as e:  # a bug: never silent, never a dead scheduler thread
        get_logger().error("job.internal_error", job=job, error=f"{type(e).__name__}: {e}", exc_info=True)
        return "failed"
    except BaseException:  # KeyboardInterrupt/SystemExit in a worker: recorded as interrupted
        get_logger().warning("job.interrupted", job=job)
        return "interrupted"
