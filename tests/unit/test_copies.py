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


# --------------------------------------------------------------------------- a copy of one database (issue 27)
MANIFEST = """[backup]
backup-label="F1"

[db]
app={"db-id":16395,"db-last-system-id":4}
big={"db-id":16396,"db-last-system-id":4}
postgres={"db-id":5,"db-last-system-id":4}
template0={"db-id":4,"db-last-system-id":4}
template1={"db-id":1,"db-last-system-id":4}

[target:file]
pg_data/PG_VERSION={"checksum":"a","size":3,"timestamp":1}
pg_data/base/1/1259={"checksum":"b","size":100,"timestamp":1}
pg_data/base/4/1259={"checksum":"b","size":100,"timestamp":1}
pg_data/base/5/1259={"checksum":"b","size":100,"timestamp":1}
pg_data/base/16395/1259={"checksum":"c","size":200,"timestamp":1}
pg_data/base/16396/1259={"checksum":"c","size":200,"timestamp":1}
pg_data/global/1262={"checksum":"d","size":50,"timestamp":1}
pg_tblspc/16400/PG_15_202209061/16395/16401={"checksum":"e","size":1000,"timestamp":1}
pg_tblspc/16400/PG_15_202209061/16396/16402={"checksum":"e","size":9000,"timestamp":1}
pg_data/base/16396/16403={"checksum":"f","size":0,"timestamp":1}

[target:file:default]
group="postgres"
"""


def test_the_manifest_gives_each_database_its_files_in_base_and_in_tablespaces() -> None:
    """A parser that missed tablespace files would count a database kept in a tablespace as almost empty (a
    space check far too small); one that missed [db] could not name what to restore."""
    from opsd.adapters.pgbackrest_restore import manifest_sizes

    sizes = manifest_sizes(MANIFEST)
    assert sizes.total == 10753
    got = {d.name: (d.oid, d.bytes) for d in sizes.databases}
    assert got == {"app": (16395, 1200), "big": (16396, 9200), "postgres": (5, 100), "template0": (4, 100),
                   "template1": (1, 100)}
    with pytest.raises(ValueError, match=r"\[db\]"):
        manifest_sizes("[target:file]\npg_data/x={\"size\":1}\n")


def test_a_user_database_is_included_and_the_others_restored_as_sparse_files() -> None:
    """The decision: --db-include for a user database (pgBackRest refuses a system one there: [081] 'system
    databases ... are included by default'), --db-exclude of every user database for a table in postgres, and
    the whole cluster when the database is not in the backup or is the only one."""
    from opsd.actions.copies.partial import decide, restored
    from opsd.adapters.pgbackrest_restore import manifest_sizes

    sizes = manifest_sizes(MANIFEST)
    app = decide(sizes, "app", "F1")
    assert (app.include, app.exclude, app.skipped) == (("app",), (), ("big",))
    assert app.restored_bytes == 10753 - 9200 and app.cluster_bytes == 10753 and "F1's manifest" in app.source
    assert restored(app.include, app.exclude) == frozenset({"app", "postgres", "template0", "template1"})
    pg = decide(sizes, "postgres", "F1")
    assert (pg.include, pg.exclude) == ((), ("app", "big")) and pg.restored_bytes == 10753 - 9200 - 1200
    assert restored(pg.include, pg.exclude) == frozenset({"postgres", "template0", "template1"})
    gone = decide(sizes, "newer", "F1")
    assert not gone.partial and "not in backup F1" in (gone.why_whole or "") and restored((), ()) is None
    alone = manifest_sizes(MANIFEST.replace('big={"db-id":16396,"db-last-system-id":4}\n', ""))
    only = decide(alone, "app", "F1")
    assert not only.partial and only.restored_bytes == only.cluster_bytes


def test_pgbackrest_gets_db_include_or_db_exclude_only_for_a_partial_copy(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    """The argv, and the restore options built from the plan's request: a copy restored without them would be the
    whole cluster again."""
    from dataclasses import replace

    from opsd.actions.restore.service import Launch, _options
    from opsd.adapters.pgbackrest_restore import RestoreOptions, restore_argv

    o = RestoreOptions(pg1_path="/s/d", target_type="immediate")
    assert not [a for a in restore_argv(["pgbackrest"], o) if a.startswith("--db-")]
    inc = restore_argv(["pgbackrest"], RestoreOptions(pg1_path="/s/d", target_type="immediate", db_include=("app",)))
    assert inc[-2:] == ["--db-include=app", "restore"]
    exc = restore_argv(["pgbackrest"], RestoreOptions(pg1_path="/s/d", target_type="immediate",
                                                      db_exclude=("app", "big")))
    assert exc[-3:] == ["--db-exclude=app", "--db-exclude=big", "restore"]
    ctx, (plan, _facts) = fake_ctx(), _plan(1 << 30, 1 << 40)
    launch = Launch(work_dir=ctx.settings.opsd.state_dir / "copies")
    whole = _options(ctx, plan, launch)
    assert (whole.db_include, whole.db_exclude) == ((), ())
    plan.request = replace(plan.request, db_include=("app",))
    assert _options(ctx, plan, launch).db_include == ("app",)
    plan.request = replace(plan.request, db_include=(), db_exclude=("app", "big"))
    assert _options(ctx, plan, launch).db_exclude == ("app", "big")


def _plan(size: int, free: int) -> tuple[Any, Any]:
    from opsd.actions.restore.plan import DestFacts, Plan, Request, passed, space_verdicts

    b = pb.BackupInfo(label="F1", type="full", start=NOW, stop=NOW, size=size, delta=size, repo_size=1, repo_delta=1,
                      wal_start="000000010000000000000002", wal_stop="000000010000000000000002", lsn_start=None,
                      lsn_stop=None, prior=None, reference=(), error=False)
    req = Request(target_type="immediate", dest=Path("/s/drill-table-1"))
    facts = DestFacts(exists=False, empty=True, free_bytes=free)
    plan = Plan(req, b, "newest", "000000010000000000000002", "000000010000000000000002", 1, None, "-",
                passed(space_verdicts(req, b, size, facts)))
    return plan, facts


def test_the_space_check_counts_the_databases_restored_and_the_wal_not_the_cluster() -> None:
    """10 GiB cluster, 1 GiB free: refused for the whole cluster, accepted for a 500 MiB database (plus 16 MiB of
    WAL); refused again when the database itself does not fit."""
    from opsd.actions.copies.partial import Partial, apply

    gib, mib = 1024**3, 1024**2
    plan, facts = _plan(10 * gib, gib)
    assert plan.refused
    p = Partial("app", include=("app",), skipped=("big",), restored_bytes=500 * mib, cluster_bytes=10 * gib,
                source="backup F1's manifest")
    done = apply(plan, p, facts)
    assert not done.refused and done.request.db_include == ("app",)
    assert any("500.0 MiB of the cluster's 10.0 GiB" in v.message and "F1's manifest" in v.message
               for v in done.verdicts)
    plan, facts = _plan(10 * gib, gib)
    big = apply(plan, Partial("app", include=("app",), restored_bytes=950 * mib, cluster_bytes=10 * gib), facts)
    assert big.refused and "not enough space" in big.refusals()[0]


def test_quarantine_never_connects_to_a_database_that_was_not_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connecting to a zeroed database fails ('relation mapping file ... contains invalid data'): the copy's
    quarantine skips it and says so; a whole copy is detached in every database as before."""
    import contextlib
    from collections.abc import Iterator

    from opsd.db import quarantine as dbq
    from opsd.db.queries import NameRow

    seen: list[str] = []

    @contextlib.contextmanager
    def connect(db: str) -> Iterator[str]:
        seen.append(db)
        yield db

    def fetch_all(conn: str, name: str, row: type) -> list[Any]:
        return [NameRow(n) for n in ("app", "big", "postgres", "template1")] if name == "databases" else []

    monkeypatch.setattr(dbq, "fetch_all", fetch_all)
    out = dbq.detach(connect, frozenset({"app", "postgres", "template0", "template1"}), "app")  # type: ignore[arg-type]
    assert "big" not in seen and seen == ["app", "app", "postgres", "template1"] and out.skipped == ["big"]
    assert "skipped big" in out.summary() and "never connected to" in out.summary()
    seen.clear()
    whole = dbq.detach(connect)  # type: ignore[arg-type]
    assert seen == ["postgres", "app", "big", "postgres", "template1"] and not whole.skipped


def test_invalid_pages_count_only_in_a_database_the_copy_restored() -> None:
    """A partial copy recovers with ignore_invalid_pages (else a zeroed page PANICs recovery): a report in the
    table's database means the copy cannot be trusted; one in a skipped database (zeroed on purpose) is expected."""
    from opsd.actions.copies.partial import SERVER_OPTIONS, invalid_pages

    assert SERVER_OPTIONS == ("-c ignore_invalid_pages=on",)
    log = ["2026-12-07 WARNING:  page 4 of relation base/16396/16397 is uninitialized",
           "CONTEXT:  WAL redo at 0/6000100 for Heap2/VISIBLE",
           "2026-12-07 WARNING:  page 9 of relation pg_tblspc/16400/PG_15_202209061/16395/16401 does not exist",
           "LOG:  page 1 of relation base/16395/1 is fine"]
    assert invalid_pages(log, {16396 + 1000}) == []
    assert invalid_pages(log, {16395, 5}) == ["page 9 of relation pg_tblspc/16400/PG_15_202209061/16395/16401 "
                                              "does not exist"]
    assert len(invalid_pages(log, {16396})) == 1
