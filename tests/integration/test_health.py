"""Health on real PostgreSQL and a real PgBouncer: a 3-level blocking chain built from background threads, a
catalog lock that a probe must not queue behind, a saturated pool, and incidents that open and close."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from opsd import settings as settings_mod
from opsd.actions.health.sample import take_sample
from opsd.context import build
from opsd.db.probe import ProbeBusy, probe_for
from opsd_sandbox import Sandbox
from opsd_sandbox.stack import PGBOUNCER_CLIENT_PASSWORD
from tests.conftest import opsd
from tests.integration.helpers import wait_until

pytestmark = pytest.mark.integration


def _connect(sb: Sandbox, app: str = "shop-app") -> psycopg.Connection[Any]:
    return psycopg.connect(host=str(sb.socket_dir), port=sb.pg_port, user="postgres", dbname="postgres",
                           autocommit=True, application_name=app)


def _in_thread(conn: psycopg.Connection[Any], sql: str) -> threading.Thread:
    def run() -> None:
        with contextlib.suppress(psycopg.Error):
            conn.execute(sql)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _waiting(sb: Sandbox, pid: int) -> bool:
    return sb.psql(f"select wait_event_type from pg_stat_activity where pid = {pid}") == "Lock"


@contextlib.contextmanager
def chain(sb: Sandbox) -> Iterator[dict[str, int]]:
    """A holds a row lock of t1 and sits idle in transaction; B holds SHARE on t2 and waits for A's row;
    C waits for B's lock on t2."""
    sb.psql("drop table if exists t1, t2; create table t1(id int primary key, v int); "
            "create table t2(id int primary key, v int); insert into t1 values (1, 0); insert into t2 values (1, 0)")
    a, b, c = _connect(sb), _connect(sb), _connect(sb)
    threads: list[threading.Thread] = []
    try:
        a.execute("begin")
        a.execute("update t1 set v = v + 1 where id = 1")
        b.execute("begin")
        b.execute("lock table t2 in share mode")
        pids = {"A": a.info.backend_pid, "B": b.info.backend_pid, "C": c.info.backend_pid}
        c.execute("begin")
        threads.append(_in_thread(b, "update t1 set v = v + 10 where id = 1"))
        wait_until(lambda: _waiting(sb, pids["B"]), timeout=10, what="B to wait on A")
        threads.append(_in_thread(c, "update t2 set v = 12345 where id = 1"))
        wait_until(lambda: _waiting(sb, pids["C"]), timeout=10, what="C to wait on B")
        yield pids
    finally:
        # release in order, never touching a connection while its thread still runs a statement on it
        a.execute("rollback")
        for conn, t in zip((b, c), threads, strict=False):
            t.join(10)
            conn.execute("rollback")
        for conn in (a, b, c):
            conn.close()


def _conf(sb: Sandbox, path: Path, health: str = "", pgbouncer: str = "") -> Path:
    return sb.write_opsd_conf(path, extra=f"\n[health]\n{health}\n" + (f"\n[pgbouncer]\n{pgbouncer}\n" if pgbouncer
                                                                       else ""))


def test_three_level_chain_is_one_tree_rooted_at_the_idle_transaction(stack: Sandbox, tmp_path: Path) -> None:
    # a non-superuser with pg_monitor sees everything the report needs
    stack.psql("drop role if exists opsd_monitor; create role opsd_monitor login in role pg_monitor")
    conf = _conf(stack, tmp_path / "h.toml")
    conf.write_text(conf.read_text().replace('user = "postgres"', 'user = "opsd_monitor"'))
    raw = _conf(stack, tmp_path / "raw.toml", "show_query_text = true")
    with chain(stack) as pids:
        res = opsd(conf, "health", "locks", "--json")
        assert res.returncode == 0, res.stderr
        locks = json.loads(res.stdout)["locks"]
        text = opsd(conf, "health", "locks").stdout
        shown = json.loads(opsd(raw, "health", "locks", "--json").stdout)["locks"]
    [tree] = locks["trees"]
    root = tree["root"]
    assert root["pid"] == pids["A"] and root["state"] == "idle in transaction" and root["waiting_for"] is None
    assert tree["depth"] == 2 and tree["waiters"] == 2
    [b] = root["children"]
    [c] = b["children"]
    assert (b["pid"], c["pid"]) == (pids["B"], pids["C"]) and c["children"] == []
    assert b["waiting_for"] == "ShareLock on transactionid (row in public.t1)"
    assert c["waiting_for"] == "RowExclusiveLock on public.t2"
    assert "ShareLock on public.t2" in b["holds"] and "RowExclusiveLock on public.t1" in root["holds"]
    assert tree["modes"] == ["RowExclusiveLock", "ShareLock"] and tree["relations"] == ["public.t2", "row in public.t1"]
    assert tree["longest_wait"] > 0
    # literals are masked unless asked for
    assert c["query"] == "update t2 set v = ? where id = ?"
    assert shown["trees"][0]["root"]["children"][0]["children"][0]["query"] == "update t2 set v = 12345 where id = 1"
    assert "IDLE IN TRANSACTION" in text and f"pid {pids['A']}" in text


def test_a_catalog_lock_makes_the_probe_time_out_not_hang(stack: Sandbox, tmp_path: Path) -> None:
    conf = _conf(stack, tmp_path / "p.toml", 'probe_lock_timeout = "300ms"\nprobe_timeout = "3s"')
    ctx = build(settings_mod.load(str(conf)))
    probe = probe_for(ctx.settings)
    locker = _connect(stack, "locker")
    try:
        assert take_sample(ctx, probe, pool=False).problems == []
        conn_before = probe._conn
        locker.execute("begin")
        locker.execute("lock table pg_catalog.pg_authid in access exclusive mode")
        started = time.monotonic()
        s = take_sample(ctx, probe)
        elapsed = time.monotonic() - started
        assert elapsed < 3, elapsed
        assert s.locks is None and any(p.startswith("locks: probe timed out") for p in s.problems)
        # one connection, still the same one, never a pile of stuck probes
        assert locker.execute("select count(*) from pg_stat_activity where application_name = 'opsd'"
                              ).fetchone() == (1,)
        locker.execute("rollback")
        s = take_sample(ctx, probe)
        assert s.problems == [] and s.locks is not None and probe._conn is conn_before
        # at most one probe in flight: a second one is refused, not queued
        entered = threading.Event()

        def slow(conn: Any) -> None:
            entered.set()
            conn.execute("select pg_sleep(1)")

        t = threading.Thread(target=lambda: probe.run(slow))
        t.start()
        entered.wait(5)
        with pytest.raises(ProbeBusy):
            probe.run(lambda conn: None)
        t.join()
    finally:
        locker.close()
        probe.close()


def test_pgbouncer_pool_of_two_shows_waiting_clients_and_saturation(stack: Sandbox, tmp_path: Path) -> None:
    secret = "pool-admin-s3cret"
    port = stack.start_pgbouncer(pool_size=2, admin_user="opsd_admin", admin_password=secret)
    clients: list[psycopg.Connection[Any]] = []
    try:
        conf = _conf(stack, tmp_path / "b.toml",
                     pgbouncer=f'host = "127.0.0.1"\nport = {port}\nadmin_user = "opsd_admin"')
        bad = opsd(conf, "health", "pool", "--json")
        assert bad.returncode == 0 and any("pgbouncer:" in p for p in json.loads(bad.stdout)["problems"])

        def client() -> None:
            conn = psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True,
                                   password=PGBOUNCER_CLIENT_PASSWORD)
            clients.append(conn)
            with contextlib.suppress(psycopg.Error):
                conn.execute("select pg_sleep(8)")

        for _ in range(5):
            threading.Thread(target=client, daemon=True).start()
        env = {"PGBOUNCER_PASSWORD": secret}

        def pool() -> dict[str, Any] | None:
            out = json.loads(opsd(conf, "health", "pool", "--json", env=env).stdout)
            pools = (out.get("pool") or {}).get("pools") or []
            p = next((x for x in pools if x["database"] == "postgres"), None)
            return p if p and p["cl_waiting"] >= 3 else None

        p = wait_until(pool, timeout=20, what="3 clients waiting in the pool")
        assert p["pool_size"] == 2 and p["sv_active"] == 2 and p["saturation"] == 100.0 and p["saturated"]
        res = opsd(conf, "health", "pool", env=env)
        assert "SATURATED" in res.stdout and secret not in res.stdout + res.stderr
    finally:
        for c in clients:
            c.close()
        stack.stop_pgbouncer()


def test_an_incident_opens_with_the_chain_and_closes_when_it_clears(stack: Sandbox, tmp_path: Path) -> None:
    state = tmp_path / "state"
    conf = _conf(stack, tmp_path / "i.toml", 'lock_wait_threshold = "1s"')
    conf.write_text(conf.read_text().replace(str(stack.state_dir), str(state)))
    os.chmod(tmp_path, 0o755)
    with chain(stack) as pids:
        time.sleep(1.5)
        opened = json.loads(opsd(conf, "health", "sample", "--json").stdout)
        assert opened["opened"] == [f"lock:{pids['A']}"]
        again = json.loads(opsd(conf, "health", "sample", "--json").stdout)
        assert again["opened"] == [] and again["closed"] == []
    closed = json.loads(opsd(conf, "health", "sample", "--json").stdout)
    assert closed["closed"] == [f"lock:{pids['A']}"]
    [inc] = json.loads(opsd(conf, "health", "incidents", "--json").stdout)
    assert inc["kind"] == "lock" and inc["open"] is False and inc["closed_at"]
    worst = inc["worst"]["tree"]
    assert worst["root"]["pid"] == pids["A"] and worst["waiters"] == 2 and worst["depth"] == 2
    assert "IDLE IN TRANSACTION" in inc["summary"]
