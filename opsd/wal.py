"""WAL segment names and the archive's shape: timelines, contiguous runs, gaps (pure).

Assumes the default 16 MiB wal_segment_size (256 segments per 4 GiB 'log' id).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

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


@dataclass(frozen=True)
class Run:
    """A contiguous run of archived segments on one timeline."""

    timeline: int
    first: ArchivedSegment
    last: ArchivedSegment

    @property
    def count(self) -> int:
        return self.last.segment.segno - self.first.segment.segno + 1

    def contains(self, seg: Segment) -> bool:
        return seg.timeline == self.timeline and self.first.segment.segno <= seg.segno <= self.last.segment.segno


@dataclass(frozen=True)
class Gap:
    timeline: int
    missing_from: Segment
    missing_to: Segment

    @property
    def count(self) -> int:
        return self.missing_to.segno - self.missing_from.segno + 1


def runs_and_gaps(segments: list[ArchivedSegment]) -> tuple[list[Run], list[Gap]]:
    """Split archived segments into contiguous runs per timeline; the holes between runs are gaps."""
    runs: list[Run] = []
    gaps: list[Gap] = []
    ordered = sorted(segments, key=lambda a: a.segment)
    start = prev = None
    for a in ordered:
        if prev is not None and a.segment == Segment(prev.segment.timeline, prev.segment.segno + 1):
            prev = a
            continue
        if prev is not None and start is not None:
            runs.append(Run(prev.segment.timeline, start, prev))
            if a.segment.timeline == prev.segment.timeline:
                gaps.append(Gap(a.segment.timeline, Segment(a.segment.timeline, prev.segment.segno + 1),
                                Segment(a.segment.timeline, a.segment.segno - 1)))
        start = prev = a
    if prev is not None and start is not None:
        runs.append(Run(prev.segment.timeline, start, prev))
    return runs, gaps
