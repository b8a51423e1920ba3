"""The daemon loop (boring on purpose): signal handlers only set flags; the main thread acts on them.

APScheduler 3.x BackgroundScheduler with an explicit timezone, ``max_instances=1``, ``coalesce=True``
and an explicit misfire grace time. SIGHUP validates the new config before swapping it in; SIGTERM/SIGINT
stop taking jobs, let running ones finish (up to ``shutdown_timeout``), then cancel what is left.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from opsd.actions.copies import leftovers
from opsd.actions.fleet.presence import presence_for
from opsd.actions.jobs import history_down
from opsd.adapters.runner import Runner
from opsd.adapters.systemd import notify
from opsd.context import Context
from opsd.daemon.jobs import HEALTH, HEARTBEAT, QUERIES, QUIET, DrillControl, enabled_jobs, run_safely
from opsd.db.probe import Probe, probe_for
from opsd.errors import ConfigError, OpsdError
from opsd.log import get_logger
from opsd.settings import Settings

CATCH_UP_TOLERANCE = timedelta(minutes=5)  # a full that ended a little before the due time counts


def catch_up_needed(ctx: Context, now: datetime) -> tuple[bool, str]:
    """Was a scheduled full backup missed while the daemon was down? Decided from the repository
    (ground truth, includes backups taken by hand), falling back to the run history."""
    s = ctx.settings.schedule
    sched = s.parsed("full")
    if sched is None or not s.catch_up_full:
        return False, "catch-up disabled or no full schedule"
    prev = sched.previous_fire(now.astimezone(ctx.settings.opsd.tz))
    if prev is None:
        return False, "full schedule has not fired yet"
    try:
        newest = ctx.pgbackrest.info().newest(("full",))
        last = newest.stop if newest else None
        source = "repository"
    except OpsdError:
        try:
            run = ctx.history.last("backup-full", ("ok",))
        except OpsdError:  # neither readable: a full backup is the safe side
            run = None
        last = run.finished_at if run else None
        source = "history"
    tolerance = min(CATCH_UP_TOLERANCE, sched.period(now.astimezone(ctx.settings.opsd.tz)) / 10)
    if last is not None and last >= prev - tolerance:
        return False, f"newest full backup ({source}) {last:%Y-%m-%d %H:%M:%S%z} is after the due time"
    return True, f"full backup was due at {prev:%Y-%m-%d %H:%M:%S%z}; newest full ({source}): {last or 'none'}"


class Daemon:
    def __init__(self, ctx: Context, load_settings: Callable[[], Settings],
                 make_context: Callable[[Settings], Context], *, shutdown_timeout: float = 900) -> None:
        self.ctx = ctx
        self._load_settings = load_settings
        self._make_context = make_context
        self.shutdown_timeout = shutdown_timeout
        self.log = get_logger(component="daemon")
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._running = 0
        self._running_lock = threading.Lock()
        self.scheduler: BackgroundScheduler | None = None
        self._last = ""
        self._metrics_server: Any = None
        self.probe: Probe = probe_for(ctx.settings)  # one reused connection for the health sampler
        self.drill = DrillControl()
        self.fleet = presence_for(ctx)  # a fleet drill host's lease, kept by a thread of its own
        self._active: dict[str, float] = {}  # job -> monotonic start
        self._retired: list[Runner] = []  # runners of contexts replaced by a reload: their jobs may still run

    # ------------------------------------------------------------------ jobs
    def _fire(self, job: str, trigger: str = "schedule") -> None:
        if self._stop.is_set():
            return
        with self._running_lock:
            self._running += 1
            self._active[job] = time.monotonic()
        outcome = "failed"
        try:
            outcome = run_safely(self.ctx, job, trigger, self.probe, drill=self.drill, fleet=self.fleet)
        finally:
            with self._running_lock:
                self._running -= 1
                self._active.pop(job, None)
            if job not in QUIET:
                self._last = f"last {job} {outcome} at {time.strftime('%H:%M:%S')}"
                notify(f"STATUS={self.status_line()}")

    def status_line(self) -> str:
        nxt = ""
        if self.scheduler is not None and self.scheduler.running:
            jobs = [j for j in self.scheduler.get_jobs() if j.next_run_time and j.id not in QUIET]
            if jobs:
                j = min(jobs, key=lambda x: x.next_run_time)
                nxt = f"next {j.id} at {j.next_run_time:%Y-%m-%d %H:%M}"
        running = ", ".join(sorted(self._active)) if self._active else ""
        broken = f"HISTORY NOT WRITABLE ({self.ctx.history.db.problem})" if self.ctx.history.db.problem else ""
        return "; ".join(p for p in (broken, f"running {running}" if running else "", self._last, nxt) if p) or "idle"

    def _schedule_jobs(self) -> None:
        assert self.scheduler is not None
        self.scheduler.remove_all_jobs()
        tz = self.ctx.settings.opsd.tz
        grace = int(self.ctx.settings.schedule.misfire_grace.total_seconds())
        for spec in enabled_jobs(self.ctx):
            trigger = spec.schedule.trigger(tz)
            if spec.phase and isinstance(trigger, IntervalTrigger):  # the first fire one interval and the phase on
                trigger = IntervalTrigger(seconds=trigger.interval.total_seconds(), timezone=tz,
                                          start_date=datetime.now(tz) + trigger.interval + spec.phase)
            self.scheduler.add_job(
                self._fire, trigger, args=[spec.job], id=spec.job, name=spec.job,
                max_instances=1, coalesce=True, misfire_grace_time=grace, replace_existing=True,
            )

    def next_runs(self) -> dict[str, str]:
        assert self.scheduler is not None
        return {j.id: j.next_run_time.isoformat() if j.next_run_time else "paused"
                for j in self.scheduler.get_jobs() if not j.id.startswith("catch-up")}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        try:
            stale = self.ctx.history.mark_interrupted(socket.gethostname(), _alive_pids())
        except OpsdError as e:  # the jobs still run; each one says so until the history works again
            history_down(self.ctx, e)
            stale = 0
        if stale:
            self.log.warning("history.interrupted_runs", count=stale)
        leftovers.reap_at_start(self.ctx)  # copies of production whose job died with the last daemon
        if self.fleet is not None:
            self.fleet.start()
        tz = self.ctx.settings.opsd.tz
        self.scheduler = BackgroundScheduler(timezone=tz, job_defaults={
            "max_instances": 1, "coalesce": True,
            "misfire_grace_time": int(self.ctx.settings.schedule.misfire_grace.total_seconds())})
        self._schedule_jobs()
        self.scheduler.start()
        self._start_metrics()
        needed, why = catch_up_needed(self.ctx, self.ctx.now())
        self.log.info("daemon.catch_up", run=needed, reason=why)
        if needed:
            self.scheduler.add_job(self._fire, "date", args=["backup-full", "catch-up"], id="catch-up-full",
                                   max_instances=1, misfire_grace_time=None)
        self.log.info("daemon.started", pid=os.getpid(), timezone=str(tz), jobs=self.next_runs())
        notify(f"READY=1\nSTATUS=scheduler running; {self.status_line()}")

    def _start_metrics(self) -> None:
        addr = self.ctx.settings.metrics.address()
        if addr is None:
            return
        from prometheus_client import start_http_server

        from opsd.metrics import registry

        try:
            self._metrics_server, _ = start_http_server(addr[1], addr=addr[0], registry=registry(lambda: self.ctx))
        except OSError as e:  # the daemon still runs its jobs; the failure is loud
            self.log.error("metrics.failed", listen=self.ctx.settings.metrics.listen, error=str(e))
            return
        self.log.info("metrics.listening", listen=self.ctx.settings.metrics.listen)

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def request_reload(self, *_: object) -> None:
        self._reload.set()

    def install_signals(self) -> None:
        def on_term(signum: int, _frame: FrameType | None) -> None:
            self.request_stop()

        def on_hup(signum: int, _frame: FrameType | None) -> None:
            self.request_reload()

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        signal.signal(signal.SIGHUP, on_hup)

    def reload(self) -> bool:
        try:
            settings = self._load_settings()
        except ConfigError as e:
            self.log.error("config.reload_rejected", path=e.path, problems=e.problems,
                           note="keeping the previous configuration")
            return False
        self._retired.append(self.ctx.runner)  # a job started before the reload still runs on it
        self.ctx = self._make_context(settings)
        old, self.probe = self.probe, probe_for(settings)
        old.close()
        self._schedule_jobs()
        self.log.info("config.reloaded", path=settings.source, jobs=self.next_runs())
        return True

    def run_forever(self, poll: float = 0.5) -> None:
        self.start()
        while not self._stop.is_set():
            if self._reload.is_set():
                self._reload.clear()
                self.reload()
            notify("WATCHDOG=1")
            self._stop.wait(poll)
        self.shutdown()

    def shutdown(self) -> None:
        notify("STOPPING=1\nSTATUS=stopping")
        self.log.info("daemon.stopping", running_jobs=sorted(self._active))
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if "drill" in self._active:  # a drill is never worth waiting for: cancel it, it tears itself down
            self.log.warning("daemon.cancelling_drill")
            self.drill.stop(self.ctx)
        deadline = time.monotonic() + self.shutdown_timeout
        while self._running and time.monotonic() < deadline:
            time.sleep(0.2)
        if self._running:
            self.log.warning("daemon.cancelling", running_jobs=self._running)
            for runner in (self.ctx.runner, *self._retired):  # also a job started before a reload
                runner.cancel_all()
            end = time.monotonic() + 30
            while self._running and time.monotonic() < end:
                time.sleep(0.2)
        if self.fleet is not None:  # the lease revoked: this host's claims are free at once
            self.fleet.stop()
        self.probe.close()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        self.log.info("daemon.stopped")


def run_once(ctx: Context) -> dict[str, str]:
    """Run every enabled job once, in order (full, diff, incr, check, verify, drill, the fleet's; not the
    heartbeat, the health sampler or the query-statistics snapshots: periodic by nature). A fleet drill host holds
    its lease meanwhile (a CronJob's drill is claimed like the daemon's). Returns job -> outcome."""
    fleet = presence_for(ctx)
    if fleet is not None:
        fleet.start()
    try:
        control = DrillControl()  # a fleet drill whose lease is lost is aborted, as the daemon's is
        return {spec.job: run_safely(ctx, spec.job, "once", drill=control, fleet=fleet)
                for spec in enabled_jobs(ctx) if spec.job not in (HEARTBEAT, HEALTH, QUERIES)}
    finally:
        if fleet is not None:
            fleet.stop()


def _alive_pids() -> set[int]:
    return {int(p) for p in os.listdir("/proc") if p.isdigit()}
