"""Which archived segments a time range needs, on the timelines recovery follows, and reading them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from opsd.actions.restore.service import Timelines, load_timelines
from opsd.adapters import files
from opsd.adapters.walparallel import WalScanner, cores
from opsd.adapters.walscan import Progress
from opsd.context import Context
from opsd.core.wal import CLOCK_SLACK, SEGMENT_BYTES, ArchivedSegment, Segment, Switch, lsn_to_int
from opsd.core.walfind import Event, Keep

LEAD_IN = 1  # segments read before the range: the first records of a transaction that commits inside it


@dataclass(frozen=True)
class Span:
    """The segments to read for a range, and what the archive has (for a message when the range is empty)."""

    segments: list[Segment]
    archived_from: datetime | None
    archived_to: datetime | None
    holes: int  # segments missing inside the span (a WAL gap): changes there are unknown


def chain(switches: tuple[Switch, ...], newest: int) -> dict[int, tuple[int, int | None]]:
    """Pure: timeline -> (first segno, last segno + 1 or None) along the history of ``newest`` (what recovery
    follows by default): each timeline until the segment where its child branched off."""
    parents = {sw.timeline: sw for sw in switches}
    out: dict[int, tuple[int, int | None]] = {}
    tl, end = newest, None
    while True:
        sw = parents.get(tl)
        start = lsn_to_int(sw.lsn) // SEGMENT_BYTES if sw else 0
        out[tl] = (start, end)
        if sw is None or sw.parent in out:
            return out
        tl, end = sw.parent, start


def span(segments: list[ArchivedSegment], switches: tuple[Switch, ...], newest: int, since: datetime,
         until: datetime | None) -> Span:
    """Pure: the segments archived from ``since`` on (a segment archived earlier holds nothing later), up to the
    first archived at or after ``until``, along the newest timeline's history; plus a lead-in segment."""
    along = chain(switches, newest)
    path = sorted((a for a in segments if a.segment.timeline in along
                   and along[a.segment.timeline][0] <= a.segment.segno
                   and (along[a.segment.timeline][1] is None or a.segment.segno < (along[a.segment.timeline][1] or 0))),
                  key=lambda a: a.segment.segno)
    # the repository keeps archive times in whole seconds: a segment stamped in the second of ``since`` may have
    # been archived after it
    first = next((i for i, a in enumerate(path) if a.archived_at + CLOCK_SLACK > since), None)
    times = [a.archived_at for a in path]
    if first is None:
        return Span([], min(times, default=None), max(times, default=None), 0)
    last = next((i for i, a in enumerate(path) if i >= first and until is not None and a.archived_at >= until),
                len(path) - 1)
    chosen = [a.segment for a in path[max(0, first - LEAD_IN):last + 1]]
    holes = sum(b.segno - a.segno - 1 for a, b in pairwise(chosen) if b.segno > a.segno + 1)
    return Span(chosen, min(times), max(times), holes)


def timeline_at(lsn: str, path: list[Segment]) -> int:
    """The timeline of the segment of ``path`` that holds ``lsn`` (the path follows one timeline history)."""
    segno = lsn_to_int(lsn) // SEGMENT_BYTES
    return next((s.timeline for s in reversed(path) if s.segno <= segno), path[0].timeline)


def plan_span(ctx: Context, since: datetime, until: datetime | None, t: Timelines | None = None) -> Span:
    t = t or load_timelines(ctx)
    return span(t.current, t.switches, t.newest, since, until)


def decoders(jobs: int) -> int:
    """Decoding processes for ``--jobs``: one a core this process may run on, at most ``jobs``."""
    return max(1, min(jobs, cores()))


def read(ctx: Context, segments: list[Segment], sink: Callable[[Event], None], *, jobs: int,
         report: Callable[[Progress], None] | None = None, rmgrs: tuple[str, ...] | None = None,
         enough: Callable[[], bool] | None = None, keep: Keep | None = None) -> None:
    """Decode ``segments`` from the repository into ``sink`` (in a private temporary directory): ``jobs``
    segments fetched at once, decoded by as many processes as there are cores (at most ``jobs``)."""
    pg, o = ctx.settings.postgres, ctx.settings.opsd
    with files.scratch_dir(o.state_dir / "tmp", o.run_as) as tmp:
        scanner = WalScanner(ctx.pgbackrest, pg.bin_dir, tmp, workers=jobs, procs=decoders(jobs), keep=keep,
                             run_as=o.run_as)
        if rmgrs is not None:
            scanner.rmgrs = rmgrs
        scanner.scan(segments, sink, report, enough)
