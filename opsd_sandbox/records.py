"""Records as opsd's producers make them, for recorded months (tests, the sample report, benchmarks): the same
types the backup, check, drill and verify jobs save, so a reader tested on them reads what production writes."""

from __future__ import annotations

from opsd.core.records.checks import CRITICAL, OK, CheckResult, Status, worst
from opsd.core.records.drill import DatabaseCounts, DrillPhases, DrillResult
from opsd.core.records.health import IncidentMoment, LockNode, LockTree
from opsd.core.records.jobs import (
    ArchiverFacts,
    BackupResult,
    CheckReport,
    EndpointProbe,
    VerifyItem,
    VerifyResult,
)


def backup(size: int, duration: float, *, label: str = "20261101-010000F", type_: str = "full",
           delta: int | None = None, repo_delta: int = 0) -> BackupResult:
    return BackupResult(label=label, type=type_, requested_type=type_, size=size,
                        delta=size if delta is None else delta, repo_size=size // 4, repo_delta=repo_delta,
                        duration=duration)


def archiver_check(lag: float, failed_count: int, *, limit: float = 900.0) -> CheckReport:
    facts = ArchiverFacts(archived_count=1000, failed_count=failed_count, ready_count=1 if lag else 0,
                          oldest_ready_age=lag or None)
    results = [CheckResult("archive.archiver", CRITICAL if lag > limit else OK, "", facts.as_json())]
    probe = EndpointProbe(endpoint="https://s3.example:443", requests=5, failed=1, errors={"503 SlowDown": 1},
                          median_latency=0.02, max_latency=0.05)
    return CheckReport(results=results, worst=worst(results), archiver=facts, endpoint=probe)


def drill(stanza: str, *, rto: float, rpo: float, restore_seconds: float, recovery_seconds: float,
          checks: list[tuple[str, Status, str]], target: str | None = None, backup_label: str | None = None,
          verify_seconds: float | None = None, restore_rate: float | None = None,
          replay_rate: float | None = None, relations: int = 2300) -> DrillResult:
    """``relations``: checked in the application's database (beside a skipped unlogged table and template0)."""
    dbs = [DatabaseCounts(database="app", checked=relations, skipped={"no_storage": 140, "unlogged": 2}),
           DatabaseCounts(database="template0", refused="no_connections")]
    return DrillResult(
        stanza=stanza, target_mode="random", target=target, backup=backup_label, backup_type="full",
        phases=DrillPhases(plan_seconds=rto - restore_seconds - recovery_seconds, restore_seconds=restore_seconds,
                           recovery_seconds=recovery_seconds, verify_seconds=verify_seconds,
                           restore_rate=restore_rate, replay_rate=replay_rate),
        rto_seconds=rto, rpo_seconds=rpo, checks=[CheckResult(n, s, m) for n, s, m in checks], databases=dbs)


def verify_ok(stanza: str, label: str = "20261101-010000F") -> VerifyResult:
    return VerifyResult(stanza=stanza, status="ok", items=(
        VerifyItem(kind="archive", name="15-1", status="ok", checked=10, valid=10),
        VerifyItem(kind="backup", name=label, status="valid", checked=900, valid=900)))


def lock_moment(pid: int, *, waiters: int, longest_wait: float, user: str, database: str, application: str,
                state: str = "idle in transaction") -> IncidentMoment:
    root = LockNode(pid=pid, state=state, user=user, database=database, application=application, client="",
                    xact_age=longest_wait + 5, waiting_for=None, wait_seconds=None, holds=[], query="")
    tree = LockTree(root=root, depth=2, waiters=waiters, longest_wait=longest_wait,
                    modes=["ShareLock"], relations=["stock_levels"])
    return IncidentMoment(tree=tree, rank=(float(waiters), longest_wait))
