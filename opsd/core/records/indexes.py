"""Index records (docs/queries.md, "Indexes"): what the catalog says of each index, and what ``opsd indexes``
finds: duplicate and covered indexes, unused ones (on every node of the cluster), invalid ones, missing ones
(proven with a hypothetical index, or a guess), and constraints never validated. Built by actions/queries/indexes,
read by ``opsd indexes``, metrics and the monthly report. Every suggestion carries the statements to run: opsd
never runs them."""

from __future__ import annotations

from dataclasses import field
from datetime import datetime

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass

_CFG = ConfigDict(extra="ignore", defer_build=True)


@dataclass(frozen=True, config=_CFG)
class IndexInfo:
    """One index as the catalog of one database describes it (db/sql/ix_indexes.sql). ``table_ref`` and
    ``index_ref`` are the names as SQL, quoted by the server. ``keys``: each key column's definition (a column's
    name or an expression's text), with its operator class, collation and options (DESC, NULLS FIRST) beside.
    ``attached``: a partition of a partitioned index (created and dropped with it); ``parent``: that partitioned
    index's name. ``root_schema``/``root_table``: the table's partition root (the table itself if none)."""

    dbname: str
    schema: str
    table_name: str
    name: str
    table_ref: str
    index_ref: str
    table_kind: str
    kind: str
    method: str
    definition: str
    keys: list[str]
    included: list[str]
    opclasses: list[int]
    collations: list[int]
    options: list[int]
    predicate: str | None
    is_unique: bool
    is_primary: bool
    is_exclusion: bool
    constraints: list[str]
    valid: bool
    ready: bool
    building: bool
    attached: bool
    parent: str | None
    root_schema: str
    root_table: str
    size_bytes: int
    replica_identity: bool = False  # REPLICA IDENTITY USING INDEX: logical replication needs it
    # foreign keys of its table whose columns are its leading key columns: never unused (the referenced table's
    # DELETE and UPDATE look the referencing rows up by it, and those scans are rare but must not be seq scans)
    foreign_keys: list[str] = field(default_factory=list)

    @property
    def partitioned(self) -> bool:
        return self.kind == "I"

    @property
    def enforces(self) -> str | None:
        """Why the index can never be dropped as unused or redundant: it enforces or backs something."""
        if self.is_primary:
            return "primary key"
        if self.is_exclusion:
            return "exclusion constraint"
        if self.constraints:
            return "backs constraint " + ", ".join(self.constraints)
        if self.replica_identity:
            return "replica identity"
        if self.is_unique:
            return "unique"
        return None


@dataclass(frozen=True, config=_CFG)
class RedundantIndex:
    """``kind``: ``duplicate`` (the same keys as ``kept``) or ``covered`` (its keys are a prefix of ``kept``'s).
    ``write_rows``: the table's rows inserted and updated in the window (each one also writes this index)."""

    kind: str
    dbname: str
    schema: str
    table_name: str
    name: str
    definition: str
    kept: str
    kept_definition: str
    size_bytes: int
    write_rows: int | None
    statements: list[str]


@dataclass(frozen=True, config=_CFG)
class UnusedIndex:
    """No scan in the window on any node. ``seen_seconds``: the span the index's statistics cover on the node that
    saw it the shortest. ``write_rows``: the table's rows inserted and updated in the window."""

    dbname: str
    schema: str
    table_name: str
    name: str
    definition: str
    size_bytes: int
    write_rows: int | None
    seen_seconds: float
    statements: list[str]


@dataclass(frozen=True, config=_CFG)
class NodeSpan:
    """What one node's statistics cover in the window. ``read``: opsd has snapshots of it at all."""

    node: str
    read: bool
    span_seconds: float
    first_at: datetime | None = None
    last_at: datetime | None = None


@dataclass(frozen=True, config=_CFG)
class UnusedVerdict:
    """``decided``: every node's statistics cover ``min_span_seconds``; otherwise ``reason`` says why not (e.g. "no
    verdict: statistics cover 2 d 3 h of 7 d (node b short)") and no index is called unused. ``covered_seconds``:
    the shortest span among the nodes. ``undecided``: indexes left out though the nodes are covered (too new, not seen
    on a node), each with why. ``kept``: indexes no node scanned that are still not unused (a foreign key's)."""

    decided: bool
    reason: str
    min_span_seconds: float
    covered_seconds: float
    nodes: list[NodeSpan]
    undecided: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # not scanned, yet never unused: why (a foreign key's index)


@dataclass(frozen=True, config=_CFG)
class InvalidIndex:
    """An index left invalid (or not ready) by a failed CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY: every
    write still maintains it, no query can use it. ``recreate``: the statement that builds it again, once what
    failed it (duplicates under a unique index, a deadlock, a cancel) is fixed."""

    dbname: str
    schema: str
    table_name: str
    name: str
    definition: str
    size_bytes: int
    statements: list[str]
    recreate: str


@dataclass(frozen=True, config=_CFG)
class StatementRef:
    """A statement from pg_stat_statements: its normalised text only (never literals)."""

    queryid: int
    rolname: str
    text: str
    calls: int | None = None


@dataclass(frozen=True, config=_CFG)
class IndexAdvice:
    """A suggested index. ``verdict``: ``proven`` (a hypothetical index of this shape changed the plan of the
    real statement, EXPLAINed as its own role, and lowered its cost from ``cost_before`` to ``cost_after``) or
    ``guess`` (``reason`` says why it was not proven). ``size_bytes``: hypopg's estimate (None: not estimated)."""

    columns: list[str]
    verdict: str
    reason: str
    statements: list[str]
    queryids: list[int]
    cost_before: float | None = None
    cost_after: float | None = None
    size_bytes: int | None = None


@dataclass(frozen=True, config=_CFG)
class MissingIndex:
    """A table read mostly by sequential scans of many rows each, in the window (partitions summed into their
    partitioned table), the statements doing it, and the advice."""

    dbname: str
    schema: str
    table_name: str
    seq_scan: int
    seq_tup_read: int
    idx_scan: int
    rows_per_scan: int
    size_bytes: int
    statements: list[StatementRef]
    advice: list[IndexAdvice]
    note: str = ""  # why there is no advice (no pg_qualstats here: which columns are filtered is not known)


@dataclass(frozen=True, config=_CFG)
class NotValidConstraint:
    """A constraint added NOT VALID and never validated: the rows that existed then were never checked."""

    dbname: str
    schema: str
    table_name: str
    name: str
    kind: str
    definition: str
    statements: list[str]


@dataclass(frozen=True, config=_CFG)
class IndexTotals:
    indexes: int
    index_bytes: int
    unused: int
    unused_bytes: int
    redundant: int
    redundant_bytes: int
    invalid: int
    invalid_bytes: int
    missing: int
    not_valid: int


@dataclass(frozen=True, config=_CFG)
class IndexReport:
    """``since``/``until``: the window whose statistics decide unused and missing indexes. ``databases``: those
    read; ``problems``: what could not be read or checked, one line each (a database refused, a node unread)."""

    generated_at: datetime
    since: datetime
    until: datetime
    databases: list[str]
    unused_verdict: UnusedVerdict
    unused: list[UnusedIndex]
    redundant: list[RedundantIndex]
    invalid: list[InvalidIndex]
    missing: list[MissingIndex]
    not_valid: list[NotValidConstraint]
    totals: IndexTotals
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, config=_CFG)
class Qual:
    """A filter pg_qualstats sampled that no index served (db/sql/ix_quals.sql): one statement's (queryid, role)
    on one column of a table (a partition's: its partitioned table). ``strategy``: the btree strategy of its
    operator (3 equality, 1 2 4 5 a range, None: no btree index serves it). Never its constant."""

    dbname: str
    queryid: int
    rolname: str
    schema: str
    table_name: str
    table_ref: str
    schema_ref: str
    column_name: str
    column_ref: str
    strategy: int | None
    executions: int
    filtered: int


@dataclass(frozen=True, config=_CFG)
class Partition:
    """A partition (db/sql/ix_partitions.sql): its direct parent and its partition root."""

    dbname: str
    schema: str
    table_name: str
    table_ref: str
    schema_ref: str
    partitioned: bool
    parent_ref: str
    root_schema: str
    root_table: str
