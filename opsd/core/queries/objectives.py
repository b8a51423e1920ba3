"""The query objectives, counted exactly (pure; docs/queries.md): which logged executions are over which
objective's threshold, and the verdict of a day or a period from its snapshot windows.

A window is one snapshot of the node whose duration log opsd reads: its ``calls`` are the pg_stat_statements
deltas of the objective's statements since the previous snapshot, its ``over`` the executions the log timed at
or over the threshold, read at that snapshot. A window belongs to the day (opsd.timezone) its snapshot was taken.

Verdict, in this order: **unknown** when a window's log was not read whole (or no snapshot covers the day);
**incomplete** when pg_stat_statements could not be read, evicted statements (dealloc), or restarted its
counters (a reset, a restart, a failover: the calls before it are lost), or when the windows leave part of the
day uncovered, or carry calls from before it; **no_statements** when nothing matched; else **met** when
(calls - over) / calls >= target, **missed** otherwise."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from opsd.core.queries.logline import SlowExec
from opsd.core.records.objectives import (
    INCOMPLETE,
    MET,
    MISSED,
    NO_STATEMENTS,
    UNKNOWN,
    ObjectiveDay,
    Window,
)

OverKey = tuple[str, int, str, str]  # objective, queryid, dbname, rolname


@dataclass(frozen=True)
class Target:
    """An objective as the counting needs it: its threshold (ms) and its selector."""

    name: str
    threshold_ms: float
    target: float
    database: str | None = None
    role: str | None = None

    @property
    def definition(self) -> str:
        """What the count depends on (query_counted.definition): the threshold and the selector."""
        return f"{self.threshold_ms:g} ms; database {self.database or '*'}; role {self.role or '*'}"

    @property
    def described(self) -> str:
        return (f"{self.threshold_ms:g} ms, " + (f"database {self.database}" if self.database else "every database")
                + ", " + (f"role {self.role}" if self.role else "every role"))

    def selects(self, dbname: str, rolname: str) -> bool:
        return (self.database is None or self.database == dbname) and (self.role is None or self.role == rolname)


def count_over(execs: Iterable[SlowExec], targets: Sequence[Target]) -> dict[OverKey, int]:
    """Executions at or over each objective's threshold among those its selector matches (PostgreSQL logs a
    duration >= log_min_duration_statement: the same comparison), by statement."""
    counts: Counter[OverKey] = Counter()
    for e in execs:
        for t in targets:
            if e.duration_ms >= t.threshold_ms and t.selects(e.dbname, e.rolname):
                counts[(t.name, e.queryid, e.dbname, e.rolname)] += 1
    return dict(counts)


def state_of(calls: int, over: int, target: float, unknown: bool, incomplete: bool) -> str:
    if unknown:
        return UNKNOWN
    if incomplete:
        return INCOMPLETE
    if calls == 0 and over == 0:
        return NO_STATEMENTS
    # exact: 0.95 as the decimal it was written as, not the float just under it
    return MET if calls > 0 and Fraction(calls - over, calls) >= Fraction(repr(target)) else MISSED


def shares(calls: int, over: int) -> tuple[float | None, float | None]:
    """(share over, share under); over > calls (a slow execution logged just after the snapshot counted its
    call) is shown as all over."""
    if calls <= 0:
        return (1.0, 0.0) if over else (None, None)
    share = min(1.0, over / calls)
    return share, 1.0 - share


class _Reasons:
    """Why a span is unknown or incomplete: each reason once, with how many windows and the first one."""

    def __init__(self, zone: ZoneInfo, described: str = "") -> None:
        self.zone = zone
        self.described = described
        self.uncounted: datetime | None = None  # the last window not counted under the current definition
        self.unknown: dict[str, tuple[int, datetime]] = {}
        self.incomplete: dict[str, tuple[int, datetime]] = {}

    def _add(self, into: dict[str, tuple[int, datetime]], text: str, at: datetime) -> None:
        n, first = into.get(text, (0, at))
        into[text] = (n + 1, first)

    def window(self, w: Window) -> None:
        if not w.counted:
            self.uncounted = max(self.uncounted or w.taken_at, w.taken_at)
        elif w.count_problem:
            self._add(self.unknown, f"not counted exactly: {w.count_problem}", w.taken_at)
        if w.log_state != "complete":
            why = "; ".join(w.problems) if w.problems else ("the duration log was not read" if w.log_state ==
                                                             "none" else "its duration log was not read whole")
            self._add(self.unknown, f"duration log {w.log_state}: {why}", w.taken_at)
        if not w.statements:
            self._add(self.incomplete, "pg_stat_statements could not be read", w.taken_at)
        if w.dealloc > 0:
            self._add(self.incomplete, "pg_stat_statements evicted statements (pg_stat_statements_info.dealloc; "
                                       "raise pg_stat_statements.max)", w.taken_at)
        if w.reset:
            self._add(self.incomplete, "the counters restarted (a statistics reset, a restart or a failover): "
                                       "the calls before it are lost", w.taken_at)

    def gap(self, start: datetime, end: datetime, what: str) -> None:
        self._add(self.incomplete, f"{what} {self.fmt(start)} to {self.fmt(end)}", start)

    def fmt(self, at: datetime) -> str:
        return at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def lines(self) -> list[str]:
        if self.uncounted is not None:
            self.unknown.setdefault(f"not counted under this definition ({self.described}) before "
                                    f"{self.fmt(self.uncounted)}: the objective was added or changed then",
                                    (1, self.uncounted))
        out = []
        for into in (self.unknown, self.incomplete):
            for text, (n, first) in sorted(into.items(), key=lambda kv: kv[1][1]):
                out.append(text if n == 1 else f"{text} ({n} windows from {self.fmt(first)})")
        return out


def judge(windows: Sequence[Window], lo: datetime, hi: datetime, target: float, *, zone: ZoneInfo,
          tolerance: timedelta, described: str = "") -> tuple[int, int, str, list[str]]:
    """Calls, over, state and reasons of the span [lo, hi) from its windows (those taken in it, oldest first).
    ``tolerance``: how far the windows may fall short of the span's edges (a snapshot period or two);
    ``described``: the objective's definition, for a window not counted under it."""
    reasons = _Reasons(zone, described)
    if not windows:
        reasons.gap(lo, hi, "no snapshot from")
        return 0, 0, UNKNOWN, reasons.lines()
    if windows[0].since < lo - tolerance:
        reasons.gap(windows[0].since, lo, "the first window also counts the calls from")
    cursor = lo
    for w in windows:
        reasons.window(w)
        if w.since > cursor + tolerance:
            reasons.gap(cursor, w.since, "no snapshot from")
        cursor = max(cursor, w.taken_at)
    if cursor < hi - tolerance:
        reasons.gap(cursor, hi, "no snapshot from")
    calls, over = sum(w.calls for w in windows), sum(w.over for w in windows)
    lines = reasons.lines()
    state = state_of(calls, over, target, bool(reasons.unknown), bool(reasons.incomplete))
    return calls, over, state, lines


def days_of(since: datetime, until: datetime, zone: ZoneInfo) -> list[tuple[str, datetime, datetime]]:
    """Each day (in ``zone``) [since, until) touches: its name and its part of the span."""
    out: list[tuple[str, datetime, datetime]] = []
    day = since.astimezone(zone).date()
    while True:
        start = datetime(day.year, day.month, day.day, tzinfo=zone)
        lo, hi = max(start, since), min(start + timedelta(days=1), until)
        if lo >= until:
            return out
        if lo < hi:  # in UTC: a zone's own arithmetic and comparisons are wall-clock ones
            out.append((day.isoformat(), lo.astimezone(UTC), hi.astimezone(UTC)))
        day += timedelta(days=1)


def judge_days(windows: Sequence[Window], since: datetime, until: datetime, target: float, *, zone: ZoneInfo,
               tolerance: timedelta, described: str = "") -> list[ObjectiveDay]:
    out = []
    for name, lo, hi in days_of(since, until, zone):
        mine = [w for w in windows if lo <= w.taken_at < hi]
        calls, over, state, why = judge(mine, lo, hi, target, zone=zone, tolerance=tolerance, described=described)
        share_over, share_under = shares(calls, over)
        out.append(ObjectiveDay(day=name, calls=calls, over=over, share_over=share_over, share_under=share_under,
                                state=state, reasons=why))
    return out


def period_state(total: str, days: Sequence[ObjectiveDay]) -> str:
    """The verdict of a period of days (``opsd queries``, the monthly report): **missed** when any day missed,
    whatever the period's total share; else the state of its windows taken together."""
    return MISSED if any(d.state == MISSED for d in days) else total
