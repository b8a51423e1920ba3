"""pg_waldump's output as events, and how a range of archived WAL is cut into tasks (walparallel.py runs
them, one pg_waldump and one parser per core).

A task is a chunk of segments of one timeline; chunks overlap by one segment: a chunk's last segment is the next
chunk's first, given to pg_waldump only so that a record that starts before it and runs on into it is read whole.
A task keeps the records that start before its last segment (the next task's); the next task starts at the
start of that segment, where pg_waldump skips the end of the record that runs on into it (XLogFindNextRecord
follows the page header's continuation length). The last chunk of a run keeps every record.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from opsd.core.wal import SEGMENT_BYTES, Segment, lsn_text, lsn_to_int
from opsd.core.walfind import Change, Created, End, Event, Point, RelNode
from opsd.errors import RepositoryError

RMGRS = ("Heap", "Heap2", "Transaction", "Storage", "XLOG")
_MULTI = re.compile(r"^MULTI_INSERT(?:\+INIT)? (\d+) tuples")
_END = re.compile(r"^(COMMIT|ABORT)(?:_PREPARED)? (?:(\d+): )?(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) "
                  r"([A-Za-z]+)")
_PATH = re.compile(r"(?:base/(\d+)/(\d+)|pg_tblspc/(\d+)/[^/]+/(\d+)/(\d+)|global/(\d+))$")
_ERROR_AT = re.compile(r"error in WAL record at ([0-9A-F]+/[0-9A-F]+)")


def rel_node(path: str) -> RelNode | None:
    """``base/5/16384``, ``pg_tblspc/16385/PG_15_202209061/5/16390`` or ``global/1262`` as a file node."""
    m = _PATH.search(path)
    if m is None:
        return None
    g = m.groups()
    if g[0] is not None:
        return 1663, int(g[0]), int(g[1])
    if g[2] is not None:
        return int(g[2]), int(g[3]), int(g[4])
    return 1664, 0, int(g[5])


def _list(desc: str, key: str) -> list[str]:
    for part in desc.split("; "):
        if part.startswith(key + ": "):
            return part[len(key) + 2:].split()
    return []


def _end(xid: int, lsn: str, desc: str) -> End | None:
    m = _END.match(desc)
    if m is None:
        return None
    kind, prepared_xid, stamp, zone = m.groups()
    if zone not in ("UTC", "GMT"):
        raise ValueError(f"pg_waldump printed a transaction time in {zone!r}; run it with TZ=UTC")
    nodes = tuple(n for p in _list(desc, "rels") if (n := rel_node(p)) is not None)
    stats = [s.split("/") for s in _list(desc, "dropped stats")]
    rel_stats = [s for s in stats if len(s) == 3 and s[0] == "2"]  # kind 2: a relation's statistics
    return End(int(prepared_xid) if prepared_xid else xid, lsn, datetime.fromisoformat(stamp + "+00:00"),
               kind == "COMMIT", tuple(int(x) for x in _list(desc, "subxacts") if x.isdigit()), nodes,
               tuple(int(s[2]) for s in rel_stats), int(rel_stats[0][1]) if rel_stats else None)


_HEAP_OPS = {"INSERT": "insert", "INSERT+INIT": "insert", "DELETE": "delete", "UPDATE": "update",
             "UPDATE+INIT": "update", "HOT_UPDATE": "update", "HOT_UPDATE+INIT": "update"}


def _lsn(text: str) -> int:
    hi, _, lo = text.partition("/")
    return (int(hi, 16) << 32) + int(lo, 16)


def _xid(tx: str) -> int:
    return int(tx[3:])


def _block_node(desc: str) -> RelNode | None:
    i = desc.find("blkref #0: rel ")
    if i < 0:
        return None
    j = desc.find(" ", i + 15)
    parts = desc[i + 15:j if j > 0 else None].split("/")
    return (int(parts[0]), int(parts[1]), int(parts[2])) if len(parts) == 3 else None


Record = tuple[str, str, str, str]  # LSN as printed (%X/%08X), rmgr, "tx: N", description


@dataclass
class Parser:
    """pg_waldump's lines (run with TZ=UTC and ``-r`` for RMGRS) as events; remembers the last transaction end
    (a restore point record carries no time). ``keep``: the file nodes whose row changes are wanted (the others
    are skipped before any event is made: most of the WAL belongs to other tables). Parsed with string
    operations, not regular expressions: this runs for every record of gigabytes of WAL."""

    keep: Callable[[RelNode], bool] | None = None
    last_time: datetime | None = None

    def feed(self, line: str) -> tuple[int, Event | None] | None:
        """(the record's LSN as a number, its event or None) for a record line; None for anything else."""
        rec = self.record(line)
        return None if rec is None else (_lsn(rec[0]), self.event(rec))

    def record(self, line: str) -> Record | None:
        """A record line cut into its LSN (as printed), rmgr, ``tx: N`` and description, before any event is made
        of it: one split, and no number parsed that the event may not need."""
        if not line.startswith("rmgr: "):
            return None
        parts = line.split(", ", 4)  # rmgr and lengths, tx, lsn, prev, desc (which may hold ", ")
        if len(parts) < 5 or not parts[1].startswith("tx:") or not parts[2].startswith("lsn: ") \
                or not parts[4].startswith("desc: "):
            return None
        head = parts[0]
        return parts[2][5:], head[6:head.find(" ", 6)], parts[1], parts[4][6:]

    def event(self, rec: Record) -> Event | None:
        lsn, rmgr, tx, desc = rec
        if rmgr in ("Heap", "Heap2") or (rmgr == "XLOG" and desc.startswith("FPI ")):
            return self._change(rmgr, tx, desc)
        if rmgr == "XLOG" and desc.startswith("RESTORE_POINT "):
            return Point(desc[len("RESTORE_POINT "):].strip(), lsn_text(_lsn(lsn)), self.last_time)
        if rmgr == "Storage" and desc.startswith("CREATE ") and (xid := _xid(tx)) and (n := rel_node(desc[7:].strip())):
            return Created(xid, n)
        if rmgr == "Transaction":
            end = _end(_xid(tx), lsn_text(_lsn(lsn)), desc)
            if end is not None:
                self.last_time = end.time
            return end
        return None

    def _change(self, rmgr: str, tx: str, desc: str) -> Change | None:
        op = desc[:desc.find(" ")]
        kind = _HEAP_OPS.get(op) if rmgr == "Heap" else None
        rows = 1
        if rmgr == "Heap2" and (mi := _MULTI.match(desc)):
            kind, rows = "insert", int(mi.group(1))
        elif rmgr == "XLOG" and _xid(tx):
            kind, rows = "page", 0
        if kind is None:
            return None
        node = _block_node(desc)
        if node is None or (self.keep is not None and not self.keep(node)):
            return None
        return Change(_xid(tx), node, kind, rows)


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    segment: str
    seconds: float

    @property
    def rate(self) -> float:
        """MiB of WAL decoded per second."""
        return self.done * SEGMENT_BYTES / 1048576 / max(self.seconds, 0.001)


def _judge_end(rc: int, stderr: str, last: Segment) -> None:
    """pg_waldump always stops with an error at the end of what it was given (the next file is missing, or the
    last segment ends): only an error before the chunk's last segment means a segment it could not decode."""
    if rc == 0:
        return
    m = _ERROR_AT.search(stderr)
    if m is not None and lsn_to_int(m.group(1)) // SEGMENT_BYTES < last.segno:
        line = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
        raise RepositoryError(f"pg_waldump cannot decode the archived WAL: {line}")
    if m is None and "could not find file" not in stderr and "could not find a valid record" not in stderr:
        line = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {rc}"
        raise RepositoryError(f"pg_waldump failed: {line}")


@dataclass(frozen=True)
class Task:
    """One pg_waldump over segments ``first`` .. ``last`` of ``timeline``: the records that start before
    ``stop`` (an LSN: the start of ``last``, the next task's first segment) are this task's; ``stop`` None: every
    record (the last chunk of a run). ``missing``: the repository did not have a segment of the chunk; the task
    was cut before it, and what was read is kept before the error is raised."""

    timeline: int
    first: int
    last: int
    stop: int | None = None
    missing: str | None = None

    def segments(self) -> list[Segment]:
        return [Segment(self.timeline, n) for n in range(self.first, self.last + 1)]


def plan_tasks(path: list[Segment], size: int) -> list[Task]:
    """``path`` (in WAL order) as tasks of ``size`` segments, the last one overlapping the next task's first."""
    return [Task(c[0].timeline, c[0].segno, c[-1].segno, c[-1].segno * SEGMENT_BYTES if i + 1 < len(part) else None)
            for part in _chunks(path, size) for i, c in enumerate(part)]


def _chunks(path: list[Segment], size: int) -> Iterator[list[list[Segment]]]:
    """Contiguous runs of one timeline, each cut into chunks that overlap by one segment."""
    run: list[Segment] = []
    for s in path:
        if run and (s.timeline != run[-1].timeline or s.segno != run[-1].segno + 1):
            yield _cut(run, size)
            run = []
        run.append(s)
    if run:
        yield _cut(run, size)


def _cut(run: list[Segment], size: int) -> list[list[Segment]]:
    size = max(2, size)
    out, i = [], 0
    while True:
        out.append(run[i:i + size])
        if i + size >= len(run):
            return out
        i += size - 1
