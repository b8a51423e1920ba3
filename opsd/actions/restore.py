"""Point-in-time restore: gather facts, plan, refuse or act, start and watch recovery, report.

A side restore (default) goes into an empty directory with archive_mode=off and its own port, lock and
spool paths: it can never push WAL into the production repository. An in-place restore refuses while the
cluster runs and moves the old data directory aside instead of deleting it (unless --delta --force).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from opsd.actions.backup import human_bytes
from opsd.actions.restore_plan import DestFacts, Plan, Request, make_plan
from opsd.actions.window import Window, compute_window
from opsd.adapters import files
from opsd.adapters.pgbackrest import RestoreOptions
from opsd.adapters.pgbackrest_conf import archive_async
from opsd.adapters.postgres import Instance, tail_fatal
from opsd.adapters.waldump import last_commit_time
from opsd.context import Context
from opsd.db.connection import factory
from opsd.db.queries import RecoveryRow, fetch_one
from opsd.errors import DatabaseError, OpsdError, RefusedError
from opsd.schedule import format_duration
from opsd.timeparse import pgbackrest_target, show

POLL = 0.5


def load_window(ctx: Context) -> tuple[Any, Window]:
    """Read the repository (info, WAL listing) and the last commit from the newest archived WAL."""
    pgbr = ctx.pgbackrest
    info = pgbr.info()
    segments = pgbr.archive_segments()
    user = ctx.settings.opsd.run_as
    with files.scratch_dir(ctx.settings.opsd.state_dir / "tmp", user) as tmp:

        def commit_time(wal: str) -> datetime | None:
            dest = tmp / wal
            if not pgbr.archive_get(wal, str(dest)):
                return None
            res = ctx.runner.run([str(ctx.settings.postgres.bin_dir / "pg_waldump"), str(dest)], timeout=120,
                                 env={"TZ": "UTC"}, log_output=False)
            dest.unlink(missing_ok=True)
            return last_commit_time(res.stdout)

        window = compute_window(info, segments, commit_time)
    return info, window


def gather_facts(ctx: Context, req: Request) -> DestFacts:
    sock = Path(ctx.settings.postgres.host) if ctx.settings.postgres.host.startswith("/") else None
    running = False
    if req.in_place:
        running = Instance(ctx.settings.postgres.bin_dir, req.dest, ctx.runner).running()
    return DestFacts(
        exists=req.dest.exists(), empty=files.is_empty_dir(req.dest), free_bytes=files.free_bytes(req.dest),
        port_in_use=files.port_in_use(req.port, sock) if req.port else False, cluster_running=running,
    )


def plan_restore(ctx: Context, req: Request) -> tuple[Plan, Window]:
    info, window = load_window(ctx)
    facts = gather_facts(ctx, req)
    history = ctx.history.runs("restore", limit=20)
    return make_plan(req, info, window, facts, history), window


@dataclass(frozen=True)
class RestoreResult:
    backup: str
    destination: str
    restored_bytes: int
    restore_seconds: float
    restore_rate: float
    started: bool
    recovery_seconds: float | None
    replay_rate: float | None
    last_replayed_xact: str | None
    state: str  # "restored (not started)", "promoted", "paused at target"
    moved_aside: str | None
    log_file: str | None
    last_replayed_at: datetime | None = None

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
        return "; ".join(parts)


_PROGRESS = re.compile(r"(\d+(?:\.\d+)?)%\)")


def progress_reporter(report: Callable[[str], None]) -> Callable[[str, str], None]:
    """Turn pgBackRest's per-file 'restore file ... (N%)' lines into a message every 10%."""
    state = {"next": 10.0, "t0": time.monotonic()}

    def on_line(stream: str, line: str) -> None:
        m = _PROGRESS.search(line)
        if m and "restore file" in line and float(m.group(1)) >= state["next"]:
            pct = float(m.group(1))
            state["next"] = (int(pct // 10) + 1) * 10.0
            report(f"restore {pct:.0f}% ({time.monotonic() - state['t0']:.0f}s elapsed)")

    return on_line


@dataclass(frozen=True)
class Launch:
    """Where a restore keeps its own files and how its server is started. A restore uses
    ``<state_dir>/restores``; a drill passes its scratch area, private socket and server overrides."""

    work_dir: Path
    lock: str = "restore"
    socket_dir: Path | None = None  # None: the production socket directory (or work_dir/run for TCP setups)
    process_max: int | None = None
    server_options: tuple[str, ...] = ()
    wait_timeout: float = 3600


def default_launch(ctx: Context, wait_timeout: float = 3600) -> Launch:
    return Launch(work_dir=ctx.settings.opsd.state_dir / "restores", wait_timeout=wait_timeout)


def execute(ctx: Context, plan: Plan, *, report: Callable[[str], None], wait_timeout: float = 3600) -> RestoreResult:
    launch = default_launch(ctx, wait_timeout)
    with files.exclusive_lock(ctx.lock_dir, launch.lock, ctx.settings.opsd.run_as,
                              f"opsd restore into {plan.request.dest}"):
        result = restore_files(ctx, plan, launch, report)
        if plan.request.start:
            result = start_and_watch(ctx, plan, launch, result, report)
    return result


def restore_files(ctx: Context, plan: Plan, launch: Launch, report: Callable[[str], None]) -> RestoreResult:
    """Run pgBackRest restore (the caller holds the lock). Raises RefusedError for a refused plan."""
    if plan.refused:
        raise RefusedError("refused: " + "; ".join(plan.refusals()))
    req, backup = plan.request, plan.backup
    assert backup is not None
    user = ctx.settings.opsd.run_as
    files.ensure_dir(launch.work_dir, user)
    moved = None
    if req.in_place and not req.delta:
        moved = files.move_aside(req.dest, "before-restore-" + ctx.now().strftime("%Y%m%dT%H%M%S"), user)
        report(f"moved the old data directory aside to {moved}")
    elif not req.in_place:
        files.make_empty_dir(req.dest, user)
    options = _options(ctx, plan, launch)
    report(f"restoring {backup.label} into {req.dest} ...")
    t0 = time.monotonic()
    try:
        ctx.pgbackrest.restore(options, on_line=progress_reporter(report))
    except OpsdError as e:
        e.hint = (f"the partial restore is left in {req.dest} (not started)"
                  + (f"; the previous data directory is at {moved}" if moved else ""))
        raise
    restore_secs = time.monotonic() - t0
    return RestoreResult(
        backup=backup.label, destination=str(req.dest), restored_bytes=backup.size,
        restore_seconds=restore_secs, restore_rate=backup.size / max(restore_secs, 0.001), started=False,
        recovery_seconds=None, replay_rate=None, last_replayed_xact=None, state="restored (not started)",
        moved_aside=str(moved) if moved else None, log_file=None)


def _options(ctx: Context, plan: Plan, launch: Launch) -> RestoreOptions:
    req = plan.request
    target: str | None = None
    target_type = "default" if plan.to_end else req.target_type
    if plan.to_end:
        target = None
    elif req.target_type == "time" and req.target_time is not None:
        target = pgbackrest_target(req.target_time)
    elif req.target_type in ("lsn", "xid"):
        target = req.target_value
    side = not req.in_place
    spool = None
    if side and archive_async(ctx.settings.pgbackrest.config, ctx.settings.pgbackrest.stanza):
        spool = str(files.ensure_dir(launch.work_dir / "spool", ctx.settings.opsd.run_as))
    return RestoreOptions(
        pg1_path=str(req.dest), set=plan.backup.label if plan.backup else None, target_type=target_type,
        target=target, target_action="pause" if req.pause else "promote", target_timeline=req.target_timeline,
        port=req.port if side else None, archive_off=side, delta=req.delta,
        lock_path=str(files.ensure_dir(launch.work_dir / "lock", ctx.settings.opsd.run_as)) if side else None,
        spool_path=spool, process_max=launch.process_max,
    )


def start_and_watch(ctx: Context, plan: Plan, launch: Launch, result: RestoreResult,
                    report: Callable[[str], None]) -> RestoreResult:
    """Start the restored server and wait until recovery reaches the target (promoted, or paused)."""
    req = plan.request
    pause = req.pause and not plan.to_end
    pg = ctx.settings.postgres
    inst = Instance(pg.bin_dir, req.dest, ctx.runner)
    log_file = launch.work_dir / f"{req.dest.name}-{ctx.now():%Y%m%dT%H%M%S}.log"
    opts: list[str] = []
    socket_dir = str(launch.socket_dir) if launch.socket_dir else pg.host
    if not socket_dir.startswith("/"):
        socket_dir = str(files.ensure_dir(launch.work_dir / "run", ctx.settings.opsd.run_as))
    if not req.in_place:
        opts = [f"-c port={req.port}", "-c archive_mode=off", f"-c unix_socket_directories={socket_dir}",
                "-c listen_addresses=localhost", *launch.server_options]
    _ensure_config_files(req.dest)
    report(f"starting PostgreSQL on {req.dest} (log {log_file}) ...")
    t0 = time.monotonic()
    inst.start(log_file, opts)
    section = pg.model_copy(update={"host": socket_dir, "port": req.port or pg.port})
    connect = factory(section)
    deadline = time.monotonic() + launch.wait_timeout
    row: RecoveryRow | None = None
    while time.monotonic() < deadline:
        try:
            with connect() as conn:
                row = fetch_one(conn, "recovery", RecoveryRow)
        except DatabaseError:
            if not inst.running():
                raise OpsdError(f"recovery failed: {tail_fatal(log_file)}",
                                hint=f"server log: {log_file}; the restored directory is {req.dest}") from None
            row = None
        if row is not None and ((pause and row.pause_state == "paused") or (not pause and not row.in_recovery)):
            break
        time.sleep(POLL)
    else:
        raise OpsdError(f"recovery did not reach the target within {launch.wait_timeout:.0f}s",
                        hint=f"server log: {log_file}; the server is still running on {req.dest}")
    secs = time.monotonic() - t0
    assert row is not None
    return replace(
        result, started=True, recovery_seconds=secs, replay_rate=plan.wal_bytes / max(secs, 0.001),
        last_replayed_xact=show(row.last_replayed_xact) if row.last_replayed_xact else None,
        last_replayed_at=row.last_replayed_xact,
        state="paused at target (inspect, then pg_wal_replay_resume() or promote)" if pause
        else f"promoted on timeline {row.timeline}", log_file=str(log_file))


def _ensure_config_files(dest: Path) -> None:
    """A cluster whose config lives outside PGDATA (Debian) restores without postgresql.conf: give the
    restored copy a minimal one so it can start."""
    conf = dest / "postgresql.conf"
    if not conf.exists():
        conf.write_text("# written by opsd restore: the backup had no postgresql.conf (config outside PGDATA)\n")
    hba = dest / "pg_hba.conf"
    if not hba.exists():
        hba.write_text("local all all peer\n")
    ident = dest / "pg_ident.conf"
    if not ident.exists():
        ident.write_text("")
