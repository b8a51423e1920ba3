"""opsd on a real Patroni cluster (issue 15): etcd from Debian's packages, Patroni from PyPI, two PostgreSQL 15
nodes archiving to one stanza, the same opsd.toml on both (only the paths differ, as on real hosts). Through a
switchover, a failover and a rejoin: exactly one node backs up, the other records a skip; check stays green;
restores before and after each switch give back the rows of their time; a drill recovers across a switch; a
paused standby's lag and an inactive slot show up; an old leader started on its own is a split brain."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsd import settings as settings_mod
from opsd.actions import alerts
from opsd.adapters.stores.runs import History
from opsd.context import build
from opsd_sandbox import Sandbox
from opsd_sandbox.ha import HaCluster, Node, available
from opsd_sandbox.procs import as_pg, free_port, run
from tests.conftest import opsd
from tests.integration.helpers import PG_BIN, wait_until

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(bool(available()), reason=f"Patroni cluster: {available()}")]


def _up(stack: Sandbox, scope: str) -> HaCluster:
    ha = HaCluster(stack, scope=scope, ignore_slots=("opsd_lost_consumer",))  # a consumer Patroni does not own
    ha.up(opsd_extra='\n[health]\nslot_retained_max = "24MiB"\n')
    fast = '[drill]\nprocess_max = 4\npriority = "normal"\n'  # copies (drills, side restores): parallel fetches,
    for node in ha.nodes:  # normal priority; nothing here depends on how fast a copy is restored
        node.conf.write_text(node.conf.read_text().replace("[drill]\n", fast, 1))
    leader = ha.wait_leader()
    res = opsd(leader.conf, "setup")
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]
    ha.psql(leader, "create table stock (id int primary key, qty int not null)")
    return ha


@pytest.fixture(scope="module")
def ha(stack: Sandbox) -> Iterator[HaCluster]:
    cluster = _up(stack, "ha")
    try:
        yield cluster
    finally:
        cluster.down()


def _rows(ha: HaCluster, node: Node) -> str:
    return ha.psql(node, "select coalesce(string_agg(id || ':' || qty, ',' order by id), '') from stock")


def _write(ha: HaCluster, node: Node, sql: str) -> tuple[str, str]:
    """Run ``sql`` in its own transaction and return the rows it leaves and a time just after its commit."""
    ha.psql(node, sql)
    return _rows(ha, node), ha.psql(node, "select clock_timestamp()")


def _results(conf: Path) -> dict[str, Any]:
    res = opsd(conf, "check", "--json")
    return {r["name"]: r for r in json.loads(res.stdout)["results"]}


def _once(node: Node) -> dict[str, str]:
    res = opsd(node.conf, "daemon", "--once", timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    return dict(line.split(": ", 1) for line in res.stdout.splitlines() if ": " in line)


def _labels(ha: HaCluster, node: Node) -> list[str]:
    return [b["label"] for b in json.loads(ha.pgbackrest(node, "--output=json", "info"))[0]["backup"]]


def _restored_rows(ha: HaCluster, node: Node, when: str, name: str, *extra: str) -> str:
    dest, port = ha.sb.root / f"ha-restore-{name}", free_port()
    res = opsd(node.conf, "restore", "--to-time", when, "--target-dir", str(dest), "--port", str(port), "--start",
               "--json", *extra, timeout=600)
    try:
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        return run(as_pg([str(PG_BIN / "psql"), "-h", str(ha.sb.socket_dir), "-p", str(port), "-XAtc",
                          "select coalesce(string_agg(id || ':' || qty, ',' order by id), '') from stock"])
                   ).stdout.strip()
    finally:
        run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(dest), "-m", "immediate", "-w", "stop"]), check=False)


def _firing(node: Node) -> list[str]:
    return alerts.firing(build(settings_mod.load(str(node.conf))))


def _no_split_brain(ha: HaCluster) -> None:
    for node in ha.nodes:
        tl = _results(node.conf)["archive.timelines"]
        assert tl["status"] == "ok", (node.name, tl["message"])
        assert "check.archive.timelines" not in _firing(node), node.name  # no split-brain alert


def test_switchover_failover_and_rejoin_with_opsd_following(ha: HaCluster) -> None:
    a = ha.wait_leader()
    [b] = [n for n in ha.nodes if n is not a]
    # both nodes run the daemon's jobs once: exactly one full backup lands, the replica records a skip
    assert _once(a)["backup-full"] == "ok"
    assert _once(b)["backup-full"] == "skipped"
    skipped = History(b.state, "postgres").last("backup-full")
    assert skipped is not None and skipped.outcome == "skipped"
    assert len(_labels(ha, a)) == 1
    rows1, t1 = _write(ha, a, "insert into stock select g, g * 10 from generate_series(1, 5) g")
    assert opsd(a.conf, "drill", "heartbeat").returncode == 0

    ha.switchover(b)  # planned: the old leader stops cleanly and follows the new one
    rows2, t2 = _write(ha, b, "update stock set qty = qty + 1 where id <= 3")
    assert _once(b)["backup-full"] == "ok" and _once(a)["backup-full"] == "skipped"
    assert len(_labels(ha, b)) == 2
    before_failover = _labels(ha, b)[-1]
    tl = _results(b.conf)["archive.timelines"]
    assert tl["status"] == "ok" and tl["details"]["timeline"] >= 2, tl

    ha.kill(b)  # unplanned: the leader's host is lost; Patroni promotes the other after ttl
    ha.wait_leader(a)
    rows3, t3 = _write(ha, a, "delete from stock where id = 5")
    assert opsd(a.conf, "drill", "heartbeat").returncode == 0
    ha.psql(a, "select pg_switch_wal()")
    # a drill restores the backup taken before the failover and recovers across the switch to after it
    res = opsd(a.conf, "drill", "run", "--target", t3, "--json", timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    drill = json.loads(res.stdout)
    assert drill["passed"] and drill["backup"] == before_failover, drill
    assert any(c["name"].startswith("heartbeat") and c["status"] == "ok" for c in drill["checks"]), drill["checks"]
    # restores before each switch, along timeline 3's history (before the next full expires the first backup)
    assert _restored_rows(ha, a, t1, "t1") == rows1
    assert _restored_rows(ha, a, t2, "t2") == rows2
    assert _once(a)["backup-full"] == "ok"
    tl = _results(a.conf)["archive.timelines"]
    assert tl["status"] == "ok" and tl["details"]["timeline"] >= 3, tl
    window = json.loads(opsd(a.conf, "window", "--json").stdout)
    assert {(s["timeline"], s["parent"]) for s in window["switches"]} >= {(2, 1), (3, 2)}, window["switches"]
    info = json.loads(opsd(a.conf, "info", "--json").stdout)["timelines"]
    assert info["current"] == tl["details"]["timeline"] and all(s["lsn"] and s["at"] for s in info["switches"]), info

    ha.start(b)  # the old leader rejoins: Patroni rewinds it (and first archives its last WAL)
    ha.wait_streaming()
    _no_split_brain(ha)
    assert _once(b)["backup-full"] == "skipped"
    assert _rows(ha, b) == rows3 == _rows(ha, a)


def test_replication_lag_while_replay_is_paused(ha: HaCluster) -> None:
    leader = ha.wait_leader()
    ha.wait_streaming()
    [replica] = [n for n in ha.nodes if n is not leader]
    ha.maintenance(True)  # else Patroni resumes the replay at once
    ha.psql(replica, "select pg_wal_replay_pause()")
    try:
        ha.psql(leader, "insert into stock select g, 0 from generate_series(1000, 21000) g on conflict do nothing")
        ha.psql(leader, "delete from stock where id >= 1000")

        def lagging() -> dict[str, Any] | None:
            out = json.loads(opsd(replica.conf, "health", "replication", "--json").stdout)["replication"]
            return out if (out["receiver"]["replay_lag_bytes"] or 0) > 0 else None

        mine = wait_until(lagging, timeout=60, what="the paused standby to fall behind")
        assert mine["role"] == "standby" and mine["receiver"]["paused"] and mine["receiver"]["source"] == "streaming"
        seen = json.loads(opsd(leader.conf, "health", "replication", "--json").stdout)["replication"]
        [sb] = [s for s in seen["standbys"] if s["name"] == replica.name]
        assert seen["role"] == "primary" and sb["state"] == "streaming" and sb["replay_lag_bytes"] > 0, seen
        text = opsd(replica.conf, "health", "replication").stdout
        assert "REPLAY PAUSED" in text, text
        assert opsd(replica.conf, "health", "sample").returncode == 0  # what the daemon's sampler records
        metrics = opsd(replica.conf, "metrics").stdout
        assert "opsd_replication_replay_paused 1.0" in metrics, metrics[-2000:]
        res = opsd(replica.conf, "backup", "--type", "full")  # maintenance mode does not make a standby lead
        assert res.returncode == 0 and "Patroni: replica, running, paused" in res.stdout, res.stdout
    finally:
        ha.psql(replica, "select pg_wal_replay_resume()")
        ha.maintenance(False)


def test_an_inactive_slot_that_retains_wal_opens_an_incident(ha: HaCluster) -> None:
    leader = ha.wait_leader()
    ha.psql(leader, "select pg_create_physical_replication_slot('opsd_lost_consumer', true)")
    try:
        for _ in range(3):  # 48 MiB of WAL past the slot's restart_lsn, over the 24 MiB allowed
            ha.psql(leader, "select pg_switch_wal(), pg_logical_emit_message(false, 'opsd', repeat('x', 16000000))")
        res = opsd(leader.conf, "health", "sample", "--json")
        assert res.returncode == 0, res.stderr[-2000:]
        out = json.loads(res.stdout)
        assert "slot:opsd_lost_consumer" in out["opened"], out
        [slot] = [s for s in out["sample"]["replication"]["slots"] if s["name"] == "opsd_lost_consumer"]
        assert not slot["active"] and slot["retained_bytes"] > 24 * 1024 * 1024, slot
        incidents = json.loads(opsd(leader.conf, "health", "incidents", "--json").stdout)
        assert any(i["key"] == "slot:opsd_lost_consumer" and i["closed_at"] is None for i in incidents), incidents
        assert 'opsd_health_incidents_open{kind="slot"} 1.0' in opsd(leader.conf, "metrics").stdout
    finally:
        ha.psql(leader, "select pg_drop_replication_slot('opsd_lost_consumer')", check=False)
    out = json.loads(opsd(leader.conf, "health", "sample", "--json").stdout)
    assert "slot:opsd_lost_consumer" in out["closed"], out  # dropped: the incident closes


def test_an_old_leader_started_on_its_own_is_a_split_brain(stack: Sandbox) -> None:
    """A cluster of its own: the old leader is killed, the other node promoted, and the old one started by hand
    as a primary (no Patroni, no rewind): every node that reads the repository sees it, critical, naming both
    timelines."""
    ha = _up(stack, "lone")
    try:
        old = ha.wait_leader()
        [new] = [n for n in ha.nodes if n is not old]
        assert opsd(old.conf, "backup", "--type", "full").returncode == 0
        ha.kill(old)
        ha.wait_leader(new)
        ha.psql(new, "select pg_switch_wal()")
        assert _results(new.conf)["archive.timelines"]["status"] == "ok"
        ha.start_lone(old)
        ha.psql(old, "insert into stock values (1, 1)")  # the lone primary takes writes
        ha.psql(old, "select pg_switch_wal()")

        def critical() -> dict[str, Any] | None:
            tl = _results(new.conf)["archive.timelines"]
            return tl if tl["status"] == "critical" else None

        tl = wait_until(critical, timeout=90, what="check on the new leader to see the old timeline archived")
        assert "split brain: timeline 1 is still archived after timeline 2 branched off it" in tl["message"], tl
        assert "transaction(s) ended there since" in tl["message"] or "started as a primary" in tl["message"], tl
        assert f"Patroni knows: {new.name} (leader, running" in tl["message"], tl["message"]  # the hosts it can name
        assert opsd(new.conf, "check").returncode == 1
        assert "check.archive.timelines" in _firing(new)  # the split-brain alert fires
        assert _results(old.conf)["archive.timelines"]["status"] == "critical"  # the culprit sees it too
    finally:
        ha.down()


def test_transactions_lost_in_a_failover_are_named_and_reachable_on_their_timeline(stack: Sandbox) -> None:
    """The leader commits a row its standby never receives (the standby's WAL receiver is held, and the leader's
    archiver too, so the standby cannot fetch it from the repository either), then the leader is lost: the
    standby is promoted
    without the row. When the old leader rejoins, Patroni archives its last WAL and rewinds it: check names the
    lost transaction (no split brain), the plan of a restore to its time says it exists on both timelines, and
    --target-timeline 1 brings the row back in a side copy."""
    ha = _up(stack, "lost")
    held: list[int] = []
    try:
        old = ha.wait_leader()
        [new] = [n for n in ha.nodes if n is not old]
        ha.wait_streaming()
        assert opsd(old.conf, "backup", "--type", "full").returncode == 0
        time.sleep(1.5)  # pgBackRest records the backup's end in whole seconds: a target clear of it
        ha.psql(old, "insert into stock values (1, 1)")
        ha.psql(old, "select pg_switch_wal()")
        wait_until(lambda: ha.psql(new, "select count(*) from stock") == "1", timeout=60, what="the row replayed")
        startup = int(ha.psql(new, "select pid from pg_stat_activity where backend_type = 'startup'"))
        archiver = int(ha.psql(old, "select pid from pg_stat_activity where backend_type = 'archiver'"))
        for pid in (startup, archiver):  # the standby asks for no WAL, the leader archives nothing more
            os.kill(pid, signal.SIGSTOP)
            held.append(pid)
        os.kill(int(ha.psql(new, "select pid from pg_stat_wal_receiver")), signal.SIGTERM)  # nor receives any
        wait_until(lambda: ha.psql(new, "select count(*) from pg_stat_wal_receiver") == "0", timeout=30,
                   what="the standby's WAL receiver to stop")
        ha.psql(old, "insert into stock values (42, 42)")
        ha.psql(old, "select pg_switch_wal()")  # completed and .ready, not archived
        ha.kill(old)
        os.kill(archiver, signal.SIGKILL)  # a stopped process does not see its postmaster die
        os.kill(startup, signal.SIGCONT)
        held.clear()
        ha.wait_leader(new)
        assert ha.psql(new, "select string_agg(id::text, ',' order by id) from stock") == "1"  # 42 is lost
        ha.psql(new, "select pg_switch_wal()")
        ha.start(old)  # Patroni archives the old leader's .ready WAL, then rewinds it
        ha.wait_streaming()
        tl = _results(new.conf)["archive.timelines"]
        assert tl["status"] == "ok" and tl["details"]["lost_transactions"] >= 1, tl
        assert "transaction(s) on timeline 1 after" in tl["message"] and "lost in the failover" in tl["message"], tl
        # the abandoned branch ends at the lost commit: opsd window shows it as timeline 1's latest
        window = json.loads(opsd(new.conf, "window", "--json").stdout)
        [branch] = [i for i in window["intervals"] if i["timeline"] == 1]
        lost_at = branch["latest"]["time"]
        assert "last commit" in branch["latest"]["source"], branch
        plan = json.loads(opsd(new.conf, "restore", "--to-time", lost_at, "--target-dir", str(ha.sb.root / "lp"),
                               "--port", str(free_port()), "--dry-run", "--json").stdout)
        assert any("target exists on timelines 1, 2" in v["message"] for v in plan["plan"]["verdicts"]), plan
        assert _restored_rows(ha, new, lost_at, "lost", "--target-timeline", "1") == "1:1,42:42"
    finally:
        for pid in held:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        ha.down()


def test_setup_changes_nothing_behind_patronis_back(ha: HaCluster) -> None:
    """opsd setup on a Patroni node whose archive_command would change (another pgbackrest.conf) says what to
    put in Patroni's configuration and changes nothing: no ALTER SYSTEM fighting Patroni."""
    leader = ha.wait_leader()
    other = ha.sb.root / "pgbackrest-ha-moved.conf"
    other.write_bytes(ha.pgbackrest_conf(leader).read_bytes())
    shutil.copymode(ha.pgbackrest_conf(leader), other)
    shutil.chown(other, "root", "postgres")
    conf = ha.sb.root / "opsd-ha-moved.toml"
    conf.write_text(leader.conf.read_text().replace(str(ha.pgbackrest_conf(leader)), str(other)))
    before = ha.psql(leader, "show archive_command")
    res = opsd(conf, "setup")
    assert res.returncode == 1 and "managed by Patroni" in res.stderr and "patronictl edit-config" in res.stderr, (
        res.stdout + res.stderr[-2000:])
    assert "Traceback" not in res.stderr
    assert ha.psql(leader, "show archive_command") == before
    assert "archive_command" not in (leader.pgdata / "postgresql.auto.conf").read_text()
