"""The duration log read at each snapshot: executions over each objective's threshold, matched by queryid
(a stub until it is built: the window's objective is unknown)."""

from __future__ import annotations

from dataclasses import dataclass

from opsd.adapters.stores.database import StateDB
from opsd.context import Context


@dataclass(frozen=True)
class LogOutcome:
    state: str  # complete | unknown | none
    problem: str | None = None


def collect(ctx: Context, db: StateDB, snapshot_id: int) -> LogOutcome:
    """Read the duration log from where the last snapshot stopped; store its over-threshold counts against
    ``snapshot_id`` (table query_over)."""
    del ctx, db, snapshot_id
    return LogOutcome("unknown", "the duration log is not read yet")
