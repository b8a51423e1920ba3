"""A migration rehearsed on a restored copy of production: what it did (statements, locks, rewrites, indexes,
constraints, WAL), what that would do to production's traffic, the hazards with their safer patterns, the
checks on the copy after it, and what its rollback left behind. Statement text is kept only with its literals
masked (a literal may be a customer's data)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from opsd.core.records.base import Part, Record

Verdict = Literal["PASSED", "HAZARDS", "FAILED"]
PASSED: Verdict = "PASSED"
HAZARDS: Verdict = "HAZARDS"
FAILED: Verdict = "FAILED"


class Statement(Part):
    """One statement the command sent to the copy, from the copy's own log (literals masked)."""

    text: str
    ms: float | None = None  # None: it failed (``error``) or its duration was not logged
    error: str | None = None
    phase: str = "migrate"  # migrate | rollback


class LockHeld(Part):
    """A lock the command held on a relation of the copy, as sampled from pg_locks: how long, what it blocks."""

    relation: str
    mode: str
    seconds: float  # held, as the samples saw it (at least one sampling interval)
    blocks: list[str] = Field(default_factory=list)  # ordinary traffic it blocks: reads, writes, ...
    bytes: int | None = None  # the relation's size before the migration (None: created by it)
    rows: int | None = None  # its estimated rows (pg_class.reltuples) before the migration
    statement: str | None = None  # what its session ran when the lock was first seen (literals masked)
    phase: str = "migrate"


class Rewrite(Part):
    """A relation whose file node changed: every row written again."""

    relation: str
    kind: str  # table | index | ...
    bytes_before: int
    bytes_after: int | None


class IndexBuilt(Part):
    index: str
    table: str
    concurrently: bool
    valid: bool
    bytes: int | None = None


class ConstraintAdded(Part):
    name: str
    table: str
    kind: str  # foreign key | check | unique | primary key | exclusion
    validated: bool
    not_valid: bool  # added NOT VALID (validated later, or not at all)


class Hazard(Part):
    """A known hazard on production, with the pattern that avoids it."""

    code: str  # rewrite | index-not-concurrent | constraint-validated | type-change | long-update | long-lock
    relation: str | None
    message: str
    advice: str


class TableDiff(Part):
    """A table compared before the migration and after the rollback, row by row (a multiset of row checksums)."""

    table: str
    rows_before: int
    rows_after: int | None  # None: the table is gone after the rollback
    missing: int  # rows before that are not there after
    extra: int  # rows after that were not there before (changed or new)
    migration_changed: bool  # the migration itself changed this table's rows


class Phase(Part):
    """One run of the operator's command (the migration, or its rollback)."""

    name: str  # migrate | rollback
    command: str  # as given, secrets masked
    exit_code: int | None  # None: killed at the timeout
    seconds: float
    output_tail: list[str] = Field(default_factory=list)  # the command's last lines (secrets masked)
    sessions_on_copy: int = 0  # sessions of the migration role the copy saw
    sessions_on_production: int = 0  # new sessions of that role production saw meanwhile
    wal_bytes: int = 0


class Check(Part):
    """A check on the copy after the migration: ok, warning (said, not failed), failed."""

    name: str
    status: Literal["ok", "warning", "failed"]
    message: str


class RehearsalResult(Record):
    KIND: ClassVar[str] = "rehearse"

    verdict: Verdict
    dbname: str
    role: str
    os_user: str
    backup: str | None = None
    target: str
    recovered_at: str | None = None
    restore_seconds: float | None = None
    recovery_seconds: float | None = None
    phases: list[Phase] = Field(default_factory=list)
    statements: list[Statement] = Field(default_factory=list)
    statements_dropped: int = 0  # beyond the first MAX_STATEMENTS
    locks: list[LockHeld] = Field(default_factory=list)
    rewrites: list[Rewrite] = Field(default_factory=list)
    indexes: list[IndexBuilt] = Field(default_factory=list)
    constraints: list[ConstraintAdded] = Field(default_factory=list)
    hazards: list[Hazard] = Field(default_factory=list)
    impact: list[str] = Field(default_factory=list)  # the derived production impact, one line each
    checks: list[Check] = Field(default_factory=list)
    schema_diff: list[str] | None = None  # after the rollback against before (None: no rollback ran)
    tables: list[TableDiff] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list)  # why FAILED, one line each
    sample_interval: float = 0.1
    kept: str | None = None  # the copy, when --keep
    next_steps: list[str] = Field(default_factory=list)  # the real run, for a rehearsal that passed

    def summary(self) -> str:
        took = sum(p.seconds for p in self.phases if p.name == "migrate")
        what = (f"{len(self.hazards)} hazard(s)" if self.hazards else "no hazard") if self.verdict != FAILED else \
            (self.failures[0] if self.failures else "failed")
        return f"rehearsal {self.verdict} on {self.dbname}: migration {took:.1f}s; {what}"
