"""The restore plan: which backup set and why, how much WAL, where to, how long, and verdicts.

Pure: it decides from the repository's facts (info, window), the destination's facts (gathered by the
caller through adapters) and measured history. A plan with a ``refuse`` verdict is never executed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from opsd.actions.restore.window import Bound, Interval, Window
from opsd.adapters.cluster import CLEAN_STATES, StopEvidence
from opsd.adapters.pgbackrest import BackupInfo, StanzaInfo
from opsd.core.records.drill import DrillResult
from opsd.core.records.jobs import RestoreResult
from opsd.core.records.runs import Run
from opsd.core.timeparse import show
from opsd.core.units import human_bytes
from opsd.core.wal import SEGMENT_BYTES, Segment, lsn_to_int, parse_segment

OK, WARN, REFUSE = "ok", "warning", "refuse"
ALL_PASSED = "all preflight checks passed"
SPACE_MARGIN = 1.10


@dataclass(frozen=True)
class Request:
    target_type: str  # time | lsn | xid | name | immediate
    target_time: datetime | None = None
    target_value: str | None = None  # lsn, xid or restore point name
    # where a name or xid target stops, found in the archived WAL (the restore point's record, the commit)
    stop_lsn: str | None = None
    exclusive: bool = False  # stop just before the target (--before-xid)
    set_label: str | None = None
    target_timeline: str | None = None
    dest: Path = Path()
    port: int | None = None
    in_place: bool = False
    delta: bool = False
    start: bool = False
    pause: bool = False
    force: bool = False  # in place: --delta allowed; a cluster not shut down cleanly (no process alive) accepted
    # a side copy of some databases only (pgBackRest --db-include / --db-exclude; copies/partial.py decides)
    db_include: tuple[str, ...] = ()
    db_exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class DestFacts:
    """Gathered by adapters before planning. ``real_path``: the destination with symlinks resolved (where the
    files really go); ``stop``: the evidence about the cluster in an in-place destination that holds files."""

    exists: bool
    empty: bool
    free_bytes: int | None
    port_in_use: bool = False
    stop: StopEvidence | None = None
    mount_point: bool = False
    real_path: Path | None = None
    floor_bytes: int = 0  # a copy beside production: what must stay free on a filesystem production writes to


@dataclass(frozen=True)
class Verdict:
    level: str
    message: str


@dataclass(frozen=True)
class Placement:
    """One tablespace of the backup: where it was in production and where this restore puts it."""

    name: str
    oid: int
    source: str  # its location in production when the backup was taken
    dest: str
    how: str  # mapped (a side copy) | moved aside | overwritten (--delta) | restored (location empty)
    aside: tuple[str, ...] = ()  # in place: the version directories moved aside (as they are named now)
    size: int | None = None  # bytes, from the backup's manifest (None: unknown)


@dataclass(frozen=True)
class Pin:
    """Where recovery really stops for a target at the last archived commit."""

    target_type: str  # xid | immediate | default (end of the archived WAL: no commit found to stop at)
    target: str | None
    message: str


@dataclass
class Plan:
    request: Request
    backup: BackupInfo | None
    why: str
    wal_from: str | None
    wal_to: str | None
    wal_segments: int
    estimate_seconds: float | None
    estimate_source: str
    verdicts: list[Verdict] = field(default_factory=list)
    interval: Interval | None = None
    # PostgreSQL stops a time target only at a later commit: a target at the last archived commit is pinned to
    # that commit's transaction (or to the backup's consistency point), so recovery stops exactly there however
    # much WAL is archived while it runs.
    pin: Pin | None = None
    real_path: Path | None = None
    tablespaces: list[Placement] = field(default_factory=list)  # the backup's (tablespaces.py), once asked

    @property
    def timeline(self) -> str | None:
        """The timeline recovery follows: asked for, or the one the plan chose for a time target."""
        if self.request.target_timeline:
            return self.request.target_timeline
        return str(self.interval.timeline) if self.interval is not None else None

    @property
    def refused(self) -> bool:
        return any(v.level == REFUSE for v in self.verdicts)

    @property
    def wal_bytes(self) -> int:
        return self.wal_segments * SEGMENT_BYTES

    def refusals(self) -> list[str]:
        return [v.message for v in self.verdicts if v.level == REFUSE]


def window_text(w: Window) -> str:
    if not w.intervals:
        return "no recoverable window (no usable backup with its WAL in the archive)"
    return "; ".join(f"timeline {i.timeline}: {show(i.earliest.time)} .. {show(i.latest.time)}" for i in w.intervals)


def _choose(req: Request, info: StanzaInfo, w: Window, interval: Interval | None
            ) -> tuple[BackupInfo | None, str, list[Verdict]]:
    usable = {label for i in w.intervals for label in i.backups}
    if interval is not None:  # a time target: only backups whose WAL reaches it on the chosen timeline
        usable = set(interval.backups)
    backups = [b for b in info.backups if b.label in usable]
    if req.set_label:
        return _asked_for(req, info, backups, usable)
    if not backups:
        return None, "", [Verdict(REFUSE, "no usable backup in the repository")]
    # a target at the window's end that is a backup's end: recovery stops at that backup's consistency point
    end = interval.latest.time if interval is not None and interval.latest.commit is None else None
    return _newest_before(req, backups, end)


def _asked_for(req: Request, info: StanzaInfo, backups: list[BackupInfo], usable: set[str]
               ) -> tuple[BackupInfo | None, str, list[Verdict]]:
    """The backup set named with --set, if it can reach the target."""
    b = next((x for x in info.backups if x.label == req.set_label), None)
    if b is None or b.error:
        names = ", ".join(x.label for x in backups) or "none"
        return None, "", [Verdict(REFUSE, f"no usable backup set {req.set_label!r} (usable: {names})")]
    if b.label not in usable:
        return b, "asked for with --set", [Verdict(REFUSE, f"backup {b.label} has WAL missing from the archive")]
    if req.target_time is not None and b.stop > req.target_time:
        return b, "asked for with --set", [Verdict(REFUSE, f"backup {b.label} ended at {show(b.stop)}, after the "
                                                           f"target: it cannot recover to an earlier time")]
    return b, "asked for with --set", []


END_PRECISION = timedelta(seconds=1)


def _newest_before(req: Request, backups: list[BackupInfo], end: datetime | None = None
                   ) -> tuple[BackupInfo | None, str, list[Verdict]]:
    """The newest usable backup that ended before the target."""
    if req.target_type == "time" and req.target_time is not None:
        t = req.target_time
        before = [b for b in backups if b.stop <= t]
        if not before:
            return None, "", []  # the window verdict says why
        # pgBackRest records a backup's end in whole seconds: one that "ended" less than a second before the
        # target may become consistent after a commit the target stops at. An older backup is safe, if any.
        safe = [b for b in before if b.stop + END_PRECISION <= t or b.stop == end == t]
        b = max(safe or before, key=lambda x: x.stop)
        close = [] if safe else [Verdict(WARN, (
            f"the target is within a second of backup {b.label}'s end ({show(b.stop)}, recorded in whole "
            "seconds): if a transaction committed in that second before the backup was consistent, PostgreSQL "
            "refuses to stop there ('requested recovery stop point is before consistent recovery point'); a "
            "target a second later is safe"))]
        return b, f"newest backup that ended before the target (ended {show(b.stop)})", close
    stop = req.target_value if req.target_type == "lsn" else req.stop_lsn
    if stop:
        target = lsn_to_int(stop)
        what = {"lsn": f"LSN {stop}", "name": f"restore point {req.target_value!r} (LSN {stop})",
                "xid": f"transaction {req.target_value} (commit at LSN {stop})"}[req.target_type]
        before = [b for b in backups if b.lsn_stop and lsn_to_int(b.lsn_stop) <= target]
        if not before:
            return None, "", [Verdict(REFUSE, f"no usable backup ended before {what}")]
        b = max(before, key=lambda x: lsn_to_int(x.lsn_stop or "0/0"))
        return b, f"newest backup that ended before {what} (stop LSN {b.lsn_stop})", []
    b = max(backups, key=lambda x: x.stop)
    why = {"immediate": "newest backup; recovery stops as soon as it is consistent",
           "xid": "newest backup (pgBackRest cannot tell where an xid lies; an xid older than it is not reachable)"}
    return b, why.get(req.target_type, "newest backup"), []


def _wal_end(req: Request, b: BackupInfo, w: Window) -> Segment | None:
    start = parse_segment(b.wal_start or "")
    stop = parse_segment(b.wal_stop or "")
    if start is None or stop is None:
        return None
    run = w.run_of(start, b.archive_id)
    if req.target_type == "immediate" or run is None:
        return stop
    at = req.target_value if req.target_type == "lsn" else req.stop_lsn
    if at:
        return Segment(stop.timeline, max(stop.segno, lsn_to_int(at) // SEGMENT_BYTES))
    last = run.last.segment
    if req.target_type == "time" and req.target_time is not None:
        # the first segment archived at or after T holds T (a segment is archived once it is full or switched)
        later = [a for a in w.segments if run.contains(a.segment, a.archive_id) and a.segment.segno >= stop.segno
                 and a.archived_at >= req.target_time]
        if later:
            return min(later, key=lambda a: a.segment.segno).segment
    return last


def _rates(r: Run) -> tuple[float | None, float | None]:
    """Restore and replay rates (bytes/s): a restore's are in its result, a drill's in its phases."""
    if (d := r.details_as(DrillResult)) is not None:
        return d.phases.restore_rate, d.phases.replay_rate
    if (res := r.details_as(RestoreResult)) is not None:
        return res.restore_rate, res.replay_rate
    return None, None


def estimate(backup: BackupInfo, wal_bytes: int, history: list[Run]) -> tuple[float | None, str]:
    """From measured restores and drills (the newest first): restore bytes/s and WAL replay bytes/s."""
    ok = [(r.job, _rates(r)) for r in history if r.outcome == "ok" and _rates(r)[0]]
    if not ok:
        return None, "no measured restore or drill yet"
    restore_rate = sum(d[0] or 0 for _j, d in ok) / len(ok)
    replays = [d[1] for _j, d in ok if d[1]]
    replay_rate = sum(replays) / len(replays) if replays else None
    secs = backup.size / restore_rate + (wal_bytes / replay_rate if replay_rate else 0)
    kinds = sorted({"restore(s)" if j == "restore" else "drill(s)" for j, _d in ok})
    return secs, f"mean of {len(ok)} measured {' and '.join(kinds)}: {human_bytes(restore_rate)}/s restore" + (
        f", {human_bytes(replay_rate)}/s replay" if replay_rate else "")


def _pin(latest: Bound, backup: BackupInfo | None) -> Pin:
    c = latest.commit
    if c is not None:
        return Pin("xid", str(c.xid), f"target is the last archived commit (transaction {c.xid} at LSN {c.lsn}, "
                                      f"{show(c.time)}): recovery stops right after it, whatever is archived "
                                      "meanwhile")
    if backup is not None and latest.time == backup.stop:
        return Pin("immediate", None, f"target is the end of backup {backup.label} (no commit after it in the "
                                      "archived WAL): recovery stops as soon as the backup is consistent")
    return Pin("default", None, f"no commit found to stop at ({latest.source}): recovering to the end of the "
                                "archived WAL")


def _time_verdicts(req: Request, info: StanzaInfo, w: Window, interval: Interval | None) -> list[Verdict]:
    assert req.target_time is not None
    t = req.target_time
    out = []
    if interval is None:
        earliest, latest = w.earliest, w.latest
        where = "outside the recoverable window"
        if req.target_timeline and w.covering(t):
            where = f"not reachable on timeline {req.target_timeline}"
        elif earliest and t < earliest.time:
            where = f"before the earliest recoverable time ({show(earliest.time)}, {earliest.source})"
        elif latest and t > latest.time:
            where = f"after the latest recoverable time ({show(latest.time)}, {latest.source})"
        out.append(Verdict(REFUSE, f"target {show(t)} is {where}; window: {window_text(w)}"))
        return out
    others = [i.timeline for i in w.covering_all(t) if i.timeline != interval.timeline]
    if others:
        why = "asked for with --target-timeline" if req.target_timeline else "the newest timeline that reaches it"
        on = ", ".join(map(str, sorted([*others, interval.timeline])))
        out.append(Verdict(WARN, f"target exists on timelines {on}: recovering along timeline {interval.timeline} "
                                 f"({why}); use --target-timeline to choose another"))
    for b in info.backups:
        if not b.error and b.start <= t < b.stop:
            out.append(Verdict(OK, f"target falls inside backup {b.label} ({show(b.start)} .. {show(b.stop)}): that "
                                   "backup is not consistent before its end, so an older one is used (more WAL to "
                                   "replay)"))
    return out


def make_plan(req: Request, info: StanzaInfo, w: Window, facts: DestFacts, history: list[Run]) -> Plan:
    interval = None
    pre: list[Verdict] = []
    if req.target_type == "time" and req.target_time is not None:
        wanted = int(req.target_timeline) if req.target_timeline and req.target_timeline.isdigit() else None
        interval = w.covering(req.target_time, wanted)
        pre = _time_verdicts(req, info, w, interval)
    backup, why, verdicts = _choose(req, info, w, interval)
    verdicts = verdicts + pre
    pin = None
    if interval is not None and req.target_time is not None and req.target_time >= interval.latest.time:
        pin = _pin(interval.latest, backup)
        verdicts.append(Verdict(WARN if pin.target_type == "default" else OK, pin.message
                                + (" (then promoted: there is nothing left to pause before)"
                                   if req.pause and pin.target_type == "default" else "")))
    for gap in w.gaps:
        verdicts.append(Verdict(WARN, f"WAL gap on timeline {gap.timeline}: {gap.missing_from.name} .. "
                                      f"{gap.missing_to.name} ({gap.count} segment(s) missing)"))
    wal_from = wal_to = None
    segments = 0
    if backup is not None:
        end = _wal_end(req, backup, w)
        start = parse_segment(backup.wal_start or "")
        if start and end:
            wal_from, wal_to = start.name, end.name
            segments = max(1, end.segno - start.segno + 1)
    verdicts += _dest_verdicts(req, backup, facts)
    est, source = estimate(backup, segments * SEGMENT_BYTES, history) if backup else (None, "no backup chosen")
    return Plan(req, backup, why, wal_from, wal_to, segments, est, source, passed(verdicts), interval, pin,
                facts.real_path)


def passed(verdicts: list[Verdict]) -> list[Verdict]:
    """The verdicts, with a note that all passed when none warns or refuses (OK notes do not count)."""
    if any(v.level in (WARN, REFUSE) for v in verdicts):
        return verdicts
    return [*verdicts, Verdict(OK, ALL_PASSED)]


def judge_stopped(e: StopEvidence, dest: Path, force: bool) -> list[Verdict]:
    """Stopped is proven, never inferred from an error: pg_ctl status says 3, no live process holds
    postmaster.pid, nothing answers on the socket or port, and pg_control says it was shut down."""
    seen = []
    if e.pg_ctl_status != 3:
        seen.append("pg_ctl status says it is running" if e.pg_ctl_status == 0
                    else f"pg_ctl status exited {e.pg_ctl_status} (only 3 proves 'stopped')")
    if e.pid_alive:
        seen.append(f"postmaster.pid names process {e.pid_file_pid}, which is alive")
    if e.answering:
        seen.append(f"a server answers on {e.answering}")
    if seen:
        return [Verdict(REFUSE, f"PostgreSQL may be running in {dest}: {'; '.join(seen)}; stop it first (e.g. "
                                "'pg_ctlcluster 15 main stop' or 'systemctl stop postgresql@15-main')")]
    if e.control_state in CLEAN_STATES:
        return []
    state = f"'{e.control_state}'" if e.control_state else "unreadable (pg_controldata failed)"
    if force:
        return [Verdict(WARN, f"cluster state in pg_control is {state}, not 'shut down'; accepted with --force: no "
                              "process of it is alive and nothing answers on its port")]
    return [Verdict(REFUSE, f"cluster state in pg_control is {state}, not 'shut down': it was not stopped cleanly "
                            "(crashed, or running where opsd cannot see it). Stop it cleanly; if the server is gone "
                            "for good, pass --force (the data directory is still moved aside, not deleted)")]


def in_place_verdicts(req: Request, facts: DestFacts) -> list[Verdict]:
    if not facts.exists:
        return [Verdict(REFUSE, f"postgres.data_dir {req.dest} does not exist: check [postgres] data_dir, or create "
                                "it empty (owner postgres, mode 700) to restore into it")]
    out = judge_stopped(facts.stop, req.dest, req.force) if facts.stop is not None else []
    if facts.mount_point and not req.delta and not facts.empty:
        out.append(Verdict(REFUSE, f"{facts.real_path or req.dest} is a mount point: it cannot be moved aside. "
                                   "Restore with --delta --force (overwrites it in place) or into a side directory"))
    return out


def _dest_verdicts(req: Request, backup: BackupInfo | None, facts: DestFacts) -> list[Verdict]:
    out = []
    if req.in_place:
        out += in_place_verdicts(req, facts)
    elif facts.exists and not facts.empty:
        out.append(Verdict(REFUSE, f"target directory {req.dest} is not empty (choose an empty or new directory)"))
    if req.port is not None and facts.port_in_use and not req.in_place:
        out.append(Verdict(REFUSE, f"port {req.port} is in use (choose another with --port)"))
    if backup is not None:
        out += space_verdicts(req, backup, backup.size, facts)
    return out


def space_verdicts(req: Request, backup: BackupInfo, size: int, facts: DestFacts) -> list[Verdict]:
    """Room for the ``size`` bytes of the backup that land in the destination's filesystem (in place, the old
    directory is moved aside on the same filesystem and keeps its space)."""
    if facts.free_bytes is None:
        return []
    needed = int(size * SPACE_MARGIN)
    where = facts.real_path if facts.real_path and facts.real_path != req.dest else req.dest
    floor = (f" and {human_bytes(facts.floor_bytes)} must stay free (the scratch area shares a filesystem with "
             "production: drill.space_floor)") if facts.floor_bytes else ""
    if facts.free_bytes >= needed + facts.floor_bytes:
        return []
    return [Verdict(REFUSE, f"not enough space for {where}: backup {backup.label} needs {human_bytes(needed)} "
                            f"(size + 10%){floor}, {human_bytes(facts.free_bytes)} free")]


