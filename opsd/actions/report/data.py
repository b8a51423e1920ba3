"""The monthly report's figures (pure): verdict, drills, backups and WAL, verify, health, trends and action
items, computed from the run history, health incidents and samples, and the repository's state. Renderers
(Markdown, HTML, JSON) only format what is here; JSON carries all of it."""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from opsd.actions.report.items import action_items, days
from opsd.actions.report.rows import (
    BackupFailure,
    BackupSection,
    BackupTypeStats,
    Blocker,
    DrillRow,
    HealthSummary,
    LockWait,
    MonthReport,
    MonthVerdict,
    PoolPeak,
    RehearsalRow,
    RepoFacts,
    RepoWindow,
    Series,
    SlotPeak,
    VerifyDamage,
    WindowNight,
)
from opsd.core.records.checks import CRITICAL
from opsd.core.records.drill import DrillResult
from opsd.core.records.health import HealthSample, LockTree
from opsd.core.records.jobs import BackupResult, CheckReport, VerifyResult
from opsd.core.records.rehearse import RehearsalResult
from opsd.core.records.runs import Incident, Run
from opsd.errors import UsageError
from opsd.settings import Settings


def month_bounds(year: int, month: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=tz)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
    return start, end


def parse_month(text: str) -> tuple[int, int]:
    """``YYYY-MM`` as (year, month); UsageError otherwise (``opsd report`` and ``opsd fleet report``)."""
    m = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise UsageError(f"invalid month {text!r}: use YYYY-MM, e.g. 2026-10")
    return int(m.group(1)), int(m.group(2))


def previous_month(now: datetime) -> tuple[int, int]:
    return (now.year - 1, 12) if now.month == 1 else (now.year, now.month - 1)


def _drill_row(r: Run) -> DrillRow:
    d = r.details_as(DrillResult) or DrillResult(stanza="", target_mode="")  # failed before it had a result
    ph = d.phases
    failure = "; ".join(f"{c.name}: {c.message}" for c in d.failed) if d.failed else (
        r.error if r.outcome != "ok" else None)
    row = DrillRow(
        id=r.id, started_at=r.started_at, host=r.host, stanza=d.stanza, passed=r.outcome == "ok", target=d.target,
        target_mode=d.target_mode or None, backup=d.backup, rto=d.rto_seconds,
        restore_seconds=ph.restore_seconds, recovery_seconds=ph.recovery_seconds, verify_seconds=ph.verify_seconds,
        restore_rate=ph.restore_rate, replay_rate=ph.replay_rate, rpo=d.rpo_seconds,
        checks={c.name: str(c.status) for c in d.checks}, failure=failure)
    if d.databases:  # drills recorded before opsd counted relations have none
        row.checked, row.skipped = d.total("checked"), d.skipped()
        row.not_checked, row.corrupt = d.total("not_checked"), d.total("corrupt")
    return row


def _unproven(passes: Sequence[datetime], start: datetime, end: datetime, max_age: timedelta
              ) -> tuple[float, float | None]:
    """Longest stretch of [start, end) not covered by a passing drill younger than max_age; and the age of the
    last pass at ``end``. ``passes`` includes the last pass before ``start``."""
    covered_until = start
    longest = timedelta(0)
    for t in sorted(passes):
        if t + max_age <= start:
            continue
        if t > covered_until and t < end:
            longest = max(longest, t - covered_until)
        covered_until = max(covered_until, min(t + max_age, end))
    longest = max(longest, end - covered_until)
    age = (end - max(passes)).total_seconds() if passes else None
    return longest.total_seconds(), age


def _verdict(s: Settings, drills: list[DrillRow], passes: Sequence[datetime], *, start: datetime, end: datetime,
             has_data: bool) -> MonthVerdict:
    max_age = s.drill.max_age
    rtos = [d.rto for d in drills if d.passed and d.rto is not None]
    rpos = [d.rpo for d in drills if d.rpo is not None]
    longest, age = _unproven(passes, start, end, max_age)
    failed = sum(1 for d in drills if not d.passed)
    proven = longest == 0
    if not has_data:
        statement = "No data for this month: no drill, backup or check was recorded (is the daemon running?)."
    elif not drills:
        statement = "NOT PROVEN: no recovery drill ran this month."
    elif proven and not failed:
        statement = (f"Recoverable all month: {len(drills)} drill(s), all passed; a passing drill was never older "
                     f"than {days(max_age.total_seconds())}.")
    elif proven:
        statement = (f"Recoverable all month, with {failed} failed drill(s) out of {len(drills)}: see the failures "
                     "below.")
    else:
        statement = (f"NOT PROVEN for {days(longest)} of the month (no passing drill younger than "
                     f"{days(max_age.total_seconds())}); {failed} of {len(drills)} drill(s) failed.")
    if drills:
        statement += _gaps(drills)
    proven_now, unproven_now = _proven(drills)
    return MonthVerdict(
        has_data=has_data, recoverable_all_month=has_data and proven, statement=statement, drills_run=len(drills),
        drills_passed=len(drills) - failed, drills_failed=failed, rto_worst=max(rtos, default=None),
        rto_median=statistics.median(rtos) if rtos else None, rto_target=s.drill.rto_target.total_seconds(),
        rpo_worst=max(rpos, default=None), rpo_target=s.drill.rpo_target.total_seconds(),
        longest_unproven=longest if has_data else None, restorability_age_at_end=age,
        max_age=max_age.total_seconds(), relations_proven=proven_now, relations_unproven=unproven_now)


def _gaps(drills: list[DrillRow]) -> str:
    unproven = _proven(drills)[1]
    return (f" {unproven} relation(s) of the last drill are not proven (not checked or corrupt: see Recovery "
            "drills)." if unproven else "")


def _proven(drills: list[DrillRow]) -> tuple[int | None, int | None]:
    """The month's last drill with counts: a relation is proven only when it was checked; one that holds data
    and was not checked (a gap) or is corrupt is not."""
    counted = [d for d in drills if d.checked is not None]
    if not counted:
        return None, None
    last = counted[-1]
    return last.checked, (last.not_checked or 0) + (last.corrupt or 0)


def _type_stats(t: str, rs: Sequence[Run]) -> BackupTypeStats:
    ok = [(r, r.details_as(BackupResult)) for r in rs if r.outcome == "ok"]
    durs = [b.duration if b else r.duration or 0.0 for r, b in ok]
    sizes = [b.size if b else 0 for _r, b in ok]
    copied = sum((b.delta or b.size) if b else 0 for _r, b in ok)
    return BackupTypeStats(t, len(ok), sum(r.outcome == "failed" for r in rs), sum(r.outcome == "busy" for r in rs),
                           copied, max(sizes, default=0), statistics.median(durs) if durs else None,
                           max(durs, default=None))


def _archiver_results(checks: Sequence[Run]) -> tuple[list[float], list[int], int]:
    """From the check runs' archive.archiver results: the lags, the archiver's failed counts, how many critical."""
    lags: list[float] = []
    failed_counts: list[int] = []
    critical = 0
    for rep in (r.details_as(CheckReport) for r in checks):
        if rep is None:
            continue
        if rep.archiver is not None:
            lags.append(rep.archiver.oldest_ready_age or 0.0)  # nothing waiting: no lag
            failed_counts.append(rep.archiver.failed_count)
        critical += any(res.name == "archive.archiver" and res.status == CRITICAL for res in rep.results)
    return lags, failed_counts, critical


def _repo_window(repo: RepoFacts | None, end: datetime) -> RepoWindow | None:
    if repo is None:
        return None
    fulls = [b for b in repo.backups if b["type"] == "full"]
    oldest = min((b["stop"] for b in repo.backups), default=None)
    return RepoWindow(seen_at=repo.seen_at, as_of_month_end=repo.seen_at >= end, earliest_recoverable=oldest,
                      full_backups=len(fulls), retention_full=repo.retention_full, backups=len(repo.backups))


def _nights(runs: Sequence[Run], s: Settings) -> list[WindowNight]:
    """Each successful full backup against the window it started in."""
    window, tz = s.schedule.window, s.opsd.tz
    if window is None:
        return []
    out = []
    for r in sorted((r for r in runs if r.job == "backup-full" and r.outcome == "ok"), key=lambda r: r.started_at):
        started = r.started_at.astimezone(tz)
        ended = started + timedelta(seconds=r.duration or 0.0)
        occ = window.around(started, tz)
        out.append(WindowNight(started_at=started, ended_at=ended, seconds=r.duration or 0.0,
                               window_end=occ[1] if occ else None,
                               margin=(occ[1] - ended).total_seconds() if occ else None))
    return out


def _backups(runs: Sequence[Run], repo: RepoFacts | None, end: datetime) -> BackupSection:
    by: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        if r.job.startswith("backup-"):
            by[r.job.removeprefix("backup-")].append(r)
    stats = [_type_stats(t, by.get(t, [])) for t in ("full", "diff", "incr")]
    failures = [BackupFailure(started_at=r.started_at, job=r.job, error=r.error) for r in runs
                if r.job.startswith("backup-") and r.outcome == "failed"]
    checks = [r for r in runs if r.job == "check"]
    lags, failed_counts, critical = _archiver_results(checks)
    verifies = [r for r in runs if r.job == "verify"]
    damage = [VerifyDamage(started_at=r.started_at, error=r.error,
                           damaged=list(v.damaged[:5]) if (v := r.details_as(VerifyResult)) else [])
              for r in verifies if r.outcome == "failed"]
    return BackupSection(
        by_type=stats, failures=failures, archive_checks=len(checks), archive_critical=critical,
        longest_archive_lag=max(lags, default=None),
        archive_failures=(max(failed_counts) - min(failed_counts)) if failed_counts else None,
        window=_repo_window(repo, end), verify_runs=len(verifies),
        verify_failed=sum(r.outcome == "failed" for r in verifies), verify_damage=damage)


def _who(tree: LockTree | None) -> str:
    if tree is None:
        return "?@? (no application)"
    root = tree.root
    return f"{root.user or '?'}@{root.database or '?'} ({root.application or 'no application'})"


def _replication(incidents: Sequence[Incident], samples: Sequence[HealthSample]
                 ) -> tuple[int, list[SlotPeak], float | None]:
    """Slot incidents by slot (worst WAL retained), and the longest replay lag any sample saw, from either side
    (a primary's view of its standbys, a standby's own)."""
    slots: dict[str, SlotPeak] = {}
    for i in incidents:
        if i.kind == "slot":
            p = slots.setdefault(i.key, SlotPeak(slot=i.key.removeprefix("slot:"), incidents=0, peak_retained_bytes=0))
            p["incidents"] += 1
            p["peak_retained_bytes"] = max(p["peak_retained_bytes"], int(i.peak))
    lags = [x for s in samples if s.replication for x in (
        [b.replay_lag for b in s.replication.standbys]
        + [s.replication.receiver.replay_lag if s.replication.receiver else None]) if x is not None]
    return (sum(p["incidents"] for p in slots.values()),
            sorted(slots.values(), key=lambda p: -p["peak_retained_bytes"]), max(lags, default=None))


def _health(incidents: Sequence[Incident], samples: Sequence[HealthSample] = ()) -> HealthSummary:
    kinds = Counter(i.kind for i in incidents)
    locks = [i for i in incidents if i.kind == "lock"]
    blockers: dict[str, Blocker] = {}
    for i in locks:
        tree = i.worst.tree
        who = _who(tree)
        b = blockers.setdefault(who, Blocker(who=who, incidents=0, longest_wait=0.0, most_waiters=0,
                                             idle_in_transaction=0))
        b["incidents"] += 1
        b["longest_wait"] = max(b["longest_wait"], tree.longest_wait if tree else i.peak)
        b["most_waiters"] = max(b["most_waiters"], tree.waiters if tree else 0)
        b["idle_in_transaction"] += bool(tree and tree.root_idle_in_transaction)
    longest = [
        LockWait(opened_at=i.opened_at, who=_who(i.worst.tree), wait=i.peak, summary=i.summary)
        for i in sorted(locks, key=lambda i: -i.peak)[:5]]
    pools: dict[str, PoolPeak] = {}
    for i in incidents:
        if i.kind == "pool":
            p = pools.setdefault(i.key, PoolPeak(pool=i.key.removeprefix("pool:"), incidents=0, peak_maxwait=0.0))
            p["incidents"] += 1
            p["peak_maxwait"] = max(p["peak_maxwait"], i.peak)
    conn = [i.peak for i in incidents if i.kind == "connections"]
    return HealthSummary(kinds["lock"], kinds["pool"], kinds["connections"], kinds["probe"],
                         sorted(blockers.values(), key=lambda b: (-b["incidents"], -b["longest_wait"]))[:5], longest,
                         sorted(pools.values(), key=lambda p: -p["peak_maxwait"]), max(conn, default=None),
                         *_replication(incidents, samples))


def _trends(s: Settings, runs: Sequence[Run], drills: list[DrillRow],
            samples: Sequence[HealthSample]) -> dict[str, Series]:
    tz = s.opsd.tz
    rto = Series("RTO per drill", "s", [(f"#{d.id} {d.started_at.astimezone(tz):%m-%d}", float(d.rto))
                                        for d in drills if d.rto is not None], s.drill.rto_target.total_seconds())
    per_day_dur: dict[str, float] = defaultdict(float)
    per_day_size: dict[str, float] = defaultdict(float)
    for r in runs:
        if r.job.startswith("backup-") and r.outcome == "ok":
            day = f"{r.started_at.astimezone(tz):%Y-%m-%d}"
            b = r.details_as(BackupResult)
            per_day_dur[day] += b.duration if b else r.duration or 0.0
            per_day_size[day] = max(per_day_size[day], float(b.size) if b else 0.0)
    lag = [(r.started_at.astimezone(tz).isoformat(timespec="minutes"), rep.archiver.oldest_ready_age or 0.0)
           for r in runs if r.job == "check" and (rep := r.details_as(CheckReport)) and rep.archiver is not None]
    waiting = [(h.taken_at.astimezone(tz).isoformat(timespec="minutes"), float(h.pool.waiting))
               for h in samples if h.pool is not None]
    return {
        "rto": rto,
        "backup_duration": Series("Backup duration per day", "s", sorted(per_day_dur.items())),
        "backup_size": Series("Database size per day (largest backup)", "bytes", sorted(per_day_size.items())),
        "archive_lag": Series("Archive lag (oldest .ready) at each check", "s", sorted(lag),
                              s.check.max_ready_age.total_seconds()),
        "pool_waiting": Series("PgBouncer clients waiting", "clients", sorted(waiting)),
    }


def build(s: Settings, year: int, month: int, *, runs: Sequence[Run], prior_passes: Sequence[datetime],
          prev_rto_median: float | None, incidents: Sequence[Incident],
          samples: Sequence[HealthSample], repo: RepoFacts | None, now: datetime) -> MonthReport:
    """``runs``: every run that started in the month; ``prior_passes``: start times of passing drills before the
    month (the last one matters); ``incidents``: opened in the month."""
    tz = s.opsd.tz
    start, end = month_bounds(year, month, tz)
    drill_runs = sorted((r for r in runs if r.job == "drill" and r.outcome in ("ok", "failed")),
                        key=lambda r: r.started_at)
    drills = [_drill_row(r) for r in drill_runs]
    passes = [*prior_passes[-1:], *(d.started_at for d in drills if d.passed)]
    has_data = any(r.job in ("drill", "check", "verify") or r.job.startswith("backup-") for r in runs)
    verdict = _verdict(s, drills, passes, start=start, end=min(end, now), has_data=has_data)
    backups = _backups(runs, repo, end)
    backups.backup_window, backups.nights = s.schedule.backup_window or None, _nights(runs, s)
    health = _health(incidents, samples)
    report = MonthReport(
        month=f"{year:04d}-{month:02d}", timezone=str(tz), generated_at=now, period_start=start, period_end=end,
        verdict=verdict, drills=drills, backups=backups, health=health, trends=_trends(s, runs, drills, samples))
    report.actions = action_items(s, verdict, drills, prev_rto_median, b=backups, h=health)
    report.rehearsals = [r for r in map(_rehearsal_row, sorted(runs, key=lambda r: r.started_at)) if r is not None]
    return report


def _rehearsal_row(run: Run) -> RehearsalRow | None:
    r = run.details_as(RehearsalResult) if run.job == "rehearse" else None
    if r is None:
        return None
    migrate = next((p for p in r.phases if p.name == "migrate"), None)
    rollback = "none" if r.schema_diff is None else "exact" if not r.schema_diff and not any(
        (t.missing or t.extra) and not t.migration_changed for t in r.tables) else "not exact"
    return RehearsalRow(started_at=run.started_at, dbname=r.dbname, verdict=r.verdict,
                        migration_seconds=migrate.seconds if migrate else None, hazards=[h.code for h in r.hazards],
                        rollback=rollback, why=r.failures[0] if r.failures else None)
