"""The duration log read at each snapshot (docs/queries.md, "How executions over a threshold are counted"):
from where the last snapshot of the node stopped, every execution PostgreSQL timed, counted against each
objective's threshold and selector by statement (queryid, database, role) into ``query_over``, the position
saved with them in one transaction. The statement text is never kept (core/queries/logline.py).

The window is **complete** when the log since the previous snapshot was read whole and the server logs what the
objectives need; **unknown** (with the one-line reason) when a file was rotated away or truncated before it was
read, a file cannot be read, the log is further behind than a snapshot reads, the server's settings cannot
produce the log (log_destination, logging_collector, log_min_duration_statement above a threshold, translated
messages), or there was no position to continue from, or the window before it owes it lines (its read stopped
at the limit, or it was never read: this window counts those lines too); **none** when there is no objective to
count. Each objective's definition (threshold and selector) is recorded as counted (``query_counted``), with why
it is not exact when a per-database or per-role override covers its selector (core/queries/counting.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from opsd.adapters.durationlog import READ_LIMIT, LogRead, read_since
from opsd.adapters.stores.database import StateDB
from opsd.adapters.stores.objectives import LogMark, ObjectiveStore
from opsd.context import Context
from opsd.core.queries.counting import Override, override_faults
from opsd.core.queries.logline import LogSource, log_source
from opsd.core.queries.objectives import Target, count_over
from opsd.errors import OpsdError
from opsd.log import get_logger
from opsd.settings_queries import Objective, QueriesSection

# what the log source is decided from (pg_settings: data_directory is there only for pg_read_all_settings;
# pg_stat_statements' settings only where it is loaded)
LOG_SETTINGS = ("data_directory", "lc_messages", "log_destination", "log_directory", "log_min_duration_statement",
                "log_timezone", "logging_collector", "compute_query_id", "pg_stat_statements.track",
                "pg_stat_statements.track_utility")


@dataclass(frozen=True)
class LogOutcome:
    state: str  # complete | unknown | none
    problem: str | None = None


def target_of(o: Objective) -> Target:
    """An objective as the counting and the judging read it (its threshold in ms)."""
    return Target(o.name, o.threshold.total_seconds() * 1000, o.target, o.database, o.role)


def targets(q: QueriesSection) -> list[Target]:
    return [target_of(o) for o in q.objectives]


def definitions(q: QueriesSection, overrides: list[Override] | None = None) -> dict[tuple[str, str], str]:
    """Each objective's definition as counted now ((name, definition) -> why not exactly, empty when exact),
    for query_counted."""
    return {(t.name, t.definition): "; ".join(override_faults(overrides or [], t.threshold_ms, t.database, t.role))
            for t in targets(q)}


def source(ctx: Context, q: QueriesSection) -> tuple[LogSource, list[Override]]:
    """Where the server writes its duration log, in which format, what makes it unfit (asked of the server;
    [queries] log_directory and log_format win), and the per-database and per-role overrides. OpsdError when the
    server cannot be asked."""
    from opsd.db.objectives import overrides
    from opsd.db.query_setup import settings

    with ctx.connect() as conn:
        rows = settings(conn, LOG_SETTINGS)
        found = overrides(conn)
    lowest = q.lowest_threshold()
    return log_source({n: r.setting for n, r in rows.items()},
                      directory=str(q.log_directory) if q.log_directory else None, fmt=q.log_format,
                      lowest_ms=lowest.total_seconds() * 1000 if lowest else None), found


def _zone(name: str | None) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _owed(store: ObjectiveStore, node: str, snapshot_id: int, mark: LogMark) -> list[str]:
    """Why this window also counts lines of an earlier one: the last read stopped short, or a snapshot in
    between was never read (opsd stopped between the snapshot and its log)."""
    if mark.position is None:
        return []
    if mark.owed:
        return [mark.owed]
    prev = store.previous_snapshot(node, snapshot_id)
    if prev is not None and mark.snapshot_id != prev:
        return [f"the duration log was not read for the previous snapshot ({prev}): this window also counts its "
                "executions"]
    return []


@dataclass(frozen=True)
class Pending:
    """The duration log read for a node's snapshot not written yet (read right after the node's pg_stat_statements,
    so the log and the calls end at nearly the same moment); ``decided``: the outcome when nothing could be read."""

    node: str
    decided: LogOutcome | None = None
    problems: tuple[str, ...] = ()
    overrides: tuple[Override, ...] = ()
    before: LogMark | None = None
    read: LogRead | None = None


def read_log(ctx: Context, db: StateDB, node: str) -> Pending:
    """Read the node's duration log from where the last snapshot stopped (nothing is written: ``save`` does it
    with the snapshot's id)."""
    q = ctx.settings.queries
    if not q.enabled or not q.objectives:
        return Pending(node, LogOutcome("none"))
    try:
        src, found = source(ctx, q)
    except OpsdError as e:
        return Pending(node, LogOutcome("unknown", f"the server's log settings could not be read: {e}"))
    if src.directory is None or src.fmt is None:
        return Pending(node, LogOutcome("unknown", "; ".join(src.problems)))
    before = ObjectiveStore(db).mark(node)
    read = read_since(Path(src.directory), src.fmt, before.position, zone=_zone(src.zone), limit=READ_LIMIT,
                      seen=before.seen)
    return Pending(node, None, src.problems, tuple(found), before, read)


def save(ctx: Context, db: StateDB, snapshot_id: int, p: Pending) -> LogOutcome:
    """Store what ``p`` read against ``snapshot_id``: its over-threshold counts (query_over), the objective
    definitions counted (query_counted) and the log position, in one transaction."""
    store = ObjectiveStore(db)
    snap = store.snapshot_node(snapshot_id)
    if snap is None:
        return LogOutcome("unknown", f"snapshot {snapshot_id} is not in the state file")
    node, since = snap
    if p.decided is not None or p.read is None or p.before is None:
        if p.decided is None or p.decided.state != "none":
            store.record(snapshot_id, node, {}, None, ctx.now())  # the next window starts afresh: unknown too
        return p.decided or LogOutcome("unknown", "the duration log was not read")
    q, read, before = ctx.settings.queries, p.read, p.before
    over = count_over(read.execs, targets(q))
    store.record(snapshot_id, node, over, read.position, ctx.now(),
                 mark=LogMark(read.position, snapshot_id, (read.problem or "") if read.behind else "", read.seen,
                              definitions(q, list(p.overrides))))
    problems = [*p.problems, *_owed(store, node, snapshot_id, before), *([read.problem] if read.problem else [])]
    if before.position is None and since is not None and read.problem is None:
        problems.append("the duration log had no position to continue from (first read, or after a problem): "
                        "counted from this snapshot on")
    get_logger().debug("queries.log_read", snapshot=snapshot_id, node=node, files=len(read.files),
                       bytes=read.bytes_read, executions=len(read.execs), over=sum(over.values()),
                       problem="; ".join(problems) or None)
    return LogOutcome("unknown", "; ".join(problems)) if problems else LogOutcome("complete")


def collect(ctx: Context, db: StateDB, snapshot_id: int) -> LogOutcome:
    """Read the duration log from where the last snapshot stopped and store it against ``snapshot_id`` (a
    snapshot whose node was not read: the log is read after it was written)."""
    snap = ObjectiveStore(db).snapshot_node(snapshot_id)
    if snap is None:
        return LogOutcome("unknown", f"snapshot {snapshot_id} is not in the state file")
    return save(ctx, db, snapshot_id, read_log(ctx, db, snap[0]))
