"""The monthly report's action items (pure): what a DBA lead should do about this month's drills, backups and
health, each one line naming the figure behind it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsd.settings import Settings

if TYPE_CHECKING:
    from opsd.actions.report.rows import BackupSection, DrillRow, HealthSummary, MonthVerdict

GROWTH_ALERT = 0.20  # RTO growth month over month that becomes an action item


def days(secs: float) -> str:
    return f"{secs / 86400:.1f} days" if secs >= 86400 else f"{secs / 3600:.1f} hours"


def _drill_actions(v: MonthVerdict, drills: list[DrillRow], prev_rto_median: float | None) -> list[str]:
    out = []
    if v.drills_run == 0:
        out.append("No recovery drill ran this month: check [schedule] drill and run 'opsd drill run'.")
    if v.longest_unproven:
        out.append(f"No passing drill for {days(v.longest_unproven)} (max age {days(v.max_age)}): restorability "
                   "was unproven for that long.")
    out += [f"Drill #{d.id} ({d.started_at:%Y-%m-%d}) failed: {(d.failure or 'unknown')[:200]}"
            for d in drills if not d.passed]
    if v.rto_median is not None and prev_rto_median:
        growth = (v.rto_median - prev_rto_median) / prev_rto_median
        if growth >= GROWTH_ALERT:
            out.append(f"RTO grew {growth:.0%} since last month (median {v.rto_median:.0f}s, was "
                       f"{prev_rto_median:.0f}s): plan for the larger database or faster restores.")
    if v.rto_worst is not None and v.rto_worst > v.rto_target:
        out.append(f"Worst RTO {v.rto_worst:.0f}s is over the target {v.rto_target:.0f}s.")
    if v.rpo_worst is not None and v.rpo_worst > v.rpo_target:
        out.append(f"Worst RPO exposure {v.rpo_worst:.0f}s is over the target {v.rpo_target:.0f}s: WAL reaches the "
                   "repository too rarely (set archive_timeout, check archiving).")
    return out


def _backup_actions(s: Settings, b: BackupSection) -> list[str]:
    out = []
    failed_backups = sum(t.failed for t in b.by_type)
    if failed_backups:
        out.append(f"{failed_backups} backup(s) failed this month: see 'Backups and WAL'.")
    late = [n for n in b.nights if n["margin"] is None or n["margin"] < 0]
    if late:
        out.append(f"{len(late)} full backup(s) ended after the backup window {b.backup_window} closed (or started "
                   "outside it): see 'Full backups and the backup window'; raise process-max, move fulls to the "
                   "weekend with diffs on weeknights, or widen the window.")
    if b.verify_runs == 0:
        out.append("No 'pgbackrest verify' ran this month: check [schedule] verify.")
    if b.verify_failed:
        out.append(f"{b.verify_failed} verify run(s) found damage in the repository: take a new full backup and "
                   "find the cause (storage, lifecycle rules).")
    lag_limit = s.check.max_ready_age.total_seconds()
    if b.longest_archive_lag is not None and b.longest_archive_lag > lag_limit:
        out.append(f"WAL waited up to {b.longest_archive_lag / 60:.0f} min to be archived (limit "
                   f"{lag_limit / 60:.0f} min): RPO exposure.")
    keep = b.window["retention_full"] if b.window else None
    if b.window and keep and b.window["full_backups"] < keep:
        out.append(f"Only {b.window['full_backups']} full backup(s) in the repository, retention asks for "
                   f"{keep}.")
    return out


def _health_actions(h: HealthSummary) -> list[str]:
    out = []
    for blk in h.top_blockers:
        if blk["incidents"] >= 3:
            idle = f", {blk['idle_in_transaction']} idle in transaction" if blk["idle_in_transaction"] else ""
            out.append(f"{blk['who']} was the root blocker of {blk['incidents']} lock incidents{idle}: "
                       "look at its transaction handling.")
    out += [f"PgBouncer pool {p['pool']} had clients waiting up to {p['peak_maxwait']:.0f}s "
            f"({p['incidents']} incident(s)): pool_size or query time." for p in h.pool_peaks]
    return out


def action_items(s: Settings, v: MonthVerdict, drills: list[DrillRow], prev_rto_median: float | None, *,
                 b: BackupSection, h: HealthSummary) -> list[str]:
    if not v.has_data:
        return ["No data for this month: check that the opsd daemon runs (systemctl status opsd) and that its "
                "history is the one this report read."]
    return [*_drill_actions(v, drills, prev_rto_median), *_backup_actions(s, b), *_health_actions(h)]
