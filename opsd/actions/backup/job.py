"""Take a pgBackRest backup: refuse on a standby, hold opsd's lock, run, then read back what was made."""

from __future__ import annotations

import threading
from collections.abc import Callable

from opsd.actions.jobs import JobOutcome
from opsd.actions.role import RoleSkip, node_role
from opsd.adapters.files import exclusive_lock
from opsd.adapters.pgbackrest_conf import pg_hosts
from opsd.context import Context
from opsd.core.records.jobs import BackupResult
from opsd.core.records.runs import Outcome
from opsd.core.role import NodeRole, Role, stop_running_backup
from opsd.db.connection import checkpoint
from opsd.db.queries import TimelineRow, fetch_one
from opsd.errors import CommandCancelled, CommandError, ConfigError, OpsdError
from opsd.log import get_logger


def take_backup(ctx: Context, backup_type: str, on_line: Callable[[str, str], None] | None = None) -> BackupResult:
    from_standby = _standby_source(ctx)
    _last_moment(ctx)
    pgbr = ctx.pgbackrest
    with exclusive_lock(ctx.lock_dir, "backup", ctx.settings.opsd.run_as, f"opsd backup --type {backup_type}"):
        # also the preflight: with probe_io_timeout, an unreachable repository fails here in seconds, where the
        # backup itself would retry for io-timeout (the second call, after it, costs about 0.05 s)
        before = {b.label for b in pgbr.info().backups}
        with RoleWatch(ctx) as watch:
            try:
                res = pgbr.backup(backup_type, on_line=on_line, from_standby=from_standby)
            except CommandError:
                watch.raise_if_lost()
                raise
        after = pgbr.info()
    new = [b for b in after.backups if b.label not in before]
    if not new:
        raise OpsdError("pgbackrest backup exited 0 but no new backup appears in pgbackrest info")
    b = new[-1]
    return BackupResult(
        label=b.label, type=b.type, requested_type=backup_type, size=b.size, delta=b.delta,
        repo_size=b.repo_size, repo_delta=b.repo_delta, duration=res.duration,
        wal_start=b.wal_start, wal_stop=b.wal_stop,
    )


def _standby_source(ctx: Context) -> bool:
    """``[pgbackrest] backup_standby``: pgbackrest.conf must name at least two nodes (pg1 and a standby), else
    pgBackRest would fail late with a message about options; say what is missing before anything starts."""
    s = ctx.settings.pgbackrest
    if not s.backup_standby:
        return False
    hosts = pg_hosts(s.config, s.stanza)
    if len(hosts) < 2:
        raise ConfigError(str(s.config), [
            f"[pgbackrest] backup_standby = true, but it names {len(hosts)} node(s) for stanza {s.stanza} "
            f"({', '.join(f'pg{i}' for i in hosts) or 'none'}): add the standby as pg2 (pg2-host or pg2-path, "
            "pg2-port; docs/install.md, 'Backups from a standby'), or set backup_standby = false"])
    return True


class RoleWatch:
    """While a backup runs on a Patroni node, ask the role again every ``[patroni] check_every``: a node that
    lost the leader lock (Patroni now says replica) stops its backup at once, recorded as interrupted by the
    role change, instead of copying a cluster that is being demoted under it."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.lost: NodeRole | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="opsd-role-watch")

    def __enter__(self) -> RoleWatch:
        if self.ctx.settings.patroni.url:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        every = self.ctx.settings.patroni.check_every.total_seconds()
        seen: list[NodeRole] = []
        while not self._stop.wait(every):
            seen = [*seen[-1:], node_role(self.ctx)]
            lost = stop_running_backup(seen)
            if lost is not None:
                self.lost = lost
                get_logger().warning("backup.role_lost", role=str(lost.role), why=lost.why)
                self.ctx.runner.stop_running("backup")
                return

    def raise_if_lost(self) -> None:
        if self.lost is not None:
            if self.lost.role == Role.STANDBY:
                raise CommandCancelled(f"backup stopped: this node lost the leader role during the backup "
                                       f"({self.lost.why}); the new primary takes the next one")
            raise CommandCancelled(f"backup stopped: this node is no longer the decided primary "
                                   f"({self.lost.describe()}); no repository writes until its role is decided")


def _last_moment(ctx: Context) -> None:
    """One question to PostgreSQL just before the backup. run_job skipped this on a standby, but a switchover
    can happen in between: a standby now is still a skip. Right after a promotion (Patroni's, pg_ctl's), until
    the first checkpoint on the new timeline, pgBackRest refuses to back up ('WAL timeline 2 does not match
    pg_control timeline 1'): checkpoint first."""
    with ctx.connect() as conn:
        t = fetch_one(conn, "timelines", TimelineRow)
        if t.in_recovery:
            raise RoleSkip("skipped: this node became a standby (pg_is_in_recovery() is true): backups run on "
                           "the primary", NodeRole(Role.STANDBY, "postgres", "pg_is_in_recovery() is true"))
        if t.checkpoint_timeline != t.wal_timeline:
            get_logger().info("backup.checkpoint", reason=f"promoted to timeline {t.wal_timeline}; the last "
                                                           f"checkpoint is on timeline {t.checkpoint_timeline}")
            checkpoint(conn)


def backup_job(ctx: Context, backup_type: str) -> Callable[[], JobOutcome]:
    """The body the scheduler runs: a standby is a skip, not a failure."""

    def body() -> JobOutcome:
        r = take_backup(ctx, backup_type)
        return JobOutcome(Outcome.OK, r.summary(), r)

    return body
