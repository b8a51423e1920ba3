"""A history that cannot be written never stops a job (issue 14, item 1): the job runs, the failure is an error
line and an alert (whose state does not live in the broken file), the run is kept in the pending journal and
written into the history by the next run that can; a replaced or deleted file is reopened with its schema."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from opsd.actions import alerts
from opsd.actions.jobs import JobOutcome, run_job
from opsd.adapters.stores.runs import History
from opsd.core.records.jobs import BackupResult
from opsd.core.records.runs import Outcome
from opsd.errors import OpsdError
from opsd_sandbox import records

T0 = datetime(2026, 11, 30, 1, tzinfo=UTC)


def _ctx(fake_ctx: Any, url: str | None = None) -> Any:
    ctx = fake_ctx(alerts={"webhook_url": url, "retries": 1} if url else {})
    ctx.now = lambda: T0
    return ctx


def _damage(path: Path) -> None:
    path.write_bytes(os.urandom(8192))  # not a SQLite file any more


def _backup() -> JobOutcome:
    return JobOutcome(Outcome.OK, "backup done", records.backup(10, 5.0, label="20261130-010000F"))


def test_a_damaged_history_never_stops_a_job_and_the_run_arrives_later(fake_ctx, hook) -> None:  # type: ignore[no-untyped-def]
    url, got = hook
    ctx = _ctx(fake_ctx, url)
    run_job(ctx, "check", "cli", lambda: JobOutcome(Outcome.OK, "fine", records.archiver_check(0.0, 0)))
    _damage(ctx.history.path)
    ran = []

    def body() -> JobOutcome:
        ran.append(1)
        return _backup()

    out = run_job(ctx, "backup-full", "schedule", body)
    assert ran == [1] and out.outcome == Outcome.OK  # the backup ran
    assert ctx.history.db.problem is not None and "is damaged" in ctx.history.db.problem
    assert [(g["alert"]["key"], g["alert"]["status"]) for g in got] == [("history.unwritable", "firing")]
    kept = [json.loads(line) for line in ctx.history.journal.path.read_text().splitlines()]
    assert [(k["job"], k["outcome"], k["kind"]) for k in kept] == [("backup-full", "ok", "backup")]
    with pytest.raises(OpsdError, match=r"run history .*history.sqlite3 is damaged"):
        ctx.history.runs()
    # the DBA moves the damaged file aside: the next run writes the kept one and clears the alarm
    shutil.move(ctx.history.path, f"{ctx.history.path}.damaged")
    run_job(ctx, "check", "cli", lambda: JobOutcome(Outcome.OK, "fine", records.archiver_check(0.0, 0)))
    runs = {r.job: r for r in ctx.history.runs()}
    assert sorted((r.job, r.trigger, r.outcome) for r in runs.values()) == [("backup-full", "schedule", "ok"),
                                                                           ("check", "cli", "ok")]
    b = runs["backup-full"].details_as(BackupResult)
    assert b is not None and b.label == "20261130-010000F" and runs["backup-full"].started_at == T0
    assert not ctx.history.journal.path.exists() and ctx.history.db.problem is None
    assert got[-1]["alert"]["key"] == "history.unwritable" and got[-1]["alert"]["status"] == "resolved"


def test_a_replaced_or_deleted_history_file_is_reopened_with_its_schema(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(fake_ctx)
    run_job(ctx, "backup-full", "cli", _backup)
    ctx.history.path.unlink()  # deleted under a running daemon: "no such table: runs" before
    for suffix in ("-wal", "-shm"):
        Path(f"{ctx.history.path}{suffix}").unlink(missing_ok=True)
    run_job(ctx, "backup-full", "cli", _backup)
    assert len(ctx.history.runs()) == 1 and ctx.history.db.problem is None
    fresh = ctx.history.path.with_name("other.sqlite3")
    History(fresh.parent / "elsewhere", ctx.history.owner).record("check", "cli", T0, T0, "ok")
    os.replace(fresh.parent / "elsewhere" / "history.sqlite3", ctx.history.path)  # replaced by another file
    run_job(ctx, "backup-diff", "cli", _backup)
    assert [r.job for r in ctx.history.runs()] == ["backup-diff", "check"]


def test_alerts_work_while_their_store_is_damaged(fake_ctx, hook) -> None:  # type: ignore[no-untyped-def]
    url, got = hook
    ctx = _ctx(fake_ctx, url)
    alerts.firing(ctx)  # the file exists
    _damage(ctx.history.path)
    assert alerts.fire(ctx, "job.backup-full", "backup failed") is True
    assert alerts.fire(ctx, "job.backup-full", "backup failed") is False  # deduplicated, in memory
    assert alerts.firing(ctx) == ["job.backup-full"]
    assert alerts.resolve(ctx, "job.backup-full") is True
    assert [g["alert"]["status"] for g in got] == ["firing", "resolved"]


def test_check_reports_an_unwritable_history_as_critical(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    from opsd.actions.checks import history_results

    ctx = _ctx(fake_ctx)
    assert [r.status for r in history_results(ctx)][:1] == ["ok"]
    _damage(ctx.history.path)
    [res] = history_results(ctx)
    assert res.name == "history" and res.status == "critical" and "is damaged" in res.message
