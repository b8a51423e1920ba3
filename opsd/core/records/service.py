"""The platform's service levels as opsd measured them: availability spans and a month of them, and the monthly
report's "Service levels" section (each success metric of the platform answered with what was measured, or with
what is missing and why). Built by core/availability.py and actions/report/service.py; rendered by
report/service_section.py; dumped whole into the report's JSON (docs/schemas/report.json)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from opsd.core.records.base import Part


class AvailabilitySpan(Part):
    """Time the health probe saw the server ``up`` or ``down`` without a gap (``what``: for down, what failed)."""

    id: int | None = None
    state: str
    start_at: datetime
    end_at: datetime
    what: str = ""


class Outage(Part):
    """A down span inside the period. ``ended``: up (a probe answered again), unknown (no probe followed: opsd
    stopped sampling while it was down), ongoing (still down at the last probe), period end."""

    start: datetime
    end: datetime
    seconds: float
    what: str
    ended: str


class AvailabilityDay(Part):
    day: str  # YYYY-MM-DD in opsd.timezone
    up_seconds: float
    down_seconds: float
    unknown_seconds: float


class Availability(Part):
    """A period's availability (core/availability.py): up, down and unknown seconds; ``measured_share`` = up /
    (up + down), ``lower_bound`` = up / period (unknown counted as down); ``budget_seconds`` = (1 - target) x
    period; ``verdict``: met (down + unknown within the budget), missed (down alone over it), not proven, no
    data."""

    period_start: datetime
    period_end: datetime  # the month's end, or now for the current month
    target: float
    up_seconds: float
    down_seconds: float
    unknown_seconds: float
    measured_share: float | None
    lower_bound: float | None
    budget_seconds: float
    verdict: str
    outages: list[Outage] = Field(default_factory=list)
    days: list[AvailabilityDay] = Field(default_factory=list)


# ------------------------------------------------------------------ the monthly report's "Service levels" section
MET, MISSED, NOT_PROVEN, NO_DATA, MEASURED = "met", "missed", "not proven", "no data", "measured"


class Answer(Part):
    """One success metric of the platform answered: ``metric`` in the platform's words, ``measured`` the figure
    opsd measured (one line), ``target`` its target, ``verdict`` met | missed | not proven | no data | measured
    (a figure without a target), ``missing``: what is missing and why (never empty for no data / not proven)."""

    key: str  # objective:<name> | availability | recovery | migrations | integrity | storage
    metric: str
    measured: str
    target: str
    verdict: str
    missing: list[str] = Field(default_factory=list)


class ObjectiveDay(Part):
    """One day of one objective: statements (calls) and executions over the threshold; ``share_under`` =
    1 - over / calls; ``verdict`` met | missed | unknown (``why``: the duration log unreadable, statements
    evicted, no snapshot...)."""

    day: str
    calls: int
    over: int
    share_under: float | None
    verdict: str
    why: str = ""


class ObjectiveMonth(Part):
    name: str
    threshold_seconds: float
    target: float
    database: str | None = None
    role: str | None = None
    calls: int = 0
    over: int = 0
    share_under: float | None = None
    days_met: int = 0
    days_missed: int = 0
    days_unknown: int = 0
    verdict: str = NO_DATA
    days: list[ObjectiveDay] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)


class RecoveryTests(Part):
    """The month's drills as the report's verdict counts them."""

    drills_run: int
    drills_passed: int
    drills_failed: int
    recoverable_all_month: bool
    longest_unproven: float | None
    statement: str


class Rehearsals(Part):
    rehearsed: int
    passed: int
    hazards: int
    failed: int


class AmcheckRun(Part):
    """amcheck in one drill of the month: ``status`` ok | warning | critical | not run; ``corrupt``: relations it
    found corrupt (None: a drill recorded before opsd counted them)."""

    drill_id: int
    started_at: datetime
    status: str
    corrupt: int | None
    not_checked: int | None


class IndexProblem(Part):
    """An invalid index or a constraint never validated, as the catalog said when the report was made."""

    dbname: str
    schema_name: str
    table_name: str
    name: str
    kind: str  # invalid index | NOT VALID <constraint kind>
    size_bytes: int | None = None
    statements: list[str] = Field(default_factory=list)


class Integrity(Part):
    """``read_at``: when the catalog was read (None: it could not be: ``missing`` says why)."""

    read_at: datetime | None
    invalid_indexes: list[IndexProblem] = Field(default_factory=list)
    not_valid: list[IndexProblem] = Field(default_factory=list)
    amcheck: list[AmcheckRun] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)


class TableGrowth(Part):
    """A table's size on the month's first and last day sized (``relation_sizes``), and its growth."""

    dbname: str
    schema_name: str
    table_name: str
    first_day: str
    last_day: str
    size_first: int
    size_last: int
    growth_bytes: int
    growth_share: float | None  # growth / size_first (None: it was empty or new)


class Storage(Part):
    """The largest tables and their growth; bytes in indexes no query used (on every node, over the unused
    window) and in duplicate or covered ones, as read when the report was made."""

    tables: list[TableGrowth] = Field(default_factory=list)
    tables_bytes: int | None = None  # every table sized on the month's last day sized
    unused_indexes: int | None = None
    unused_bytes: int | None = None
    unused_decided: bool = False
    unused_why: str = ""
    redundant_indexes: int | None = None
    redundant_bytes: int | None = None
    missing: list[str] = Field(default_factory=list)


class ServiceLevels(Part):
    """The monthly report's "Service levels" section (docs/reports.md): each success metric answered, then the
    parts behind the answers."""

    answers: list[Answer]
    objectives: list[ObjectiveMonth]
    availability: Availability | None
    availability_missing: list[str]
    recovery: RecoveryTests
    rehearsals: Rehearsals
    integrity: Integrity
    storage: Storage


class IndexFigures(Part):
    """What the metrics need of the last index report (``<state_dir>/index-figures.json``): read at scrape time
    instead of the live catalogs. ``unused_bytes`` None: no unused verdict yet (statistics too short)."""

    at: datetime
    invalid: int
    invalid_bytes: int
    not_valid: int
    unused: int | None
    unused_bytes: int | None
    redundant_bytes: int
