"""Take a pgBackRest backup: refuse on a standby, hold opsd's lock, run, then read back what was made."""

from __future__ import annotations

from collections.abc import Callable

from opsd.actions.jobs import JobOutcome
from opsd.actions.server import server_role
from opsd.adapters.files import exclusive_lock
from opsd.context import Context
from opsd.core.records.base import Note
from opsd.core.records.jobs import BackupResult
from opsd.core.records.runs import Outcome
from opsd.errors import OpsdError


class StandbySkip(OpsdError):
    """This host is a standby: backups are taken on the primary."""


def take_backup(ctx: Context, backup_type: str, on_line: Callable[[str, str], None] | None = None) -> BackupResult:
    role = server_role(ctx)
    if role.in_recovery:
        raise StandbySkip("skipped: standby (pg_is_in_recovery() is true); backups are taken on the primary",
                          hint="run opsd backup on the primary")
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


def backup_job(ctx: Context, backup_type: str) -> Callable[[], JobOutcome]:
    """The body the scheduler runs: a standby is a skip, not a failure."""

    def body() -> JobOutcome:
        try:
            r = take_backup(ctx, backup_type)
        except StandbySkip as e:
            return JobOutcome(Outcome.SKIPPED, str(e), Note(reason="standby"))
        return JobOutcome(Outcome.OK, r.summary(), r)

    return body
