"""Run one check on many relations across ``[drill] verify_jobs`` connections: largest relations first (so the
longest one does not start last and run alone at the end), each relation on one worker, every worker with its
own connection per database. A relation that fails is a problem named in the tally; it never stops the others.
Progress is reported every tenth of the work (by bytes) and at least every 30 s."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from opsd.core.units import human_bytes
from opsd.db.connection import Conn, ConnectTo
from opsd.db.queries import RelationRow
from opsd.errors import DatabaseError, NotChecked

PAGE = 8192
EVERY_SECONDS = 30.0


@dataclass(frozen=True)
class Item:
    db: str
    rel: RelationRow

    @property
    def estimate(self) -> int:
        """Bytes on disk as the catalog last knew them (relpages): the order and the progress measure."""
        return max(self.rel.pages, 0) * PAGE


# a check on one relation: bytes it read (None: estimate), or a problem message (str) when it found damage
Work = Callable[[Conn, RelationRow], "int | str | None"]


@dataclass
class Tally:
    """What a parallel pass did: relations done, bytes, problems (``db.relation: message``), seconds."""

    total: int
    jobs: int
    done: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # ``db.relation: why`` the check could not run there
    seconds: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)
    damaged: set[tuple[str, str]] = field(default_factory=set)  # (database, relation) a problem was found in
    gaps: set[tuple[str, str]] = field(default_factory=set)  # (database, relation) the check could not run on

    @property
    def rate(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0


def order(items: list[Item]) -> list[Item]:
    """Largest first; ties in catalog order (stable)."""
    return sorted(items, key=lambda i: -i.estimate)


class _Progress:
    def __init__(self, label: str, total_bytes: int, total: int, report: Callable[[str], None]) -> None:
        self.label, self.total_bytes, self.total, self.report = label, max(total_bytes, 1), total, report
        self.t0 = self.last = time.monotonic()
        self.next_step = 0.1

    def tick(self, t: Tally, estimated: int) -> None:
        now = time.monotonic()
        frac = min(estimated / self.total_bytes, 1.0)
        if frac < self.next_step and now - self.last < EVERY_SECONDS and t.done < self.total:
            return
        self.next_step = (int(frac * 10) + 1) / 10
        self.last = now
        secs = max(now - self.t0, 0.001)
        self.report(f"{self.label}: {t.done}/{self.total} relations, {human_bytes(t.bytes)} "
                    f"({human_bytes(int(t.bytes / secs))}/s)")


def run(connect: ConnectTo, items: list[Item], work: Work, jobs: int, label: str, *,
        report: Callable[[str], None]) -> Tally:
    """``work`` on every item, ``jobs`` at a time; returns when all are done."""
    todo: queue.SimpleQueue[Item] = queue.SimpleQueue()
    for it in order(items):
        todo.put(it)
    workers = max(1, min(jobs, len(items)))
    tally = Tally(total=len(items), jobs=workers)
    lock = threading.Lock()
    progress = _Progress(label, sum(i.estimate for i in items), len(items), report)
    estimated = [0]
    t0 = time.monotonic()

    def record(it: Item, got: int | str | Unchecked | None) -> None:
        with lock:
            tally.done += 1
            tally.by_kind[it.rel.kind] = tally.by_kind.get(it.rel.kind, 0) + 1
            if isinstance(got, Unchecked):
                tally.unchecked.append(f"{it.db}.{it.rel.name}: {got.why}")
                tally.gaps.add((it.db, it.rel.name))
            elif isinstance(got, str):
                tally.problems.append(f"{it.db}.{it.rel.name}: {got}")
                tally.damaged.add((it.db, it.rel.name))
            else:
                tally.bytes += it.estimate if got is None else got
            estimated[0] += it.estimate
            progress.tick(tally, estimated[0])

    threads = [threading.Thread(target=_worker, args=(connect, todo, work, record), name=f"opsd-verify-{n}",
                                daemon=True) for n in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    tally.seconds = round(time.monotonic() - t0, 3)
    tally.problems.sort()
    tally.unchecked.sort()
    return tally


@dataclass(frozen=True)
class Unchecked:
    why: str


def _worker(connect: ConnectTo, todo: queue.SimpleQueue[Item], work: Work,
            record: Callable[[Item, int | str | Unchecked | None], None]) -> None:
    conns: dict[str, Conn] = {}
    with contextlib.ExitStack() as stack:
        while True:
            try:
                it = todo.get_nowait()
            except queue.Empty:
                return
            try:
                if it.db not in conns:
                    conns[it.db] = stack.enter_context(connect(it.db))
                got: int | str | Unchecked | None = work(conns[it.db], it.rel)
            except NotChecked as e:
                got = Unchecked(str(e))
            except DatabaseError as e:
                got = str(e)
            except Exception as e:  # a bug must name the relation, never lose it silently
                got = f"internal error: {type(e).__name__}: {e}"
            record(it, got)
