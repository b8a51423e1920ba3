"""A rehearsal's plan as plain data (the console and --json both render this)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from typing_extensions import TypedDict

from opsd.actions.restore.view import PlanView, describe

if TYPE_CHECKING:
    from opsd.actions.rehearse.job import RehearsePlan


class RehearsePlanView(TypedDict):
    restore: PlanView
    dbname: str
    role: str | None  # null: the database's owner at the target time
    os_user: str
    migrate: str
    rollback: str | None
    workdir: str
    scratch: str
    scratch_bytes: int | None  # the copy's files (the migrated database and the system ones) and the WAL
    timeout_seconds: float
    refused: bool


def rehearse_plan_view(rp: RehearsePlan, shown: str, shown_rollback: str | None) -> RehearsePlanView:
    r, p = rp.request, rp.partial
    restore = rp.restore
    need = (p.restored_bytes + restore.wal_bytes if p.partial and p.restored_bytes is not None
            else restore.backup.size if restore.backup else None)
    return RehearsePlanView(restore=describe(restore), dbname=r.dbname, role=r.role, os_user=r.os_user,
                            migrate=shown, rollback=shown_rollback, workdir=str(r.workdir),
                            scratch=str(restore.request.dest), scratch_bytes=need, timeout_seconds=r.timeout,
                            refused=restore.refused)
