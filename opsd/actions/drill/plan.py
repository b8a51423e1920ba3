"""Pure decisions of a recovery drill: which target time, which stanza next, what the marker rows prove, and
how the measured RTO/RPO compare with their targets. No I/O here: the drill action gathers the facts."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import JsonValue

from opsd.actions.restore.window import Window
from opsd.adapters.pgbackrest import StanzaInfo
from opsd.core.records.checks import CRITICAL, OK, SKIPPED, WARNING, CheckResult
from opsd.core.records.drill import DrillResult
from opsd.core.records.runs import Run
from opsd.core.timeparse import show
from opsd.core.units import format_duration
from opsd.db.queries import HeartbeatRow

BORDERLINE = timedelta(seconds=1)  # a row written this close before T may commit after T: not counted either way
MIN_HEARTBEAT = timedelta(seconds=1)


@dataclass(frozen=True)
class Target:
    time: datetime
    mode: str  # latest | random | given
    why: str


def pick_target(mode: str, window: Window, info: StanzaInfo, *, heartbeat: timedelta, rng: random.Random,
                given: datetime | None = None) -> Target | None:
    """``latest``: the last commit in the archived WAL. ``random``: uniform over the newest timeline's
    recoverable interval, but at least one heartbeat after the stop of the backup that will be used (so WAL
    replay always has marker rows to prove). None when there is no recoverable window."""
    if mode == "given":
        assert given is not None
        return Target(given, "given", "asked for")
    latest = window.latest
    if latest is None:
        return None
    if mode == "latest":
        return Target(latest.time, "latest", f"latest recoverable time ({latest.source})")
    interval = next(i for i in window.intervals if i.latest == latest)
    step = max(heartbeat, MIN_HEARTBEAT)
    stops = sorted(b.stop for b in info.backups if b.label in interval.backups)
    spans: list[tuple[datetime, datetime]] = []
    for i, stop in enumerate(stops):
        lo = max(stop + step, interval.earliest.time)
        hi = min(stops[i + 1] if i + 1 < len(stops) else interval.latest.time, interval.latest.time)
        if hi > lo:
            spans.append((lo, hi))
    total = sum((hi - lo).total_seconds() for lo, hi in spans)
    if total <= 0:
        return Target(latest.time, "random", "window shorter than one heartbeat after the newest backup: "
                                             "using the latest recoverable time")
    x = rng.uniform(0, total)
    for lo, hi in spans:
        length = (hi - lo).total_seconds()
        if x <= length:
            return Target(lo + timedelta(seconds=x), "random",
                          f"uniform in {show(interval.earliest.time)} .. {show(interval.latest.time)} "
                          f"(timeline {interval.timeline}), one heartbeat after a backup's end")
        x -= length
    return Target(spans[-1][1], "random", "end of the recoverable interval")  # float rounding only


def pick_stanza(stanzas: Sequence[str], drills: Sequence[Run]) -> str:
    """Rotation on a drill host: the stanza whose last drill started longest ago (never drilled first)."""
    last: dict[str, datetime] = {}
    for r in drills:
        d = r.details_as(DrillResult)
        st = d.stanza if d is not None else ""
        if st in stanzas and (st not in last or r.started_at > last[st]):
            last[st] = r.started_at
    never = [s for s in stanzas if s not in last]
    if never:
        return never[0]
    return min(stanzas, key=lambda s: last[s])


def judge_heartbeats(restored: Sequence[HeartbeatRow] | None, primary: Sequence[HeartbeatRow] | None,
                     target: datetime, since: datetime, interval: timedelta) -> CheckResult:
    """What the marker rows prove. ``restored``: rows in the restored copy written at or after ``since`` (the
    chosen backup's start), None when it has no heartbeat table. ``primary``: the same rows read from the
    live primary (None on a drill host or when it is unreachable)."""
    name = "heartbeat"
    if restored is None:
        return CheckResult(name, WARNING, "no opsd.heartbeat table in the restored copy (run 'opsd setup' on the "
                                          "primary): marker rows cannot prove the data at the target")
    after = [r for r in restored if r.written_at > target]
    upto = [r for r in restored if r.written_at <= target]
    details: dict[str, JsonValue] = {"restored_rows": len(upto), "rows_after_target": len(after),
                                  "newest_row": show(max(r.written_at for r in upto)) if upto else None}
    if after:
        first = min(after, key=lambda r: r.written_at)
        return CheckResult(name, CRITICAL, f"{len(after)} marker row(s) written after the target exist (first id "
                                           f"{first.id} at {show(first.written_at)}): recovery went past T", details)
    if primary is not None:
        return _against_primary(restored, primary, target, since, details=details)
    return _restored_only(upto, target, interval, details)


def _against_primary(restored: Sequence[HeartbeatRow], primary: Sequence[HeartbeatRow], target: datetime,
                     since: datetime, *, details: dict[str, JsonValue]) -> CheckResult:
    """Every row the primary wrote between the backup's start and T must be in the copy."""
    name = "heartbeat"
    upto = [r for r in restored if r.written_at <= target]
    have = {r.id for r in restored}
    expected = [r for r in primary if since <= r.written_at <= target - BORDERLINE]
    missing = [r for r in expected if r.id not in have]
    details.update(expected_rows=len(expected), missing_rows=len(missing), compared_with="primary")
    if missing:
        first = min(missing, key=lambda r: r.written_at)
        return CheckResult(name, CRITICAL, f"{len(missing)} of {len(expected)} marker row(s) written at or "
                                           f"before the target are missing (first id {first.id} at "
                                           f"{show(first.written_at)})", details)
    gap = target - max((r.written_at for r in upto), default=since)
    return CheckResult(name, OK, f"all {len(expected)} marker row(s) since the backup's start and up to the "
                                 f"target are present, none after it (newest {format_duration(gap)} before T)",
                       details)


def _restored_only(upto: Sequence[HeartbeatRow], target: datetime, interval: timedelta,
                   details: dict[str, JsonValue]) -> CheckResult:
    """No primary to compare with (a drill host): the rows must reach close to T, without holes."""
    name = "heartbeat"
    details["compared_with"] = "restored copy only (no primary)"
    if not upto:
        return CheckResult(name, WARNING, "no marker row between the backup's start and the target "
                                          "(is the heartbeat job running on the primary?)", details)
    gap = target - max(r.written_at for r in upto)
    ids = sorted(r.id for r in upto)
    holes = sum(b - a - 1 for a, b in itertools.pairwise(ids) if b - a > 1)
    details.update(id_holes=holes, newest_gap_seconds=gap.total_seconds())
    if interval > timedelta(0) and gap > 2 * interval + BORDERLINE:
        return CheckResult(name, WARNING, f"newest marker row is {format_duration(gap)} before the target (heartbeat "
                                          f"every {format_duration(interval)}): was the heartbeat job stopped?",
                           details)
    return CheckResult(name, OK, f"{len(upto)} marker row(s) up to the target, newest {format_duration(gap)} before "
                                 f"T, none after it" + (f"; {holes} id(s) skipped" if holes else ""), details)


def judge_recovery_point(last_replayed: datetime | None, target: datetime, interval: timedelta) -> CheckResult:
    """Recovery must stop at or before T; a last replayed commit far before T means WAL ran out early."""
    name = "recovery.target"
    if last_replayed is None:
        return CheckResult(name, WARNING, "no transaction was replayed (no commit between the backup and T)")
    details: dict[str, JsonValue] = {"last_replayed": show(last_replayed), "target": show(target),
               "gap_seconds": (target - last_replayed).total_seconds()}
    if last_replayed > target:
        return CheckResult(name, CRITICAL, f"last replayed commit {show(last_replayed)} is after the target "
                                           f"{show(target)}", details)
    gap = target - last_replayed
    if interval > timedelta(0) and gap > 2 * interval + BORDERLINE:
        return CheckResult(name, WARNING, f"last replayed commit is {format_duration(gap)} before the target: "
                                          "fine on an idle database, suspicious with heartbeats on", details)
    return CheckResult(name, OK, f"last replayed commit {show(last_replayed)}, {format_duration(gap)} before T",
                       details)


def judge_objective(name: str, measured: float | None, target: timedelta, what: str) -> CheckResult:
    if measured is None:
        return CheckResult(name, SKIPPED, f"{what} not measured")
    status = OK if measured <= target.total_seconds() else WARNING
    word = "within" if status == OK else "over"
    return CheckResult(name, status, f"{what} {format_duration(measured)}, {word} the target "
                                     f"{format_duration(target)}", {"seconds": measured,
                                                                     "target_seconds": target.total_seconds()})
