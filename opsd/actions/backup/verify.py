"""``pgbackrest verify`` of the whole repository (every backup file and WAL segment read back and checked),
so file-level damage is caught between drills. pgBackRest exits 0 even when it finds damage: the parsed
status decides."""

from __future__ import annotations

from collections.abc import Callable

from opsd.actions.jobs import JobOutcome
from opsd.context import Context
from opsd.core.records.jobs import VerifyResult
from opsd.core.records.runs import Outcome
from opsd.errors import OpsdError


class RepositoryDamaged(OpsdError):
    def __init__(self, result: VerifyResult) -> None:
        super().__init__("repository damaged: " + result.summary(),
                         hint="a drill from the damaged backup will fail; take a new full backup "
                              "('opsd backup --type full') and see docs/drills.md")
        self.result = result
        self.details = result


def run_verify(ctx: Context, backup_set: str | None = None) -> VerifyResult:
    return ctx.pgbackrest.verify(backup_set)


def verify_job(ctx: Context, stanza: str | None = None, backup_set: str | None = None
               ) -> Callable[[], JobOutcome]:
    def body() -> JobOutcome:
        sctx = ctx.for_stanza(stanza) if stanza else ctx
        result = run_verify(sctx, backup_set)
        if not result.ok:  # run_job records it and raises the alert job.verify.<stanza>
            raise RepositoryDamaged(result)
        return JobOutcome(Outcome.OK, result.summary(), result)

    return body
