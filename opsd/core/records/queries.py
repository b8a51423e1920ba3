"""Service-level records (docs/queries.md): what a snapshot of one node saw, statements' deltas, and what the
store answers about tables and indexes over a window. Written by actions/queries, read by ``opsd queries``,
``opsd indexes``, metrics and the monthly report."""

from __future__ import annotations

from dataclasses import field
from datetime import date, datetime

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass

_CFG = ConfigDict(extra="ignore", defer_build=True)


@dataclass(frozen=True, config=_CFG)
class SnapshotInfo:
    """One snapshot of one node. ``since`` is the node's previous snapshot (None: its first, which has no
    deltas). ``reset``: counters restarted inside the window (a statistics reset, a restart, a failover): the
    deltas count from the restart. ``dealloc``: statements pg_stat_statements evicted in the window (>0: the
    window is incomplete). ``log_state``: complete | unknown | none (the duration log of the window)."""

    id: int
    node: str
    taken_at: datetime
    since: datetime | None
    statements: bool
    reset: bool = False
    dealloc: int = 0
    log_state: str = "none"
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, config=_CFG)
class StatementDelta:
    queryid: int
    dbname: str
    rolname: str
    calls: int
    total_ms: float
    rows: int
    shared_hit: int
    shared_read: int
    temp_read: int
    temp_written: int
    wal_bytes: int


@dataclass(frozen=True, config=_CFG)
class IndexUse:
    """An index on one node over a window: scans summed from the deltas, when the node's snapshots saw it."""

    node: str
    dbname: str
    schemaname: str
    relname: str
    indexname: str
    scans: int
    first_at: datetime
    last_at: datetime
    size_bytes: int


@dataclass(frozen=True, config=_CFG)
class NodeCoverage:
    """The span one node's snapshots cover in a window, and how many there were."""

    node: str
    first_at: datetime
    last_at: datetime
    snapshots: int


@dataclass(frozen=True, config=_CFG)
class TableActivity:
    """A table on the primary over a window (summed deltas) and its latest size: ``size_bytes`` its heap and
    TOAST, ``indexes_bytes`` its indexes' (pg_class.relpages: as of the last VACUUM, ANALYZE or CREATE INDEX)."""

    dbname: str
    schemaname: str
    relname: str
    seq_scan: int
    seq_tup_read: int
    idx_scan: int
    n_tup_ins: int
    n_tup_upd: int
    n_tup_del: int
    size_bytes: int
    indexes_bytes: int = 0


@dataclass(frozen=True, config=_CFG)
class TableSize:
    """A table's size on the primary, once a day (the first snapshot of that day in [opsd] timezone): heap, TOAST
    and indexes (pg_class.relpages)."""

    day: date
    dbname: str
    schemaname: str
    relname: str
    size_bytes: int
