"""Decode a range of archived WAL: segments fetched through pgBackRest (never pg_wal, so it works when the
primary is gone), in parallel, a chunk at a time, into a private directory; pg_waldump reads each chunk in one
run, so a record that crosses a segment boundary is read whole. A chunk starts at the last record the previous
one printed (that record is skipped the second time).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from opsd.adapters.pgbackrest import PgBackRest
from opsd.adapters.runner import Runner
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


def _block_node(desc: str) -> RelNode | None:
    i = desc.find("blkref #0: rel ")
    if i < 0:
        return None
    j = desc.find(" ", i + 15)
    parts = desc[i + 15:j if j > 0 else None].split("/")
    return (int(parts[0]), int(parts[1]), int(parts[2])) if len(parts) == 3 else None


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
        if not line.startswith("rmgr: "):
            return None
        t = line.find(", tx:", 17)
        c = line.find(",", t + 5)
        lsn_at = line.find("lsn: ", c)
        lsn_end = line.find(",", lsn_at)
        d = line.find("desc: ", lsn_end)
        if min(t, c, lsn_at, lsn_end, d) < 0:
            return None
        lsn = _lsn(line[lsn_at + 5:lsn_end])
        return lsn, self._event(line[6:line.find(" ", 6)], int(line[t + 5:c]), lsn, line[d + 6:])

    def _event(self, rmgr: str, xid: int, lsn: int, desc: str) -> Event | None:
        if rmgr in ("Heap", "Heap2") or (rmgr == "XLOG" and desc.startswith("FPI ")):
            return self._change(rmgr, xid, desc)
        if rmgr == "XLOG" and desc.startswith("RESTORE_POINT "):
            return Point(desc[len("RESTORE_POINT "):].strip(), lsn_text(lsn), self.last_time)
        if rmgr == "Storage" and desc.startswith("CREATE ") and xid and (n := rel_node(desc[7:].strip())):
            return Created(xid, n)
        if rmgr == "Transaction":
            end = _end(xid, lsn_text(lsn), desc)
            if end is not None:
                self.last_time = end.time
            return end
        return None

    def _change(self, rmgr: str, xid: int, desc: str) -> Change | None:
        op = desc[:desc.find(" ")]
        kind = _HEAP_OPS.get(op) if rmgr == "Heap" else None
        rows = 1
        if rmgr == "Heap2" and (mi := _MULTI.match(desc)):
            kind, rows = "insert", int(mi.group(1))
        elif rmgr == "XLOG" and xid:
            kind, rows = "page", 0
        if kind is None:
            return None
        node = _block_node(desc)
        if node is None or (self.keep is not None and not self.keep(node)):
            return None
        return Change(xid, node, kind, rows)


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


@dataclass
class WalScanner:
    pgbr: PgBackRest
    runner: Runner
    bin_dir: Path
    tmp: Path
    workers: int = 2
    chunk: int = 8
    rmgrs: tuple[str, ...] = RMGRS
    keep: Callable[[RelNode], bool] | None = None  # the file nodes whose row changes are wanted (None: all)

    def scan(self, path: list[Segment], sink: Callable[[Event], None],
             on_progress: Callable[[Progress], None] | None = None, enough: Callable[[], bool] | None = None) -> None:
        """Every event of ``path`` (segments in WAL order, on the timelines recovery follows) into ``sink`` as
        pg_waldump prints it, with a progress report as it enters each segment; ``enough`` stops after the chunk
        where it turns true. Raises RepositoryError for a segment the repository does not have or pg_waldump
        cannot decode."""
        parser = Parser(self.keep)
        t0, entered = time.monotonic(), set()

        def seen(seg: Segment) -> None:
            if seg not in entered:
                entered.add(seg)
                if on_progress is not None:
                    on_progress(Progress(len(entered), len(path), seg.name, time.monotonic() - t0))

        try:
            for part in _chunks(path, self.chunk):
                if self._scan_run(part, parser, sink, seen, enough):
                    break
        finally:
            for leftover in self.tmp.iterdir():
                leftover.unlink(missing_ok=True)

    def _scan_run(self, part: list[list[Segment]], parser: Parser, sink: Callable[[Event], None],
                  seen: Callable[[Segment], None], enough: Callable[[], bool] | None) -> bool:
        """One contiguous run, chunk by chunk: the next chunk is fetched while this one is decoded; the last
        segment of a chunk is kept for the next (a record may run on into it). True: enough."""
        resume: str | None = None
        with ThreadPoolExecutor(max_workers=1) as ahead:
            pending = ahead.submit(self._fetch, part[0])
            for i, names in enumerate(part):
                pending.result()
                if i + 1 < len(part):
                    pending = ahead.submit(self._fetch, [s for s in part[i + 1] if s != names[-1]])
                resume = self._decode(names, resume, parser, sink, seen)
                for s in names[:-1]:
                    (self.tmp / s.name).unlink(missing_ok=True)
                if enough is not None and enough():
                    return True
        (self.tmp / part[-1][-1].name).unlink(missing_ok=True)
        return False

    def _fetch(self, segments: list[Segment]) -> None:
        def get(s: Segment) -> tuple[Segment, bool]:
            return s, self.pgbr.archive_get(s.name, str(self.tmp / s.name))

        with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
            missing = [s.name for s, ok in pool.map(get, segments) if not ok]
        if missing:
            raise RepositoryError(f"WAL segment {missing[0]} is not in the repository (expired, or never archived)")

    def _decode(self, names: list[Segment], resume: str | None, parser: Parser, sink: Callable[[Event], None],
                seen: Callable[[Segment], None]) -> str | None:
        first, end = names[0], names[-1]
        start = resume or lsn_text(first.segno * SEGMENT_BYTES)
        # -e at the end of the chunk: pg_waldump stops there quietly (a record that runs on is read by the next
        # chunk), instead of looking for the next file for 5 seconds
        argv = [str(self.bin_dir / "pg_waldump"), "-p", str(self.tmp), "-t", str(first.timeline), "-s", start,
                "-e", lsn_text((end.segno + 1) * SEGMENT_BYTES), *(a for r in self.rmgrs for a in ("-r", r))]
        floor = lsn_to_int(resume) if resume else -1
        last = [floor, -1]  # the last record's LSN, the segment it is in

        def on_line(stream: str, line: str) -> None:
            got = parser.feed(line) if stream == "stdout" else None
            if got is None or got[0] <= floor:
                return
            at, event = got
            last[0] = at
            if at // SEGMENT_BYTES != last[1]:
                last[1] = at // SEGMENT_BYTES
                seen(Segment(first.timeline, last[1]))
            if event is not None:
                sink(event)

        res = self.runner.run(argv, timeout=600, env={"TZ": "UTC"}, log_output=False, on_line=on_line,
                              keep_stdout=False)
        _judge_end(res.returncode, res.stderr, names[-1])
        # the next chunk starts at the last record printed, but never before the one segment kept for it: when that
        # segment held no record of ours, the last one printed lies in a file already deleted (pg_waldump would
        # wait for it, then fail)
        return lsn_text(max(last[0], end.segno * SEGMENT_BYTES))


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
