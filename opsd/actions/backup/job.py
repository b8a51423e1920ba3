"""Take a pgBackRest backup: refuse on a standby, hold opsd's lock, run, then read back what was made."""

from __future__ import annotations

from collections.abc import Callable

from opsd.actions.jobs import JobOutcome
from opsd.actions.role import RoleSkip
from opsd.actions.server import server_role
from opsd.adapters.files import exclusive_lock
from opsd.context import Context
from opsd.core.records.jobs import BackupResult
from opsd.core.records.runs import Outcome
from opsd.core.role import NodeRole, Role
from opsd.db.connection import checkpoint
from opsd.db.queries import TimelineRow, fetch_one
from opsd.errors import OpsdError
from opsd.log import get_logger


def take_backup(ctx: Context, backup_type: str, on_line: Callable[[str, str], None] | None = None) -> BackupResult:
    """run_job skipped this on a standby; PostgreSQL is asked again here, at the last moment (a switchover can
    happen in between), and a standby is still a skip."""
    if server_role(ctx).in_recovery:
        raise RoleSkip("skipped: this node became a standby (pg_is_in_recovery() is true): backups run on the "
                       "primary", NodeRole(Role.STANDBY, "postgres", "pg_is_in_recovery() is true"))
    _checkpoint_after_promotion(ctx)
    pgbr = ctx.pgbackrest
    with exclusive_lock(ctx.lock_dir, "backup", ctx.settings.opsd.run_as, f"opsd backup --type {backup_type}"):
        before = {b.label for b in pgbr.info().backups}
        res = pgbr.backup(backup_type, on_line=on_line)
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


def _checkpoint_after_promotion(ctx: Context) -> None:
    """Right after a promotion (Patroni's, pg_ctl's), until the first checkpoint on the new timeline, pgBackRest
    refuses to back up ('WAL timeline 2 does not match pg_control timeline 1'): checkpoint first."""
    with ctx.connect() as conn:
        t = fetch_one(conn, "timelines", TimelineRow)
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
