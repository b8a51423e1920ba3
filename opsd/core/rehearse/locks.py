"""PostgreSQL's table lock modes, what ordinary traffic each blocks (the conflict table of the PostgreSQL
documentation, "Explicit Locking"), and lock samples folded into how long each lock was held."""

from __future__ import annotations

from dataclasses import dataclass, field

# ordinary traffic, by the lock it takes: plain reads, SELECT ... FOR UPDATE/SHARE, writes, (auto)vacuum
TRAFFIC = {"AccessShareLock": "reads", "RowShareLock": "SELECT FOR UPDATE/SHARE",
           "RowExclusiveLock": "writes (INSERT, UPDATE, DELETE)", "ShareUpdateExclusiveLock": "autovacuum"}
CONFLICTS = {
    "AccessShareLock": {"AccessExclusiveLock"},
    "RowShareLock": {"ExclusiveLock", "AccessExclusiveLock"},
    "RowExclusiveLock": {"ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"},
    "ShareUpdateExclusiveLock": {"ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock",
                                 "AccessExclusiveLock"},
    "ShareLock": {"RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareRowExclusiveLock", "ExclusiveLock",
                  "AccessExclusiveLock"},
    "ShareRowExclusiveLock": {"RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock",
                              "ExclusiveLock", "AccessExclusiveLock"},
    "ExclusiveLock": {"RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock",
                      "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"},
    "AccessExclusiveLock": {"AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock",
                            "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"},
}
STRENGTH = list(CONFLICTS)  # weakest first


def blocks(mode: str) -> list[str]:
    """The ordinary traffic a lock of ``mode`` on a table blocks while it is held (and while it waits: a lock
    request queued behind a long query blocks what it conflicts with too)."""
    return [what for taken, what in TRAFFIC.items() if mode in CONFLICTS.get(taken, set())]


def short(mode: str) -> str:
    """'AccessExclusiveLock' -> 'ACCESS EXCLUSIVE'."""
    words, cur = [], ""
    for ch in mode.removesuffix("Lock"):
        if ch.isupper() and cur:
            words.append(cur)
            cur = ""
        cur += ch
    return " ".join([*words, cur]).upper()


@dataclass(frozen=True)
class Sample:
    """One granted relation lock seen in pg_locks at ``at`` (seconds, monotonic)."""

    at: float
    pid: int
    relation: str
    mode: str
    statement: str | None = None


@dataclass
class Span:
    relation: str
    mode: str
    first: float
    last: float
    statement: str | None
    held: float = 0.0  # closed spans so far


@dataclass
class Spans:
    """Samples folded into spans: a lock seen in consecutive samples was held from the first to the last (plus
    one interval: it was taken at most an interval before it was first seen)."""

    interval: float
    open: dict[tuple[int, str, str], Span] = field(default_factory=dict)
    done: dict[tuple[str, str], Span] = field(default_factory=dict)
    previous: float | None = None

    def add(self, at: float, samples: list[Sample]) -> None:
        seen = set()
        for s in samples:
            key = (s.pid, s.relation, s.mode)
            seen.add(key)
            if key in self.open:
                self.open[key].last = at
            else:
                self.open[key] = Span(s.relation, s.mode, at, at, s.statement)
        for key in [k for k in self.open if k not in seen]:
            self._close(self.open.pop(key))
        self.previous = at

    def _close(self, span: Span) -> None:
        held = span.last - span.first + self.interval
        key = (span.relation, span.mode)
        if key in self.done:
            self.done[key].held += held
        else:
            span.held = held
            self.done[key] = span

    def finish(self) -> list[Span]:
        """Every lock with how long it was held in all, the longest first."""
        for key in list(self.open):
            self._close(self.open.pop(key))
        return sorted(self.done.values(), key=lambda s: (-s.held, s.relation, s.mode))
