"""Drills and health probes under faults: a scratch directory too small (refused before restoring, with the
sizes), an ACCESS EXCLUSIVE lock queue in front of the probe, and max_connections exhausted."""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from opsd import settings as settings_mod
from opsd.actions.health.sample import record, take_sample
from opsd.adapters.stores.health import HealthStore
from opsd.context import build
from opsd.db.probe import probe_for
from opsd_sandbox import Sandbox
from tests.conftest import opsd
from tests.integration.helpers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]


@pytest.fixture
def tiny_scratch(ready_stack: Sandbox) -> Any:
    d = ready_stack.root / "tiny-scratch"
    d.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(d)], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=False)


def test_a_scratch_directory_too_small_is_refused_before_restoring(ready_stack: Sandbox, tmp_path: Path,
                                                                    tiny_scratch: Path) -> None:
    sb = ready_stack
    assert opsd(sb.opsd_conf, "backup", "--type", "full").returncode == 0
    conf = sb.write_opsd_conf(tmp_path / "tiny.toml", drill={"scratch_dir": str(tiny_scratch)})
    # a history of its own: this failed drill must not make 'opsd check' critical for the tests that follow
    conf.write_text(conf.read_text().replace(str(sb.state_dir), str(sb.root / "tiny-state")))
    res = opsd(conf, "drill", "run", "--target", "latest", "--json")
    assert res.returncode == 1
    data = json.loads(res.stdout)
    assert data["failed_checks"] == ["plan"]
    msg = next(c["message"] for c in data["checks"] if c["name"] == "plan")
    assert "not enough space" in msg and "needs" in msg and "free" in msg and "MiB" in msg
    assert not list(tiny_scratch.glob("drill-*"))  # nothing was restored
    assert [c["name"] for c in data["checks"]] == ["plan"]


def _connect(sb: Sandbox, user: str = "postgres", app: str = "fault") -> psycopg.Connection[Any]:
    return psycopg.connect(host=str(sb.socket_dir), port=sb.pg_port, user=user, dbname="postgres", autocommit=True,
                           application_name=app)


def test_probe_facing_an_access_exclusive_lock_queue(ready_stack: Sandbox, tmp_path: Path) -> None:
    sb = ready_stack
    sb.psql("create table if not exists fault_locked(x int)")
    conf = sb.write_opsd_conf(tmp_path / "q.toml", extra='\n[health]\nprobe_lock_timeout = "300ms"\n')
    ctx = build(settings_mod.load(str(conf)))
    holder, waiter = _connect(sb), _connect(sb)
    probe = probe_for(ctx.settings)
    t: threading.Thread | None = None
    try:
        holder.execute("begin")
        holder.execute("lock table fault_locked in access exclusive mode")

        def wait() -> None:
            with contextlib.suppress(psycopg.Error):
                waiter.execute("select count(*) from fault_locked")

        t = threading.Thread(target=wait, daemon=True)
        t.start()
        wait_until(lambda: sb.psql(f"select wait_event_type from pg_stat_activity where pid = "
                                   f"{waiter.info.backend_pid}") == "Lock", timeout=10, what="the waiter")
        started = time.monotonic()
        s = take_sample(ctx, probe, pool=False)
        assert time.monotonic() - started < 3 and s.problems == []
        assert s.locks is not None
        [tree] = s.locks.trees
        assert tree.root.pid == holder.info.backend_pid and tree.waiters == 1
        assert "AccessShareLock on public.fault_locked" in (tree.root.children[0].waiting_for or "")
        assert holder.execute("select count(*) from pg_stat_activity where application_name = 'opsd'"
                              ).fetchone() == (1,)
    finally:
        holder.execute("rollback")
        if t is not None:
            t.join(10)
        for c in (holder, waiter):
            c.close()
        probe.close()


def test_connections_exhausted_reports_saturation(ready_stack: Sandbox, tmp_path: Path) -> None:
    sb = ready_stack
    sb.psql("drop role if exists fault_app; create role fault_app login")
    conf = sb.write_opsd_conf(tmp_path / "c.toml", extra='\n[health]\nconnections_threshold = 90\n')
    conf.write_text(conf.read_text().replace(str(sb.state_dir), str(sb.root / "conn-state")))
    ctx = build(settings_mod.load(str(conf)))
    probe = probe_for(ctx.settings)
    take_sample(ctx, probe)  # the probe's one connection exists before the server is full
    conns: list[psycopg.Connection[Any]] = []
    try:
        with contextlib.suppress(psycopg.OperationalError):
            for _ in range(500):
                conns.append(_connect(sb, "fault_app", "filler"))
        assert len(conns) < 500  # the server said "too many clients"
        s = take_sample(ctx, probe)
        assert s.connections is not None and s.connections.utilisation >= 95, s.connections
        changes = record(ctx, HealthStore(ctx.history.db), s)
        assert "connections" in [c.key for c in changes.opened]
        res = opsd(conf, "health", "pool", "--json")  # a new superuser session still fits (reserved slots)
        assert res.returncode == 0 and json.loads(res.stdout)["connections"]["utilisation"] >= 95
    finally:
        for c in conns:
            c.close()
        probe.close()
