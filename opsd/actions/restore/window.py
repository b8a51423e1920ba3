"""The recoverable window, from the repository alone: backups (pgbackrest info), archived WAL (repo-ls),
and the last commit actually in the newest archived WAL (archive-get + pg_waldump)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from opsd.adapters.pgbackrest import BackupInfo, StanzaInfo
from opsd.adapters.waldump import Commit
from opsd.core.wal import (
    ArchivedSegment,
    Gap,
    Segment,
    Switch,
    WalRun,
    lsn_to_int,
    parse_segment,
    runs_and_gaps,
)

COMMIT_LOOKBACK = 8  # segments to read backwards when the newest one holds no commit


@dataclass(frozen=True)
class Bound:
    time: datetime
    source: str
    commit: Commit | None = None  # the commit record this bound is (xid and LSN to stop exactly there)


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
    runs: tuple[WalRun, ...]
    unusable: tuple[str, ...]  # backups whose WAL is not (fully) in the archive
    segments: tuple[ArchivedSegment, ...] = ()
    switches: tuple[Switch, ...] = ()  # timeline switches from the archived .history files

    @property
    def earliest(self) -> Bound | None:
        return min((i.earliest for i in self.intervals), key=lambda b: b.time, default=None)

    @property
    def latest(self) -> Bound | None:
        return max((i.latest for i in self.intervals), key=lambda b: b.time, default=None)

    def covering(self, t: datetime, timeline: int | None = None) -> Interval | None:
        """The interval that reaches ``t`` on ``timeline``, or, without one, on the newest timeline that reaches it
        (what PostgreSQL follows by default, recovery_target_timeline = 'latest')."""
        found = [i for i in self.intervals if i.covers(t) and (timeline is None or i.timeline == timeline)]
        return max(found, key=lambda i: i.timeline, default=None)

    def covering_all(self, t: datetime) -> list[Interval]:
        return [i for i in self.intervals if i.covers(t)]

    def run_of(self, seg: Segment, archive_id: str | None = None) -> WalRun | None:
        return next((r for r in self.runs if r.contains(seg, archive_id)), None)


def _backup_run(b: BackupInfo, runs: list[WalRun]) -> WalRun | None:
    start, stop = parse_segment(b.wal_start or ""), parse_segment(b.wal_stop or "")
    if start is None or stop is None:
        return None
    return next((r for r in runs if r.contains(start, b.archive_id) and r.contains(stop, b.archive_id)), None)


def _continues(child: WalRun, parent: WalRun) -> bool:
    """A later timeline that branched off ``parent``: it starts inside or right after it."""
    return (child.timeline > parent.timeline and child.archive_id == parent.archive_id
            and parent.first.segment.segno <= child.first.segment.segno <= parent.last.segment.segno + 1)


def compute_window(info: StanzaInfo, segments: list[ArchivedSegment],
                   commit_at: Callable[[str], Commit | None], switches: tuple[Switch, ...] = ()) -> Window:
    """``commit_at(segment name)`` reads the last commit of a segment of the current archive id (archive-get
    fetches only from it): runs of an older archive id (before a stanza-upgrade) end at their last archive time."""
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
    current = info.current_archive_id
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
        latest = _latest(run, commit_at if not current or run.archive_id in ("", current) else lambda _n: None)
        if latest.time < newest.stop or _before_end(latest, newest):  # no commit archived after the newest
            # backup's end: that end is the latest point recovery can stop at (a commit before its stop LSN is
            # not: PostgreSQL refuses a stop before the backup is consistent, whatever the commit's time says)
            latest = Bound(newest.stop, f"stop of backup {newest.label} (no commit after it in the archived WAL)")
        intervals.append(Interval(
            timeline=run.timeline,
            earliest=Bound(oldest.stop, f"stop of backup {oldest.label}"),
            latest=latest,
            backups=tuple(sorted({b.label for b in backups})),
            wal_first=run.first.segment.name, wal_last=run.last.segment.name,
        ))
    return Window(tuple(intervals), tuple(gaps), tuple(runs), tuple(unusable), tuple(segments), switches)


def _before_end(latest: Bound, backup: BackupInfo) -> bool:
    """The bound's commit lies before the backup's stop LSN. Under load a commit can be written within the
    second the backup ended (pgBackRest's stop time is in whole seconds) yet before its consistency point."""
    c = latest.commit
    return c is not None and bool(backup.lsn_stop) and lsn_to_int(c.lsn) < lsn_to_int(backup.lsn_stop or "0/0")


def _latest(run: WalRun, commit_at: Callable[[str], Commit | None]) -> Bound:
    seg = run.last.segment
    for _ in range(COMMIT_LOOKBACK):
        c = commit_at(seg.name)
        if c is not None:
            return Bound(c.time, f"last commit in archived WAL {seg.name} (pg_waldump)", c)
        if seg.segno <= run.first.segment.segno:
            break
        seg = Segment(seg.timeline, seg.segno - 1)
    return Bound(run.last.archived_at,
                 f"archive time of {run.last.segment.name} (no commit in the last {COMMIT_LOOKBACK} segments)")
