"""WAL segment names and the archive's shape: timelines, contiguous runs, gaps (pure).

Assumes the default 16 MiB wal_segment_size (256 segments per 4 GiB 'log' id).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

SEGMENT_BYTES = 16 * 1024 * 1024
SEGS_PER_LOG = 0x100000000 // SEGMENT_BYTES
_NAME = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")


@dataclass(frozen=True, order=True)
class Segment:
    timeline: int
    segno: int

    @property
    def name(self) -> str:
        return f"{self.timeline:08X}{self.segno // SEGS_PER_LOG:08X}{self.segno % SEGS_PER_LOG:08X}"


def parse_segment(name: str) -> Segment | None:
    m = _NAME.match(name[:24])
    if not m or len(name) < 24:
        return None
    tl, log, seg = (int(g, 16) for g in m.groups())
    return Segment(tl, log * SEGS_PER_LOG + seg)


@dataclass(frozen=True)
class ArchivedSegment:
    segment: Segment
    size: int  # compressed bytes in the repository
    archived_at: datetime
    archive_id: str = ""  # pgBackRest's archive id, "<major>-<db id>" (e.g. 15-2 after a stanza-upgrade)


@dataclass(frozen=True)
class WalRun:
    """A contiguous run of archived segments on one timeline."""

    timeline: int
    first: ArchivedSegment
    last: ArchivedSegment

    @property
    def archive_id(self) -> str:
        return self.first.archive_id

    @property
    def count(self) -> int:
        return self.last.segment.segno - self.first.segment.segno + 1

    def contains(self, seg: Segment, archive_id: str | None = None) -> bool:
        return (seg.timeline == self.timeline and self.first.segment.segno <= seg.segno <= self.last.segment.segno
                and (archive_id is None or archive_id == self.archive_id))


@dataclass(frozen=True)
class Gap:
    timeline: int
    missing_from: Segment
    missing_to: Segment
    archive_id: str = ""

    @property
    def count(self) -> int:
        return self.missing_to.segno - self.missing_from.segno + 1


def runs_and_gaps(segments: list[ArchivedSegment]) -> tuple[list[WalRun], list[Gap]]:
    """Split archived segments into contiguous runs per archive id and timeline; the holes between runs are gaps.
    Each archive id (a database generation of the stanza, e.g. before and after a stanza-upgrade) numbers its
    segments on its own: its runs never join another's, and there is no gap between them."""
    runs: list[WalRun] = []
    gaps: list[Gap] = []
    ordered = sorted(segments, key=lambda a: (a.archive_id, a.segment))
    start = prev = None
    for a in ordered:
        same = prev is not None and a.archive_id == prev.archive_id and a.segment.timeline == prev.segment.timeline
        if prev is not None and same and a.segment.segno == prev.segment.segno + 1:
            prev = a
            continue
        if prev is not None and start is not None:
            runs.append(WalRun(prev.segment.timeline, start, prev))
            if same:
                gaps.append(Gap(a.segment.timeline, Segment(a.segment.timeline, prev.segment.segno + 1),
                                Segment(a.segment.timeline, a.segment.segno - 1), a.archive_id))
        start = prev = a
    if prev is not None and start is not None:
        runs.append(WalRun(prev.segment.timeline, start, prev))
    return runs, gaps


@dataclass(frozen=True)
class Switch:
    """A timeline switch from a ``.history`` file: ``timeline`` branched off ``parent`` at ``lsn``."""

    timeline: int
    parent: int
    lsn: str
    reason: str
    at: datetime | None = None  # when the .history file reached the archive (about when the promotion happened)


def parse_history(timeline: int, text: str) -> list[Switch]:
    """A ``0000000N.history`` file: one line per ancestor, ``parentTLI<TAB>switchpoint<TAB>reason``. The child of
    each line is the next line's parent, and the last line's child is ``timeline`` itself."""
    rows = []
    for line in text.splitlines():
        parts = line.strip().split(None, 2)
        if len(parts) >= 2 and parts[0].isdigit() and "/" in parts[1]:
            rows.append((int(parts[0]), parts[1], parts[2] if len(parts) > 2 else ""))
    children = [r[0] for r in rows[1:]] + [timeline]
    return [Switch(child, parent, lsn, reason) for (parent, lsn, reason), child in zip(rows, children, strict=True)]


def lsn_text(n: int) -> str:
    """A WAL location as PostgreSQL prints it (``16/B374D848``, no leading zeros)."""
    return f"{n >> 32:X}/{n & 0xFFFFFFFF:X}"


def lsn_to_int(lsn: str) -> int:
    """A WAL location (``16/B374D848``) as a number, to compare two of them."""
    hi, lo = lsn.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


@dataclass(frozen=True)
class Divergence:
    """WAL of an older timeline archived after a newer timeline branched off it: either a former primary still
    writing on its own (split brain), or its last WAL archived once as it was rewound (Patroni archives the
    segments a crashed primary left ``.ready`` before it runs pg_rewind). Only the WAL's content tells which."""

    switch: Switch
    late: tuple[ArchivedSegment, ...]  # the parent timeline's segments past the switch point, archived after it
    branched_at: datetime  # when the newer timeline's .history file was archived

    @property
    def newest(self) -> ArchivedSegment:
        return self.late[-1]

    def to_read(self, budget: int = 3) -> list[str]:
        """The segments worth reading: the one holding the switch point (transactions lost in the failover) and
        the newest ones (a former primary running on its own writes there)."""
        picked = [self.late[0], *self.late[1:][-(budget - 1):]] if budget > 1 else [self.late[-1]]
        return [a.segment.name for a in picked]


def divergences(segments: list[ArchivedSegment], switches: tuple[Switch, ...],
                history_times: dict[int, datetime]) -> list[Divergence]:
    """For each switch, the parent timeline's segments from the one holding the switch point on, archived after
    the child's ``.history`` file. The parent's segments archived before the promotion are not a divergence
    (a failover leaves them behind); the segment holding the switch point is completed, and archived, only by
    the former primary (the new one archives its copy as ``.partial``)."""
    out = []
    for sw in switches:
        branched = history_times.get(sw.timeline)
        if branched is None:
            continue
        point = lsn_to_int(sw.lsn) // SEGMENT_BYTES
        late = [a for a in segments if a.segment.timeline == sw.parent and a.segment.segno >= point
                and a.archived_at > branched]
        if late:
            out.append(Divergence(sw, tuple(sorted(late, key=lambda a: a.segment.segno)), branched))
    return out


@dataclass(frozen=True)
class Stamped:
    """A timestamped WAL record (a commit or an abort): its transaction, position and time."""

    xid: int
    lsn: str
    time: datetime


@dataclass(frozen=True)
class SegmentFacts:
    """What a WAL segment tells about who wrote it: the transactions that ended in it, and the positions of the
    shutdown or end-of-recovery checkpoints that a transaction's writes follow (a server that started as a
    primary and took writes)."""

    ended: tuple[Stamped, ...] = ()
    restarts: tuple[str, ...] = ()


CLOCK_SLACK = timedelta(seconds=1)  # the repository's archive times are whole seconds


@dataclass(frozen=True)
class DivergenceVerdict:
    divergence: Divergence
    split_brain: bool  # the old timeline was written by a primary running after the new one began
    after_promotion: tuple[Stamped, ...]  # transactions that ended after the promotion (the proof)
    restarted_at: tuple[str, ...]  # or: a primary started on the old timeline past the switch point
    lost: tuple[Stamped, ...]  # transactions past the switch point, ended before the promotion
    unread: tuple[str, ...]  # segments that could not be read: nothing is proven for them


def judge(d: Divergence, records: dict[str, SegmentFacts | None]) -> DivergenceVerdict:
    """Pure: a late segment holding a transaction that ended after the newer timeline's ``.history`` reached
    the archive, or a start-up checkpoint past the switch point followed by writes, was written by a primary
    running after the promotion: split brain. (A rewound primary's leftover segments hold neither: what it wrote
    before it was lost, and the crash recovery Patroni runs before pg_rewind: a checkpoint, a WAL switch.)
    Transactions past the switch point that ended before the promotion were lost in the failover (asynchronous
    replication); they are on the abandoned branch only. A segment that could not be read (``None``) proves
    nothing, so it counts as a possible split brain; segments missing from ``records`` were not read."""
    point = lsn_to_int(d.switch.lsn)
    later = d.branched_at + CLOCK_SLACK
    after: list[Stamped] = []
    lost: list[Stamped] = []
    restarts: list[str] = []
    unread: list[str] = []
    for a in d.late:
        if a.segment.name not in records:  # not read (beyond the reading budget)
            continue
        facts = records[a.segment.name]
        if facts is None:
            unread.append(a.segment.name)
            continue
        after += [r for r in facts.ended if r.time > later]
        lost += [r for r in facts.ended if r.time <= later and lsn_to_int(r.lsn) >= point]
        restarts += [lsn for lsn in facts.restarts if lsn_to_int(lsn) >= point]
    return DivergenceVerdict(d, bool(after or restarts or unread), tuple(after), tuple(restarts), tuple(lost),
                             tuple(unread))


def archived_past_switch(segments: list[ArchivedSegment], sw: Switch, branched: datetime | None
                         ) -> list[ArchivedSegment]:
    """The parent timeline's segments from the one holding the switch point on, archived before the newer
    timeline began: the old primary completed them before it was lost (a WAL switch, archive_timeout), and the
    transactions in them past the switch point never reached the new primary."""
    point = lsn_to_int(sw.lsn) // SEGMENT_BYTES
    return sorted((a for a in segments if a.segment.timeline == sw.parent and a.segment.segno >= point
                   and (branched is None or a.archived_at <= branched)), key=lambda a: a.segment.segno)


def lost_past(sw: Switch, facts: list[SegmentFacts]) -> tuple[Stamped, ...]:
    """Pure: the transactions of the parent timeline that ended past the switch point (on the abandoned branch)."""
    point = lsn_to_int(sw.lsn)
    return tuple(r for f in facts for r in f.ended if lsn_to_int(r.lsn) >= point)
