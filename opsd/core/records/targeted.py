"""Targeted recovery: named restore points, the transactions the WAL shows for a table, and a table restored
beside the live one (with how it compares)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from opsd.core.records.base import Part, Record


class RestorePoint(Record):
    """A named restore point: where (LSN, timeline, segment) and when; ``source``: who knows it (history: opsd
    created it; wal: found in the archived WAL; both)."""

    KIND: ClassVar[str] = "restore-point"
    name: str
    lsn: str
    timeline: int
    time: datetime | None = None  # opsd's record; from the WAL: the last transaction end before it
    segment: str | None = None
    source: str = "history"
    recoverable: bool | None = None  # a backup that ended before it, and WAL up to it, in the repository
    why: str | None = None  # why it is not recoverable

    def summary(self) -> str:
        return f"restore point {self.name!r} at {self.lsn} on timeline {self.timeline} (segment {self.segment})"


class WalChange(Part):
    """One committed transaction that changed a table, as the archived WAL shows it. The WAL records no user
    or application: ``user`` and ``application`` stay null (kept for a later source, such as an audit table)."""

    table: str | None
    xid: int
    commit_time: datetime
    lsn: str  # of the commit record
    timeline: int
    inserts: int
    updates: int
    deletes: int
    truncated: bool
    dropped: bool
    rewritten: bool = False  # the table got a new file node (TRUNCATE, VACUUM FULL, CLUSTER, a rewriting ALTER)
    subxacts: list[int] = Field(default_factory=list)
    file_nodes: list[str] = Field(default_factory=list)
    user: str | None = None
    application: str | None = None
    note: str | None = None


class TableComparison(Part):
    """The recovered table against the live one, by primary key (``matched`` false: no primary key, or the live
    table is gone)."""

    table: str
    recovered_as: str
    recovered_rows: int
    live_rows: int | None
    matched: bool
    key: list[str] = Field(default_factory=list)
    missing_from_live: int | None = None
    only_in_live: int | None = None
    changed: int | None = None
    why_unmatched: str | None = None
    put_back_sql: str | None = None
    # "victims": only the rows the known bad transaction (--before-xid) deleted or changed; "missing": every
    # recovered row missing from live, rows deleted on purpose since the target included
    put_back_scope: str | None = None
    victims: int | None = None  # rows the bad transaction deleted or changed (in the victims table)
    victims_table: str | None = None
    put_back_notes: list[str] = Field(default_factory=list)  # identity, generated columns, what the scope means


class TableRestoreResult(Record):
    KIND: ClassVar[str] = "restore-table"
    tables: list[str]
    into_schema: str | None
    into_file: str | None = None
    backup: str
    target: str  # as the plan showed it: "xid 123 (exclusive)", "name before-x", "time ..."
    recovered_at: datetime | None = None  # the last transaction the copy replayed
    scratch: str
    restore_seconds: float
    recovery_seconds: float | None = None
    dump_bytes: int = 0
    load_seconds: float | None = None
    comparisons: list[TableComparison] = Field(default_factory=list)
    before_xid: int | None = None  # the bad transaction, when known (--before-xid)
    created_as: str | None = None  # the role the copies were created, filled and loaded as (the tables' owner)
    # why not as the owner (then the copies carry no owner code: ``dropped`` names what was left out)
    not_as_owner: str | None = None
    dropped: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)  # unlogged tables (they come back empty), ...

    def summary(self) -> str:
        where = f"into schema {self.into_schema}" if self.into_schema else f"into file {self.into_file}"
        return (f"restored {', '.join(self.tables)} as of {self.target} {where} (backup {self.backup}); "
                "the live tables were not touched")
