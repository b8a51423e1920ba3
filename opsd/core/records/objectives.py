"""The query objectives, counted (docs/queries.md): per snapshot window the calls of an objective's statements
(pg_stat_statements deltas) and its executions over the threshold (PostgreSQL's duration log), per day a
verdict, and the statements contributing most to the misses. Built by core/queries/objectives.py from what the
objectives store reads; printed by ``opsd queries`` (console and ``--json``), read by metrics and the monthly
report."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from opsd.core.records.base import Part

# the states of a day and of a period
MET, MISSED, UNKNOWN, INCOMPLETE, NO_STATEMENTS = "met", "missed", "unknown", "incomplete", "no_statements"
UNMATCHED = "unmatched"  # the selector names a database or role the server does not have
STATES = (MET, MISSED, UNKNOWN, INCOMPLETE, NO_STATEMENTS, UNMATCHED)


class Window(Part):
    """One snapshot of the node whose duration log opsd reads, and what it counted for one objective: ``calls``
    (the objective's statements' calls in (since, taken_at]) and ``over`` (their executions at or over the
    threshold the log timed). ``log_state``: complete | unknown | none; ``problems``: the snapshot's.
    ``counted``: the log was counted under the objective's current definition (threshold and selector) at this
    snapshot; ``count_problem``: why that count is not exact (an override), empty when it is."""

    snapshot_id: int
    taken_at: datetime
    since: datetime
    statements: bool
    reset: bool
    dealloc: int
    log_state: str
    problems: list[str] = Field(default_factory=list)
    calls: int = 0
    over: int = 0
    counted: bool = True
    count_problem: str = ""


class ObjectiveDay(Part):
    """One day (in opsd.timezone) of one objective: the windows whose snapshot was taken that day. ``share_over``
    = over / calls; ``share_under`` = 1 - share_over; ``state`` met | missed | unknown | incomplete |
    no_statements; ``reasons``: why unknown or incomplete (one line each)."""

    day: str  # YYYY-MM-DD
    calls: int
    over: int
    share_over: float | None
    share_under: float | None
    state: str
    reasons: list[str] = Field(default_factory=list)


class Contributor(Part):
    """A statement (queryid, database, role) of the objective with executions over its threshold in the period,
    and its pg_stat_statements figures summed over the period's windows (``calls`` 0 and no figures when
    pg_stat_statements did not see it under that role: see docs/queries.md on roles). ``text``: the normalised
    text (never one with literals); None when hidden (opsd's role lacks pg_read_all_stats) or never seen."""

    queryid: int
    dbname: str
    rolname: str
    over: int
    calls: int
    total_ms: float
    mean_ms: float | None
    rows: int
    shared_read: int
    shared_hit: int
    temp_read: int
    temp_written: int
    wal_bytes: int
    text: str | None = None


class ObjectiveResult(Part):
    """One objective over the period: the sums of its days, the period's state and its days, oldest first. The
    period's state: missed when any day missed (whatever the period's share); else the same rules as a day's
    over every window of the period; unmatched when its selector names a database or role the server does not
    have and nothing was counted (a typo is not a clean record)."""

    name: str
    threshold_ms: float
    target: float
    database: str | None = None
    role: str | None = None
    calls: int = 0
    over: int = 0
    share_over: float | None = None
    share_under: float | None = None
    state: str = UNKNOWN
    reasons: list[str] = Field(default_factory=list)
    days: list[ObjectiveDay] = Field(default_factory=list)
    top: list[Contributor] = Field(default_factory=list)


class ObjectiveReport(Part):
    """``opsd queries``: every objective (or the one asked for) over [since, until). ``node``: the node whose
    snapshots and duration log are counted (None: no snapshot yet). ``notes``: what the reader must know (texts
    hidden, no snapshot yet...)."""

    since: datetime
    until: datetime
    timezone: str
    node: str | None
    objectives: list[ObjectiveResult] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def all_met(self) -> bool:
        """Every objective met (one that matched no statement is not held against it; one whose selector names
    nothing the server has is)."""
        return all(o.state in (MET, NO_STATEMENTS) for o in self.objectives)
