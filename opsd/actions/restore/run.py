"""Run a planned restore: under the restore lock, prove again that an in-place cluster is stopped, restore the
files, then (with --start) start the server the way this host runs it and wait until recovery reaches the target.

In place, the cluster starts as it normally does (pg_ctlcluster on Debian, which hands over to systemd when that
runs; pg_ctl with the cluster's own config elsewhere) and nothing but recovery settings is written into its data
directory; those are dropped again after promotion.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from opsd.actions.restore.plan import Plan
from opsd.actions.restore.service import Launch, default_launch, recheck_in_place, restore_files, side_socket_dir
from opsd.adapters import files
from opsd.adapters.cluster import debian_log_file, start_argv
from opsd.adapters.postgres import Instance, tail_fatal
from opsd.context import Context
from opsd.core.records.jobs import RestoreResult
from opsd.core.timeparse import show
from opsd.db.connection import Connect, alter_system_reset, checkpoint, factory, reload_conf
from opsd.db.queries import RecoveryRow, fetch_one
from opsd.errors import CommandError, DatabaseError, OpsdError

POLL = 0.5
# What pgBackRest's restore writes into postgresql.auto.conf for recovery: dropped once the server is promoted.
RECOVERY_SETTINGS = ["restore_command", "recovery_target", "recovery_target_time", "recovery_target_xid",
                     "recovery_target_lsn", "recovery_target_name", "recovery_target_action",
                     "recovery_target_timeline", "recovery_target_inclusive"]


def execute(ctx: Context, plan: Plan, *, report: Callable[[str], None], wait_timeout: float = 3600) -> RestoreResult:
    launch = default_launch(ctx, wait_timeout)
    with files.exclusive_lock(ctx.lock_dir, launch.lock, ctx.settings.opsd.run_as,
                              f"opsd restore into {plan.request.dest}"):
        if plan.request.in_place:
            recheck_in_place(ctx, plan)
        result = restore_files(ctx, plan, launch, report)
        if plan.request.start:
            result = start_and_watch(ctx, plan, launch, result, report)
    return result


def _start_side(ctx: Context, plan: Plan, launch: Launch, log_file: Path) -> Connect:
    """A side copy or drill: pg_ctl on the restored directory (port, socket and archive_mode=off are already in its
    postgresql.auto.conf); only a drill adds throwaway overrides."""
    req, pg = plan.request, ctx.settings.postgres
    files.ensure_side_config(req.dest, ctx.settings.opsd.run_as)
    Instance(pg.bin_dir, req.dest, ctx.runner).start(log_file, list(launch.server_options), prefix=launch.prefix)
    section = pg.model_copy(update={"host": str(side_socket_dir(ctx, launch)), "port": req.port or pg.port})
    return factory(section, run_as=ctx.settings.opsd.run_as)


def _start_in_place(ctx: Context, plan: Plan, launch: Launch, log_file: Path) -> tuple[Connect, Path]:
    """The cluster the way this host runs it; the log to read when it fails."""
    pg, layout = ctx.settings.postgres, ctx.layout
    argv = start_argv(layout, pg.bin_dir, plan.request.dest, log_file, int(launch.wait_timeout))
    # pg_ctlcluster run by root hands the start to systemd (postgresql@<major>-<cluster>) or drops to the owner
    as_root = layout.kind == "debian" and os.geteuid() == 0
    res = ctx.runner.run(argv, timeout=launch.wait_timeout + 60, as_user=not as_root)
    log = debian_log_file(layout) or log_file
    if not res.ok and not Instance(pg.bin_dir, plan.request.dest, ctx.runner).running():
        last = (res.stderr.strip() or res.stdout.strip() or "no output").splitlines()[-1]
        raise CommandError(f"PostgreSQL in {plan.request.dest} did not start: {last}; {tail_fatal(log)}",
                           argv=res.argv, returncode=res.returncode, hint=f"see {log}")
    return factory(pg, run_as=ctx.settings.opsd.run_as), log


def start_and_watch(ctx: Context, plan: Plan, launch: Launch, result: RestoreResult,
                    report: Callable[[str], None]) -> RestoreResult:
    """Start the restored server and wait until recovery reaches the target (promoted, or paused)."""
    req = plan.request
    pause = req.pause and not (plan.pin is not None and plan.pin.target_type == "default")
    log_file = launch.work_dir / f"{req.dest.name}-{ctx.now():%Y%m%dT%H%M%S}.log"
    report(f"starting PostgreSQL on {req.dest} ...")
    t0 = time.monotonic()
    if req.in_place:
        connect, log_file = _start_in_place(ctx, plan, launch, log_file)
    else:
        connect = _start_side(ctx, plan, launch, log_file)
    row = _wait(ctx, plan, connect, log_file, timeout=launch.wait_timeout, pause=pause)
    secs = time.monotonic() - t0
    if not pause and launch.finish_promotion:
        _finish_promotion(connect)
    return result.model_copy(update={
        "started": True, "recovery_seconds": secs, "replay_rate": plan.wal_bytes / max(secs, 0.001),
        "last_replayed_xact": show(row.last_replayed_xact) if row.last_replayed_xact else None,
        "last_replayed_at": row.last_replayed_xact,
        "state": "paused at target (inspect, then pg_wal_replay_resume() or promote)" if pause
        else f"promoted on timeline {row.timeline}", "log_file": str(log_file)})


def _wait(ctx: Context, plan: Plan, connect: Connect, log_file: Path, *, timeout: float, pause: bool) -> RecoveryRow:
    inst = Instance(ctx.settings.postgres.bin_dir, plan.request.dest, ctx.runner)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with connect() as conn:
                row: RecoveryRow | None = fetch_one(conn, "recovery", RecoveryRow)
        except DatabaseError:
            if not inst.running():
                raise OpsdError(f"recovery failed: {tail_fatal(log_file)}",
                                hint=f"server log: {log_file}; the restored directory is {plan.request.dest}") from None
            row = None
        if row is not None and ((pause and row.pause_state == "paused") or (not pause and not row.in_recovery)):
            return row
        time.sleep(POLL)
    raise OpsdError(f"recovery did not reach the target within {timeout:.0f}s",
                    hint=f"server log: {log_file}; the server is still running on {plan.request.dest}")


def _finish_promotion(connect: Connect) -> None:
    """A checkpoint on the new timeline (a backup before it fails: 'WAL timeline 2 does not match pg_control
    timeline 1'), and the recovery settings out of postgresql.auto.conf (a later standby.signal must not replay
    to an old target)."""
    with connect() as conn:
        checkpoint(conn)
        alter_system_reset(conn, RECOVERY_SETTINGS)
        reload_conf(conn)
