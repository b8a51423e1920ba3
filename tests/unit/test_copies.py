"""Copies of production, the pure parts and the record (issue 32): what a copy starts with, which of
production's preload libraries it keeps, how a recorded copy is judged (running, kept, expired, orphaned, a
reused pid), the space watcher, low priority beside production, and the record's round trip."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opsd.actions.copies import quarantine, registry, room
from opsd.adapters import pgbackrest as pb
from opsd.adapters import processes
from opsd.core.records.copies import CopyRecord, judge_copy, unrecorded

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def _rec(**kw: Any) -> CopyRecord:
    base: dict[str, Any] = {"id": "drill-main-1", "purpose": "drill", "stanza": "main",
                            "directory": "/x/scratch/drill-main-1", "port": 55499, "socket_dir": "/x/run",
                            "host": "h", "pid": 1234, "started_at": NOW - timedelta(hours=1)}
    return CopyRecord(**{**base, **kw})


def test_a_copy_starts_with_no_worker_no_standby_link_no_archive_and_no_shell_command() -> None:
    opts = " ".join(quarantine.server_options(["pg_stat_statements"]))
    for needed in ("max_logical_replication_workers=0", "primary_conninfo=''", "archive_mode=off",
                   "archive_command=''", "archive_cleanup_command=''", "recovery_end_command=''",
                   "listen_addresses=''", "session_preload_libraries=''", "local_preload_libraries=''",
                   "shared_preload_libraries='pg_stat_statements'"):
        assert f"-c {needed}" in opts, needed


def test_preload_keeps_only_the_allow_list_and_never_a_name_a_shell_would_read() -> None:
    libs = quarantine.parse_libraries('pg_stat_statements, "pg_cron",$libdir/auto_explain.so, ')
    assert libs == ["pg_stat_statements", "pg_cron", "$libdir/auto_explain.so"]
    kept, dropped = quarantine.preload(libs, ["pg_stat_statements", "auto_explain"])
    assert kept == ["pg_stat_statements", "$libdir/auto_explain.so"] and dropped == ["pg_cron"]
    kept, dropped = quarantine.preload(["pg_stat_statements';touch /tmp/x;'"], ["pg_stat_statements';touch /tmp/x;'"])
    assert kept == [] and dropped == ["pg_stat_statements';touch /tmp/x;'"]
    assert quarantine.preload([], ["pg_stat_statements"]) == ([], [])


def test_a_recorded_copy_is_judged_by_its_job_and_its_expiry() -> None:
    assert judge_copy(_rec(), True, NOW).state == "running"
    orphan = judge_copy(_rec(), False, NOW)
    assert orphan.state == "orphan" and orphan.leftover and "pid 1234" in orphan.why
    kept = _rec(kept=True, expires_at=NOW + timedelta(hours=2))
    assert judge_copy(kept, False, NOW).state == "kept" and not judge_copy(kept, False, NOW).leftover
    expired = judge_copy(kept, False, NOW + timedelta(hours=3))
    assert expired.state == "expired" and expired.leftover
    assert unrecorded("/x/scratch/drill-old").state == "orphan"


def test_a_reused_pid_is_not_the_job_that_made_the_copy() -> None:
    me = os.getpid()
    assert processes.same_process(me, processes.start_ticks(me))
    assert not processes.same_process(me, (processes.start_ticks(me) or 0) + 1)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not processes.same_process(child.pid, None)


def test_copies_are_recorded_listed_and_an_unrecorded_directory_is_an_orphan(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx = fake_ctx()
    scratch = ctx.settings.scratch_dir
    scratch.mkdir(parents=True)
    mine = _rec(id="drill-main-a", directory=str(scratch / "drill-main-a"), host=os.uname().nodename,
                pid=os.getpid(), pid_started=processes.start_ticks(os.getpid()))
    gone = _rec(id="drill-main-b", directory=str(scratch / "drill-main-b"), host=os.uname().nodename, pid=2**22 + 7)
    registry.record(ctx, mine)
    registry.record(ctx, gone)
    (scratch / "drill-table-c").mkdir()
    states = {Path(v.record.directory).name: v.state for v in registry.verdicts(ctx)}
    assert states == {"drill-main-a": "running", "drill-main-b": "orphan", "drill-table-c": "orphan"}
    assert registry.store(ctx).all() == [mine, gone]  # the record comes back as written
    registry.remove_copy(ctx, gone)
    assert [r.id for r in registry.store(ctx).all()] == ["drill-main-a"]


def test_the_space_watcher_stops_a_copy_below_the_floor(fake_ctx, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    ctx = fake_ctx()
    ctx.settings.scratch_dir.mkdir(parents=True)
    monkeypatch.setattr(room, "WATCH_INTERVAL", 0.05)
    stopped: list[Path] = []
    monkeypatch.setattr(processes, "stop_postmaster", lambda d, timeout=30: stopped.append(d) or True)
    monkeypatch.setattr(processes, "kill_mentioning", lambda text, timeout=10: [])
    dest = ctx.settings.scratch_dir / "drill-main-x"
    watcher = room.SpaceWatcher(ctx, dest, floor=2**62)  # more than any disk has free
    watcher.start()
    watcher.join(timeout=5)
    assert watcher.tripped and "stopped to protect production" in watcher.tripped and stopped == [dest]
    calm = room.SpaceWatcher(ctx, dest, floor=1)
    calm.start()
    time.sleep(0.2)
    calm.done.set()
    calm.join(timeout=5)
    assert calm.tripped is None


def test_beside_production_a_copy_runs_low_and_verifies_on_half_the_cores(settings_factory) -> None:  # type: ignore[no-untyped-def]
    prod = settings_factory()
    host = settings_factory(opsd={"role": "drill"})
    cores = os.cpu_count() or 1
    assert prod.drill.jobs(prod.beside_production) == max(1, cores // 2)
    assert host.drill.jobs(host.beside_production) == cores
    assert prod.drill.low_priority(True) and not host.drill.low_priority(False)
    assert settings_factory(drill={"priority": "normal"}).drill.low_priority(True) is False
    argv = pb.restore_cmd(pb.Base("pgbackrest", "/c", "s"), pb.RestoreOptions(pg1_path="/d", target_type="immediate",
                                                                            prefix=quarantine.LOW_PRIORITY))
    assert argv[:7] == ["nice", "-n", "10", "ionice", "-c", "3", "pgbackrest"]
