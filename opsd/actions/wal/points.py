"""Named restore points: create one on the primary (archived before the command returns), and list them from
the history and from the archived WAL, with whether each is still recoverable."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from opsd.actions.jobs import JobOutcome, run_job
from opsd.actions.restore.service import Timelines, load_timelines
from opsd.actions.restore.window import Window
from opsd.actions.wal.scan import chain, read
from opsd.adapters import files
from opsd.adapters.pgbackrest import StanzaInfo
from opsd.adapters.walcache import cache_name
from opsd.context import Context
from opsd.core.records.runs import Outcome
from opsd.core.records.targeted import RestorePoint
from opsd.core.wal import CLOCK_SLACK, SEGMENT_BYTES, Segment, lsn_to_int
from opsd.core.walfind import Point
from opsd.db.queries import ServerRow, fetch_one
from opsd.db.targeted import create_restore_point
from opsd.errors import OpsdError, RefusedError, UsageError

JOB = "restore-point"
MAX_NAME = 63  # PostgreSQL's MAXFNAMELEN - 1
PGBACKREST_POINT = "pgBackRest Archive Check"


def check_name(name: str) -> str:
    if not name or len(name.encode()) > MAX_NAME or any(not c.isprintable() for c in name):
        raise UsageError(f"invalid restore point name {name!r}: 1 to {MAX_NAME} bytes, printable characters")
    return name


def recorded(ctx: Context) -> list[RestorePoint]:
    """The points opsd created, from the history (newest first)."""
    return [p for r in ctx.history.runs(JOB, limit=1000) if r.outcome == Outcome.OK
            and (p := r.details_as(RestorePoint)) is not None]


def create(ctx: Context, name: str, *, wait: float, report: Callable[[str], None]) -> JobOutcome:
    check_name(name)
    clash = [p for p in recorded(ctx) if p.name == name]
    if clash:
        raise RefusedError(f"restore point {name!r} already exists (at {clash[0].lsn}): a restore to it would be "
                           "ambiguous; choose another name")

    def body() -> JobOutcome:
        with ctx.connect() as conn:
            if fetch_one(conn, "server", ServerRow).in_recovery:
                raise OpsdError("this server is a standby: create restore points on the primary")
            row = create_restore_point(conn, name)
        point = RestorePoint(name=name, lsn=row.lsn, timeline=row.timeline, time=row.at, segment=row.segment,
                             source="history")
        report(f"created {name!r} at {row.lsn} (segment {row.segment}); waiting until it is in the repository ...")
        _wait_archived(ctx, row.segment, wait)
        return JobOutcome(Outcome.OK, point.summary() + ", archived", point)

    return run_job(ctx, JOB, "cli", body)


def _wait_archived(ctx: Context, segment: str, wait: float) -> None:
    archive_id = ctx.pgbackrest.info().current_archive_id
    if archive_id is None:
        raise OpsdError("the repository has no archive for this stanza: is the stanza created?")
    deadline = time.monotonic() + wait
    while not ctx.pgbackrest.has_wal(archive_id, segment):
        if time.monotonic() > deadline:
            raise OpsdError(f"the restore point is written, but segment {segment} did not reach the repository "
                            f"within {wait:.0f}s: it is not recoverable until it does",
                            hint="opsd check (archive.archiver) says why archiving is behind")
        time.sleep(0.5)


# --------------------------------------------------------------------------- listing
CACHE_VERSION = 2  # 1: keyed by stanza and archive id only, which a stanza created again reuses


def _cache_file(ctx: Context, archive_id: str | None, system_id: int | None) -> Path:
    """One file per stanza (a drill host reads many), archive id and cluster (its system identifier)."""
    return files.ensure_dir(ctx.settings.opsd.state_dir / "walcache", ctx.settings.opsd.run_as) / \
        cache_name("points", ctx.settings.pgbackrest.stanza, archive_id, system_id)


@dataclass(frozen=True)
class Scanned:
    points: list[RestorePoint]
    read: int  # segments decoded now (the others came from the cache)


Cache = dict[str, list[list[str | None]]]  # segment name -> its points: [name, LSN, time of the last end before]


def _load(path: Path, system_id: int | None) -> Cache:
    """The cache, or an empty one when it is missing, unreadable, of an older format or of another cluster (it is
    only ever a shortcut: never mixed in)."""
    try:
        data = json.loads(path.read_text())
        if data.get("version") != CACHE_VERSION or data.get("system_id") != system_id:
            return {}
        return {str(k): list(v) for k, v in data["segments"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def scan_wal(ctx: Context, t: Timelines, system_id: int | None, since: datetime, report: Callable[[str], None],
             *, jobs: int = 4) -> Scanned:
    """Restore point records in the archived WAL: segments archived since ``since`` are read once, then kept
    in one cache file per archive id and cluster (archived segments never change; segments the repository no
    longer has are dropped from it); every cached segment's points are listed."""
    path = _cache_file(ctx, t.archive_id, system_id)
    cache = _load(path, system_id)
    present = {a.segment.name for a in t.current}
    cache = {k: v for k, v in cache.items() if k in present}
    todo = [a.segment for a in t.current if a.archived_at + CLOCK_SLACK > since  # whole seconds in the repository
            and a.segment.name not in cache]
    for tl in sorted({s.timeline for s in todo}):
        run = sorted(s for s in todo if s.timeline == tl)
        report(f"reading {len(run)} WAL segment(s) of timeline {tl} for restore points ...")
        got = _points_in(ctx, run, jobs)
        for s in run:
            cache[s.name] = [[p.name, p.lsn, p.after.isoformat() if p.after else None] for p in got
                             if lsn_to_int(p.lsn) // SEGMENT_BYTES == s.segno]
    files.write_whole(path, json.dumps({"version": CACHE_VERSION, "system_id": system_id, "segments": cache}))
    files.give_to(path, ctx.settings.opsd.run_as)
    found = [RestorePoint(name=str(name), lsn=str(lsn), timeline=_segment(seg).timeline, segment=seg, source="wal",
                          time=datetime.fromisoformat(after) if after else None)
             for seg, entries in sorted(cache.items()) for name, lsn, after in entries]
    return Scanned(found, len(todo))


def _points_in(ctx: Context, path: list[Segment], jobs: int) -> list[Point]:
    got: list[Point] = []

    def sink(e: object) -> None:
        if isinstance(e, Point):
            got.append(e)

    read(ctx, path, sink, jobs=jobs, rmgrs=("XLOG", "Transaction"))
    return got


def _segment(name: str) -> Segment:
    from opsd.core.wal import parse_segment

    s = parse_segment(name)
    if s is None:
        raise OpsdError(f"unexpected file {name} in the restore point cache")
    return s


def _same(h: RestorePoint, w: RestorePoint) -> bool:
    """The same point: PostgreSQL returns the end of the restore point record, pg_waldump shows its start."""
    return h.name == w.name and h.timeline == w.timeline and 0 <= lsn_to_int(h.lsn) - lsn_to_int(w.lsn) < 4096


def merge(history: list[RestorePoint], wal: list[RestorePoint]) -> list[RestorePoint]:
    """One entry per point: opsd's record (with its exact time) wins, marked 'both' when the WAL has it too.
    pgBackRest's own points ('pgBackRest Archive Check', from its check command) are left out."""
    rest = [p for p in wal if not p.name.startswith(PGBACKREST_POINT)]
    out = []
    for h in history:
        seen = [w for w in rest if _same(h, w)]
        rest = [w for w in rest if w not in seen]
        out.append(h.model_copy(update={"source": "both"}) if seen else h)
    out += rest
    return sorted(out, key=lambda p: (lsn_to_int(p.lsn), p.timeline))


def judge(p: RestorePoint, info: StanzaInfo, w: Window, t: Timelines) -> RestorePoint:
    """Recoverable: a backup that ended before the point, and the point's segment in the same unbroken WAL run
    as that backup's start, along the point's timeline history."""
    seg = Segment(p.timeline, lsn_to_int(p.lsn) // SEGMENT_BYTES)
    path = chain(t.switches, p.timeline)
    before = [b for b in info.backups if not b.error and b.lsn_stop and lsn_to_int(b.lsn_stop) <= lsn_to_int(p.lsn)
              and b.archive_id in (None, "", t.archive_id)]
    if not before:
        return p.model_copy(update={"recoverable": False, "why": "no backup in the repository ended before it"})
    for b in sorted(before, key=lambda x: lsn_to_int(x.lsn_stop or "0/0"), reverse=True):
        if _reaches(b.wal_start or "", seg, path, w):
            return p.model_copy(update={"recoverable": True, "why": f"from backup {b.label}"})
    return p.model_copy(update={"recoverable": False,
                                "why": "WAL between the newest backup before it and the point is missing"})


def _reaches(wal_start: str, seg: Segment, path: dict[int, tuple[int, int | None]], w: Window) -> bool:
    from opsd.core.wal import parse_segment

    start = parse_segment(wal_start)
    if start is None:
        return False
    have = {a.segment for a in w.segments}
    for segno in range(start.segno, seg.segno + 1):
        tl = max((tl for tl, (first, _end) in path.items() if first <= segno), default=start.timeline)
        if Segment(tl, segno) not in have and Segment(start.timeline, segno) not in have:
            return False
    return True


def listing(ctx: Context, since: datetime, report: Callable[[str], None], jobs: int = 4
            ) -> tuple[list[RestorePoint], int]:
    from opsd.actions.restore.service import load_window

    info, w = load_window(ctx)
    t = load_timelines(ctx, info)
    scanned = scan_wal(ctx, t, info.current_system_id, since, report, jobs=jobs)
    return [judge(p, info, w, t) for p in merge(recorded(ctx), scanned.points)], scanned.read
