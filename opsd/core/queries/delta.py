"""Deltas between two readings of cumulative counters (pure): pg_stat_statements per statement, and per database
its tables' and indexes' counters. The previous reading is what the store kept (``query_last``); a family of
counters (the statements; each database's relations) is compared with its own previous reading.

What restarts counters, and what is done (docs/queries.md, "How the deltas are counted"):
- a statistics reset (pg_stat_statements_reset(), pg_stat_reset()), statistics discarded at a start after a
  crash or an immediate shutdown: every entry counts from the restart (its current value); what ran between
  the previous reading and the restart is lost, and the window says so (``reset``);
- one entry reset, or evicted and added again (a counter went down; for a statement, also its minimum time rose
  or its maximum fell): that entry counts from its re-creation;
- an entry that was not there at the previous reading: created in the window, its current value;
- another server answering under the node's name (another system identifier, or a postmaster started before the
  previous reading: a failover behind one address): a new baseline, nothing counted for the window;
- a restart that kept the statistics (a clean shutdown), a promotion: counting goes on.
Never a negative delta, never counted twice: a value is counted from a point known to be after the previous
reading, or as the difference to it. An entry that disappeared yields nothing. Only entries that moved are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from opsd.core.records.queries import StatementDelta

StatKey = tuple[int, int, int]  # queryid (0: what the role may not see, summed), database oid, role oid
RelKey = tuple[str, int]  # "table" | "index", its oid


@dataclass(frozen=True)
class StatEntry:
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
    min_ms: float = 0.0
    max_ms: float = 0.0
    hidden: bool = False


@dataclass(frozen=True)
class RelEntry:
    schemaname: str
    relname: str  # an index's table
    indexname: str  # "" for a table
    seq_scan: int
    seq_tup_read: int
    idx_scan: int
    n_tup_ins: int
    n_tup_upd: int
    n_tup_del: int
    other: int = 0  # counters not kept as deltas that only grow: one that fell tells a reset entry
    size_bytes: int = 0


@dataclass(frozen=True)
class Epoch:
    """What tells whether a family's counters went on, restarted, or belong to another server."""

    at: datetime  # when read
    started_at: datetime  # pg_postmaster_start_time()
    system_identifier: int
    reset_at: datetime | None = None  # statements: pg_stat_statements_info.stats_reset; a database: its stats_reset
    discarded_at: datetime | None = None  # relations: the cumulative statistics discarded then (a crash)
    xacts: int = 0  # relations: the database's committed and rolled back transactions
    dealloc: int = 0  # statements: evicted since pg_stat_statements' last reset
    all_visible: bool = True  # statements: the role reads every role's statements (pg_read_all_stats)


@dataclass(frozen=True)
class StatFamily:
    epoch: Epoch
    entries: dict[StatKey, StatEntry]


@dataclass(frozen=True)
class DbFamily:
    dbname: str
    epoch: Epoch
    entries: dict[RelKey, RelEntry]


@dataclass(frozen=True)
class RelationDelta:
    kind: str
    dbname: str
    schemaname: str
    relname: str
    indexname: str
    seq_scan: int
    seq_tup_read: int
    idx_scan: int
    n_tup_ins: int
    n_tup_upd: int
    n_tup_del: int


D = TypeVar("D")
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Outcome(Generic[D, K]):
    """The deltas of one family for one window. ``counted`` false: a baseline (no previous reading, or another
    server), nothing is counted for the window. ``reset``: counters restarted inside the window. ``notes``: what
    makes the window incomplete (a reset, a baseline, evictions); ``info``: what happened without losing a count
    (a restart that kept the counters). ``created``: entries that were not there at the previous reading.
    ``dealloc``: statements evicted in the window."""

    deltas: list[D]
    counted: bool
    reset: bool = False
    notes: list[str] = field(default_factory=list)
    created: frozenset[K] = frozenset()
    dealloc: int = 0
    info: list[str] = field(default_factory=list)


SAME, RESTART, BASELINE = "same", "restart", "baseline"


def _ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S%z")


def _identity(prev: Epoch, cur: Epoch, what: str) -> str | None:
    """Why the counters read now are another server's than the previous reading's (None: the same server)."""
    if cur.system_identifier != prev.system_identifier:
        return (f"{what}: another cluster answers (system identifier {cur.system_identifier}, was "
                f"{prev.system_identifier}): a new baseline, this window is not counted")
    if cur.started_at != prev.started_at and cur.started_at <= prev.at:
        return (f"{what}: another server answers (started {_ts(cur.started_at)}, before the previous snapshot; a "
                "failover behind one address?): a new baseline, this window is not counted")
    return None


def restarted(prev: Epoch, cur: Epoch) -> list[str]:
    """A restart that kept the counters (information, nothing lost)."""
    if cur.started_at == prev.started_at or cur.started_at <= prev.at:
        return []
    return [f"the server restarted at {_ts(cur.started_at)}"]


def statements_verdict(prev: Epoch, cur: Epoch) -> tuple[str, list[str]]:
    """same | restart | baseline, with what makes the window incomplete."""
    what = "statements"
    if (other := _identity(prev, cur, what)) is not None:
        return BASELINE, [other]
    if cur.all_visible != prev.all_visible:
        now = "visible" if cur.all_visible else "hidden"
        return BASELINE, [f"{what}: other roles' statements became {now} (pg_read_all_stats): a new baseline, "
                          "this window is not counted"]
    if cur.reset_at != prev.reset_at:
        if cur.reset_at is not None and cur.reset_at > prev.at:
            return RESTART, [f"{what}: pg_stat_statements was reset at {_ts(cur.reset_at)}: counted from the "
                             "reset; what ran before it in this window is not counted"]
        return BASELINE, [f"{what}: pg_stat_statements' reset time went back: a new baseline, this window is "
                          "not counted"]
    return SAME, []


def relations_verdict(prev: Epoch, cur: Epoch, dbname: str) -> tuple[str, list[str]]:
    what = f"tables and indexes of {dbname}"
    if (other := _identity(prev, cur, what)) is not None:
        return BASELINE, [other]
    if cur.discarded_at is not None and cur.discarded_at != prev.discarded_at:
        if cur.discarded_at > prev.at:
            return RESTART, [f"{what}: statistics discarded at {_ts(cur.discarded_at)} (a start after a crash or "
                             "an immediate shutdown): counted from then"]
        return BASELINE, [f"{what}: statistics discarded before the previous snapshot: a new baseline"]
    if cur.reset_at is not None and cur.reset_at != prev.reset_at and cur.reset_at > prev.at:
        if cur.xacts < prev.xacts:
            return RESTART, [f"{what}: statistics reset at {_ts(cur.reset_at)} (pg_stat_reset()): counted from "
                             "the reset; what ran before it in this window is not counted"]
        return SAME, [f"{what}: statistics of some of them were reset at {_ts(cur.reset_at)} "
                      "(pg_stat_reset_single_table_counters): each counted from its reset where it shows"]
    return SAME, []


_STAT_COUNTERS = ("calls", "total_ms", "rows", "shared_hit", "shared_read", "temp_read", "temp_written",
                  "wal_bytes")
_REL_COUNTERS = ("seq_scan", "seq_tup_read", "idx_scan", "n_tup_ins", "n_tup_upd", "n_tup_del")


def _stat_recreated(p: StatEntry, c: StatEntry) -> bool:
    if any(getattr(c, f) < getattr(p, f) for f in _STAT_COUNTERS):
        return True
    # one entry's minimum never rises and its maximum never falls; a sum of hidden entries has no such rule
    return not (c.hidden or p.hidden) and p.calls > 0 and (c.min_ms > p.min_ms or c.max_ms < p.max_ms)


def _rel_recreated(p: RelEntry, c: RelEntry) -> bool:
    return c.other < p.other or any(getattr(c, f) < getattr(p, f) for f in _REL_COUNTERS)


def _diff(c: object, p: object | None, names: tuple[str, ...]) -> dict[str, float]:
    return {f: max(getattr(c, f) - (getattr(p, f) if p is not None else 0), 0) for f in names}


E = TypeVar("E", StatEntry, RelEntry)


@dataclass(frozen=True)
class _Moved(Generic[K, E]):
    moved: list[tuple[K, E, dict[str, float]]]  # key, current entry, its delta
    created: frozenset[K]  # not there at the previous reading
    again: int  # entries re-created (reset alone, or evicted and added again)


def _family(prev: dict[K, E], cur: dict[K, E], mode: str, recreated: Callable[[E, E], bool],
            names: tuple[str, ...]) -> _Moved[K, E]:
    moved: list[tuple[K, E, dict[str, float]]] = []
    created: set[K] = set()
    again = 0
    for key, c in cur.items():
        p = prev.get(key)
        base: E | None = p
        if mode == RESTART or p is None:
            base = None
            if p is None:
                created.add(key)
        elif recreated(p, c):
            base, again = None, again + 1
        d = _diff(c, base, names)
        if any(d.values()):
            moved.append((key, c, d))
    return _Moved(moved, frozenset(created), again)


def _merge(deltas: Iterable[tuple[tuple[str | int, ...], dict[str, float]]]
           ) -> dict[tuple[str | int, ...], dict[str, float]]:
    """Deltas of entries shown under one name summed (two oids of one name: a database dropped and created again)."""
    out: dict[tuple[str | int, ...], dict[str, float]] = {}
    for key, d in deltas:
        have = out.setdefault(key, dict.fromkeys(d, 0.0))
        for f, v in d.items():
            have[f] += v
    return out


def _dealloc(prev: Epoch, cur: Epoch, mode: str) -> int:
    """Statements evicted in the window: the growth of pg_stat_statements_info.dealloc, all of it after a reset."""
    if mode == SAME and cur.dealloc >= prev.dealloc:
        return cur.dealloc - prev.dealloc
    return cur.dealloc


def statement_deltas(prev: StatFamily | None, cur: StatFamily) -> Outcome[StatementDelta, StatKey]:
    """The statements' deltas for the window since ``prev`` (None: the first reading, a baseline)."""
    if prev is None:
        return Outcome([], counted=False, notes=["statements: the first reading, a baseline"])
    mode, notes = statements_verdict(prev.epoch, cur.epoch)
    if mode == BASELINE:
        return Outcome([], counted=False, notes=notes)
    m = _family(prev.entries, cur.entries, mode, _stat_recreated, _STAT_COUNTERS)
    if m.again:
        notes.append(f"statements: {m.again} evicted or reset and added again in this window: each counted from "
                     "its re-creation")
    dealloc = _dealloc(prev.epoch, cur.epoch, mode)
    if dealloc > 0:
        notes.append(f"statements: pg_stat_statements evicted {dealloc} statement(s) in this window "
                     "(pg_stat_statements.max too small?): the window is incomplete")
    merged = _merge(((k[0], c.dbname, c.rolname), d) for k, c, d in m.moved)
    deltas = [StatementDelta(int(k[0]), str(k[1]), str(k[2]), int(d["calls"]), d["total_ms"], int(d["rows"]),
                             int(d["shared_hit"]), int(d["shared_read"]), int(d["temp_read"]),
                             int(d["temp_written"]), int(d["wal_bytes"])) for k, d in merged.items()]
    return Outcome(deltas, counted=True, reset=mode == RESTART, notes=notes, created=m.created, dealloc=dealloc,
                   info=restarted(prev.epoch, cur.epoch))


def relation_deltas(prev: DbFamily | None, cur: DbFamily) -> Outcome[RelationDelta, RelKey]:
    """One database's table and index deltas for the window since ``prev`` (None: a baseline)."""
    if prev is None:
        return Outcome([], counted=False, notes=[])
    mode, notes = relations_verdict(prev.epoch, cur.epoch, cur.dbname)
    if mode == BASELINE:
        return Outcome([], counted=False, notes=notes)
    m = _family(prev.entries, cur.entries, mode, _rel_recreated, _REL_COUNTERS)
    merged = _merge(((k[0], c.schemaname, c.relname, c.indexname), d) for k, c, d in m.moved)
    deltas = [RelationDelta(str(k[0]), cur.dbname, str(k[1]), str(k[2]), str(k[3]),
                            *(int(d[f]) for f in _REL_COUNTERS)) for k, d in merged.items()]
    return Outcome(deltas, counted=True, reset=mode == RESTART, notes=notes, created=m.created,
                   info=restarted(prev.epoch, cur.epoch))
