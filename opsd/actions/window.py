"""The recoverable window, from the repository alone: backups (pgbackrest info), archived WAL (repo-ls),
and the last commit actually in the newest archived WAL (archive-get + pg_waldump)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from opsd.adapters.pgbackrest import BackupInfo, StanzaInfo
from opsd.wal import ArchivedSegment, Gap, Run, Segment, parse_segment, runs_and_gaps

COMMIT_LOOKBACK = 8  # segments to read backwards when the newest one holds no commit


@dataclass(frozen=True)
class Bound:
    time: datetime
    source: str


@dataclass(frozen=True)
class Interval:
    timeline: int
    earliest: Bound
    latest: Bound
    backups: tuple[str, ...]
    wal_first: str
    wal_last: str

    def covers(self, t: datetime) -> bool:
        return self.earliest.time <= t <= self.latest.time


@dataclass(frozen=True)
class Window:
    intervals: tuple[Interval, ...]
    gaps: tuple[Gap, ...]
    runs: tuple[Run, ...]
    unusable: tuple[str, ...]  # backups whose WAL is not (fully) in the archive
    segments: tuple[ArchivedSegment, ...] = ()

    @property
    def earliest(self) -> Bound | None:
        return min((i.earliest for i in self.intervals), key=lambda b: b.time, default=None)

    @property
    def latest(self) -> Bound | None:
        return max((i.latest for i in self.intervals), key=lambda b: b.time, default=None)

    def covering(self, t: datetime) -> Interval | None:
        return next((i for i in self.intervals if i.covers(t)), None)

    def run_of(self, seg: Segment) -> Run | None:
        return next((r for r in self.runs if r.contains(seg)), None)


def _backup_run(b: BackupInfo, runs: list[Run]) -> Run | None:
    start, stop = parse_segment(b.wal_start or ""), parse_segment(b.wal_stop or "")
    if start is None or stop is None:
        return None
    return next((r for r in runs if r.contains(start) and r.contains(stop)), None)


def _continues(child: Run, parent: Run) -> bool:
    """A later timeline that branched off ``parent``: it starts inside or right after it."""
    return (child.timeline > parent.timeline
            and parent.first.segment.segno <= child.first.segment.segno <= parent.last.segment.segno + 1)


def compute_window(info: StanzaInfo, segments: list[ArchivedSegment],
                   commit_time: Callable[[str], datetime | None]) -> Window:
    runs, gaps = runs_and_gaps(segments)
    usable = [b for b in info.backups if not b.error]
    by_run: dict[int, list[BackupInfo]] = {}
    unusable = []
    for b in usable:
        run = _backup_run(b, runs)
        if run is None:
            unusable.append(b.label)
        else:
            by_run.setdefault(id(run), []).append(b)
    intervals = []
    reach: dict[int, list[BackupInfo]] = {}
    for run in sorted(runs, key=lambda r: (r.first.segment.segno, r.timeline)):
        backups = list(by_run.get(id(run), []))
        for parent in runs:
            if parent is not run and _continues(run, parent):
                backups += reach.get(id(parent), [])
        reach[id(run)] = backups
        if not backups:
            continue
        oldest = min(backups, key=lambda b: b.stop)
        newest = max(backups, key=lambda b: b.stop)
        latest = _latest(run, commit_time)
        if latest.time < newest.stop:  # no commit since the newest backup ended: its end is still reachable
            latest = Bound(newest.stop, f"stop of backup {newest.label} (no commit after it in the archived WAL)")
        intervals.append(Interval(
            timeline=run.timeline,
            earliest=Bound(oldest.stop, f"stop of backup {oldest.label}"),
            latest=latest,
            backups=tuple(sorted({b.label for b in backups})),
            wal_first=run.first.segment.name, wal_last=run.last.segment.name,
        ))
    return Window(tuple(intervals), tuple(gaps), tuple(runs), tuple(unusable), tuple(segments))


def _latest(run: Run, commit_time: Callable[[str], datetime | None]) -> Bound:
    seg = run.last.segment
    for _ in range(COMMIT_LOOKBACK):
        t = commit_time(seg.name)
        if t is not None:
            return Bound(t, f"last commit in archived WAL {seg.name} (pg_waldump)")
        if seg.segno <= run.first.segment.segno:
            break
        seg = Segment(seg.timeline, seg.segno - 1)
    return Bound(run.last.archived_at,
                 f"archive time of {run.last.segment.name} (no commit in the last {COMMIT_LOOKBACK} segments)")
