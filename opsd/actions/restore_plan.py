"""The restore plan: which backup set and why, how much WAL, where to, how long, and verdicts.

Pure: it decides from the repository's facts (info, window), the destination's facts (gathered by the
caller through adapters) and measured history. A plan with a ``refuse`` verdict is never executed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from opsd.actions.backup import human_bytes
from opsd.actions.window import Interval, Window
from opsd.adapters.pgbackrest import BackupInfo, StanzaInfo
from opsd.history import Run
from opsd.schedule import format_duration
from opsd.timeparse import show
from opsd.wal import SEGMENT_BYTES, Segment, parse_segment

OK, WARN, REFUSE = "ok", "warning", "refuse"
SPACE_MARGIN = 1.10


@dataclass(frozen=True)
class Request:
    target_type: str  # time | lsn | xid | immediate
    target_time: datetime | None = None
    target_value: str | None = None  # lsn or xid
    set_label: str | None = None
    target_timeline: str | None = None
    dest: Path = Path()
    port: int | None = None
    in_place: bool = False
    delta: bool = False
    start: bool = False
    pause: bool = False


@dataclass(frozen=True)
class DestFacts:
    """Gathered by adapters before planning."""

    exists: bool
    empty: bool
    free_bytes: int | None
    port_in_use: bool = False
    cluster_running: bool = False


@dataclass(frozen=True)
class Verdict:
    level: str
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
    # PostgreSQL stops a time target only at a later commit: a target at (or after) the last archived commit is
    # recovered as "to the end of the archived WAL" instead, which ends at that same commit.
    to_end: bool = False

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


def lsn_to_int(lsn: str) -> int:
    hi, lo = lsn.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


def _choose(req: Request, info: StanzaInfo, w: Window) -> tuple[BackupInfo | None, str, list[Verdict]]:
    usable = {label for i in w.intervals for label in i.backups}
    backups = [b for b in info.backups if b.label in usable]
    if req.set_label:
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
    if not backups:
        return None, "", [Verdict(REFUSE, "no usable backup in the repository")]
    if req.target_type == "time" and req.target_time is not None:
        before = [b for b in backups if b.stop <= req.target_time]
        if not before:
            return None, "", []  # the window verdict says why
        b = max(before, key=lambda x: x.stop)
        return b, f"newest backup that ended before the target (ended {show(b.stop)})", []
    if req.target_type == "lsn" and req.target_value:
        target = lsn_to_int(req.target_value)
        before = [b for b in backups if b.lsn_stop and lsn_to_int(b.lsn_stop) <= target]
        if not before:
            return None, "", [Verdict(REFUSE, f"no backup ended before LSN {req.target_value}")]
        b = max(before, key=lambda x: lsn_to_int(x.lsn_stop or "0/0"))
        return b, f"newest backup that ended before LSN {req.target_value} (stop LSN {b.lsn_stop})", []
    b = max(backups, key=lambda x: x.stop)
    why = {"immediate": "newest backup; recovery stops as soon as it is consistent",
           "xid": "newest backup (pgBackRest cannot tell where an xid lies; an xid older than it is not reachable)"}
    return b, why.get(req.target_type, "newest backup"), []


def _wal_end(req: Request, b: BackupInfo, w: Window) -> Segment | None:
    start = parse_segment(b.wal_start or "")
    stop = parse_segment(b.wal_stop or "")
    if start is None or stop is None:
        return None
    run = w.run_of(start)
    if req.target_type == "immediate" or run is None:
        return stop
    if req.target_type == "lsn" and req.target_value:
        return Segment(stop.timeline, max(stop.segno, lsn_to_int(req.target_value) // SEGMENT_BYTES))
    last = run.last.segment
    if req.target_type == "time" and req.target_time is not None:
        # the first segment archived at or after T holds T (a segment is archived once it is full or switched)
        later = [a for a in w.segments if run.contains(a.segment) and a.segment.segno >= stop.segno
                 and a.archived_at >= req.target_time]
        if later:
            return min(later, key=lambda a: a.segment.segno).segment
    return last


def estimate(backup: BackupInfo, wal_bytes: int, history: list[Run]) -> tuple[float | None, str]:
    """From measured restores: restore bytes/s and WAL replay bytes/s of the last successful ones."""
    ok = [r.details for r in history if r.outcome == "ok" and r.details.get("restore_rate")]
    if not ok:
        return None, "no measured restore yet"
    restore_rate = sum(float(d["restore_rate"]) for d in ok) / len(ok)
    replays = [float(d["replay_rate"]) for d in ok if d.get("replay_rate")]
    replay_rate = sum(replays) / len(replays) if replays else None
    secs = backup.size / restore_rate + (wal_bytes / replay_rate if replay_rate else 0)
    return secs, f"mean of {len(ok)} measured restore(s): {human_bytes(restore_rate)}/s restore" + (
        f", {human_bytes(replay_rate)}/s replay" if replay_rate else "")


def make_plan(req: Request, info: StanzaInfo, w: Window, facts: DestFacts, history: list[Run]) -> Plan:
    backup, why, verdicts = _choose(req, info, w)
    interval = None
    to_end = False
    if req.target_type == "time" and req.target_time is not None:
        interval = w.covering(req.target_time)
        if interval is None:
            earliest, latest = w.earliest, w.latest
            where = "outside"
            if earliest and req.target_time < earliest.time:
                where = f"before the earliest recoverable time ({show(earliest.time)}, {earliest.source})"
            elif latest and req.target_time > latest.time:
                where = f"after the latest recoverable time ({show(latest.time)}, {latest.source})"
            verdicts.append(Verdict(REFUSE, f"target {show(req.target_time)} is {where}; window: {window_text(w)}"))
        latest = w.latest
        to_end = bool(interval and latest and interval.latest == latest and req.target_time >= latest.time)
        if to_end and latest:
            verdicts.append(Verdict(WARN, f"target is at the last archived commit ({show(latest.time)}): recovering "
                                          "to the end of the archived WAL, which ends there"
                                          + (" (then promoted: there is nothing left to pause before)"
                                             if req.pause else "")))
        if backup and backup.start <= req.target_time < backup.stop:
            verdicts.append(Verdict(WARN, f"target falls inside backup {backup.label} ({show(backup.start)} .. "
                                          f"{show(backup.stop)}): the database is not consistent before its end"))
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
    if not any(v.level in (WARN, REFUSE) for v in verdicts):
        verdicts.append(Verdict(OK, "all preflight checks passed"))
    return Plan(req, backup, why, wal_from, wal_to, segments, est, source, verdicts, interval, to_end)


def _dest_verdicts(req: Request, backup: BackupInfo | None, facts: DestFacts) -> list[Verdict]:
    out = []
    if req.in_place:
        if facts.cluster_running:
            out.append(Verdict(REFUSE, f"PostgreSQL is running in {req.dest}: stop it first "
                                       "(e.g. 'pg_ctlcluster 15 main stop' or 'systemctl stop postgresql@15-main')"))
    elif facts.exists and not facts.empty:
        out.append(Verdict(REFUSE, f"target directory {req.dest} is not empty (choose an empty or new directory)"))
    if req.port is not None and facts.port_in_use and not req.in_place:
        out.append(Verdict(REFUSE, f"port {req.port} is in use (choose another with --port)"))
    if backup is not None and facts.free_bytes is not None:
        # in place, the old directory is moved aside on the same filesystem and keeps its space
        needed = int(backup.size * SPACE_MARGIN)
        if facts.free_bytes < needed:
            out.append(Verdict(REFUSE, f"not enough space for {req.dest}: backup {backup.label} needs "
                                       f"{human_bytes(needed)} (size + 10%), {human_bytes(facts.free_bytes)} free"))
    return out


def describe(plan: Plan) -> dict[str, object]:
    """The plan as plain data (JSON and console both render this)."""
    r = plan.request
    target = (show(r.target_time) if r.target_time else r.target_value) or "end of backup (consistent)"
    return {
        "target": {"type": r.target_type, "value": target, "timeline": r.target_timeline or "latest"},
        "backup": plan.backup.label if plan.backup else None,
        "backup_type": plan.backup.type if plan.backup else None,
        "backup_size": plan.backup.size if plan.backup else None,
        "why": plan.why,
        "wal": {"from": plan.wal_from, "to": plan.wal_to, "segments": plan.wal_segments,
                "bytes": plan.wal_bytes},
        "estimate_seconds": plan.estimate_seconds,
        "estimate": (format_duration(plan.estimate_seconds) if plan.estimate_seconds is not None else None),
        "estimate_source": plan.estimate_source,
        "destination": {"path": str(r.dest), "port": r.port, "in_place": r.in_place, "delta": r.delta,
                        "archive_mode": "preserve" if r.in_place else "off"},
        "recovery": "to the end of the archived WAL" if plan.to_end else "to the target",
        "verdicts": [{"level": v.level, "message": v.message} for v in plan.verdicts],
        "refused": plan.refused,
    }
