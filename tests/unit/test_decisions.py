"""Pure decisions: backup age against the schedule, overdue jobs, catch-up, setup changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opsd.actions.backup.setup import desired_settings
from opsd.actions.checks import backup_age_results, judge_endpoint
from opsd.actions.status import is_overdue
from opsd.adapters.pgbackrest import parse_info
from opsd.core.records.checks import CRITICAL, OK, WARNING
from opsd.core.records.jobs import EndpointProbe
from opsd.core.records.runs import Run
from opsd.core.schedule import parse_schedule
from opsd.daemon.service import catch_up_needed
from opsd.errors import OpsdError
from tests.fakes import FakeRunner

DATA = Path(__file__).resolve().parents[1] / "data"
INFO = (DATA / "info_three_backups.json").read_text()
# the sample's newest full stopped at 1795628030 = 2026-11-25 17:33:50 UTC
FULL_STOP = datetime.fromtimestamp(1795628030, UTC)


def _info_for(stanza: str) -> str:
    data = json.loads(INFO)
    data[0]["name"] = stanza
    return json.dumps(data)


def test_backup_age_fresh_and_overdue(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx = fake_ctx(schedule={"full": "0 1 * * *", "diff": "0 13 * * *", "incr": ""})
    [st] = parse_info(INFO)
    fresh = {r.name: r for r in backup_age_results(ctx, st, FULL_STOP + timedelta(hours=5))}
    assert set(fresh) == {"backup.full.age", "backup.diff.age"}
    assert fresh["backup.full.age"].status == OK
    late = {r.name: r for r in backup_age_results(ctx, st, FULL_STOP + timedelta(days=1, hours=3))}
    assert late["backup.full.age"].status == CRITICAL  # period 1d + grace 2h exceeded
    assert "overdue" in late["backup.full.age"].message


def test_no_backup_at_all_is_critical(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx = fake_ctx(schedule={"full": "0 1 * * *", "diff": ""})
    [st] = parse_info('[{"archive":[],"backup":[],"name":"main","repo":[],"status":{"code":2,"message":"no valid"}}]')
    [r] = backup_age_results(ctx, st, FULL_STOP)
    assert r.status == CRITICAL and "no full backup" in r.message


def _run(started: datetime, outcome: str = "ok") -> Run:
    return Run(1, "backup-full", "schedule", "h", 1, started, started + timedelta(minutes=5), outcome, None, {})


def test_overdue_cron() -> None:
    sched = parse_schedule("0 1 * * *")
    assert sched is not None
    now = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
    assert is_overdue(sched, _run(datetime(2026, 11, 25, 1, 0, 2, tzinfo=UTC)), now, timedelta(hours=2))[0] is False
    assert is_overdue(sched, _run(datetime(2026, 11, 24, 1, 0, tzinfo=UTC)), now, timedelta(hours=2))[0] is True
    # still within grace after the due time: not overdue yet
    assert is_overdue(sched, None, datetime(2026, 11, 25, 1, 30, tzinfo=UTC), timedelta(hours=2))[0] is False


def test_overdue_interval() -> None:
    sched = parse_schedule("30s")
    assert sched is not None
    now = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
    assert is_overdue(sched, _run(now - timedelta(seconds=40)), now, timedelta(minutes=1))[0] is False
    assert is_overdue(sched, _run(now - timedelta(minutes=5)), now, timedelta(minutes=1))[0] is True


def test_catch_up_when_the_repository_has_no_full_since_the_due_time(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    runner = FakeRunner(answers={"info": (0, _info_for("main"), "")})
    ctx = fake_ctx(runner, schedule={"full": "0 1 * * *"})
    needed, why = catch_up_needed(ctx, FULL_STOP + timedelta(days=2))
    assert needed and "was due" in why
    needed, why = catch_up_needed(ctx, FULL_STOP + timedelta(hours=3))  # same day, after 17:33 backup
    assert not needed


def test_catch_up_falls_back_to_history_when_the_repository_is_unreachable(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    runner = FakeRunner(answers={"info": (0, '[{"name":"main","status":{"code":99,"message":"other"}}]', "")})
    ctx = fake_ctx(runner, schedule={"full": "0 1 * * *"})
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert catch_up_needed(ctx, now)[0] is True
    ctx.history.record("backup-full", "schedule", now.replace(hour=1), now.replace(hour=1, minute=10), "ok")
    needed, why = catch_up_needed(ctx, now)
    assert not needed and "history" in why


def test_catch_up_disabled(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx = fake_ctx(schedule={"full": "0 1 * * *", "catch_up_full": False})
    assert catch_up_needed(ctx, datetime(2026, 11, 25, 12, 0, tzinfo=UTC))[0] is False
    assert ctx.runner.calls == []


CMD = "pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=main archive-push %p"


def test_setup_changes_only_what_is_wrong() -> None:
    fresh = {"archive_mode": "off", "archive_command": "(disabled)", "wal_level": "replica"}
    assert desired_settings(fresh, CMD, "main", False) == {"archive_mode": "on", "archive_command": CMD}
    done = {"archive_mode": "on", "archive_command": CMD, "wal_level": "replica"}
    assert desired_settings(done, CMD, "main", False) == {}
    minimal = {**done, "wal_level": "minimal"}
    assert desired_settings(minimal, CMD, "main", False) == {"wal_level": "replica"}
    # a restart-pending setting is not set again
    assert desired_settings(fresh, CMD, "main", False, frozenset({"archive_mode"})) == {"archive_command": CMD}


def test_setup_never_replaces_a_foreign_archive_command_unless_asked() -> None:
    foreign = {"archive_mode": "on", "archive_command": "cp %p /mnt/archive/%f", "wal_level": "replica"}
    with pytest.raises(OpsdError, match="does not push to pgBackRest"):
        desired_settings(foreign, CMD, "main", False)
    assert desired_settings(foreign, CMD, "main", True) == {"archive_command": CMD}


def _probe(failed: dict[str, int], median: float = 0.02) -> EndpointProbe:
    return EndpointProbe(endpoint="https://s3:9000", requests=10, failed=sum(failed.values()), errors=failed,
                         median_latency=median, max_latency=median * 2)


@pytest.mark.parametrize(("errors", "median", "status", "words"), [
    ({}, 0.02, OK, "10 requests, median 20 ms"),
    ({}, 1.5, WARNING, "slow: median 1500 ms over 10 requests (warning above 1000 ms)"),
    ({"503 SlowDown": 3}, 0.02, WARNING, "degraded: 3 of 10 requests failed (503 SlowDown x3)"),
    ({"503 SlowDown": 7, "500 InternalError": 3}, 0.02, CRITICAL, "all 10 requests failed (503 SlowDown x7, 500"),
    ({"403 AccessDenied": 10}, 0.02, WARNING, "refused the probe's login (403 AccessDenied x10)"),
    ({"EndpointConnectionError": 10}, 0.0, CRITICAL, "all 10 requests failed (EndpointConnectionError x10)"),
])
def test_the_s3_probe_judged(errors: dict[str, int], median: float, status: str, words: str) -> None:
    res = judge_endpoint(_probe(errors, median), latency_limit=1.0)
    assert (res.status, res.name) == (status, "repository.endpoint")
    assert words in res.message and "https://s3:9000" in res.message
