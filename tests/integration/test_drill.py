"""Recovery drills on the real stack: a healthy drill passes every check and records every timing; a drill
fails, naming the check, for a corrupted backup file, a missing WAL segment and a false smoke query; a killed
drill leaves nothing behind after the next start; a drill adds nothing to the repository; a drill host
verifies from the repository alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsd_sandbox import Sandbox
from opsd_sandbox.stack import BUCKET
from tests.conftest import REPO, opsd
from tests.integration.helpers import archived_wal, repo_info, switch_and_wait, wait_until

pytestmark = pytest.mark.integration

SMOKE = """
[[drill.smoke_queries]]
name = "orders-count"
dbname = "shop"
sql = "SELECT count(*) FROM orders"
expect = "{expect}"
"""




# a copy restored with parallel fetches and at normal priority, where the test proves nothing about either (1 to 5 s
# less a drill here); the healthy drill runs with the defaults, and the killed-drill test keeps them and checks nice
# 10 beside production
FAST: dict[str, object] = {"process_max": 4, "priority": "normal"}


def _beat(conf: Path, n: int) -> None:
    for _ in range(n):
        res = opsd(conf, "drill", "heartbeat")
        assert res.returncode == 0, res.stderr
        time.sleep(0.3)


def _conf(sb: Sandbox, tmp_path: Path, name: str, expect: str = "1000", **drill: object) -> Path:
    return sb.write_opsd_conf(tmp_path / name, drill={"heartbeat_interval": "1s", **drill},
                              extra=SMOKE.format(expect=expect))


def _drill(conf: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    res = opsd(conf, "drill", "run", "--json", *args, timeout=600)
    try:
        data = json.loads(res.stdout)
    except ValueError:
        pytest.fail(f"no JSON from drill run (rc {res.returncode}): {res.stderr[-3000:]}")
    return res.returncode, data, res.stderr


def _checks(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in data["checks"]}


def _scratch(sb: Sandbox) -> Path:
    return sb.state_dir / "scratch"


def _leftovers(sb: Sandbox) -> list[Path]:
    return sorted(_scratch(sb).glob("drill-*")) if _scratch(sb).exists() else []


@pytest.fixture(scope="module")
def drill_stack(ready_stack: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    """A database 'shop' with 1000 orders, a fresh full backup, then marker rows and archived WAL after it."""
    sb = ready_stack
    sb.psql("drop database if exists shop")
    sb.psql("create database shop")
    sb.psql("create table orders(id bigint primary key, sku text not null, note text)", db="shop")
    sb.psql("insert into orders select g, 'SKU-' || g % 50, repeat('x', g % 3000) from generate_series(1, 1000) g",
            db="shop")
    conf = sb.write_opsd_conf(tmp_path_factory.mktemp("drill") / "opsd.toml")
    assert opsd(conf, "setup").returncode == 0
    res = opsd(conf, "backup", "--type", "full")
    assert res.returncode == 0, res.stderr
    for _ in range(3):
        _beat(conf, 2)
        switch_and_wait(sb)
    return sb


def test_healthy_drill_passes_every_check_records_timings_and_adds_nothing_to_the_repository(
        drill_stack: Sandbox, tmp_path: Path) -> None:
    sb = drill_stack
    conf = _conf(sb, tmp_path, "ok.toml", verify_jobs=3)
    wal_before, backups_before = archived_wal(sb), [b["label"] for b in repo_info(sb)["backup"]]
    rc, data, err = _drill(conf, "--target", "latest")
    assert rc == 0, err
    checks = _checks(data)
    assert data["passed"] is True and data["failed_checks"] == []
    for name in ("plan", "restore", "recovery", "recovery.target", "heartbeat", "amcheck", "readable",
                 "smoke.orders-count", "rto", "rpo"):
        assert checks[name]["status"] == "ok", checks[name]
    hb = checks["heartbeat"]["details"]
    assert hb["compared_with"] == "primary" and hb["missing_rows"] == 0 and hb["rows_after_target"] == 0
    assert hb["expected_rows"] >= 3  # the rows within 1s before T are borderline (may commit after T)
    assert checks["amcheck"]["details"]["btree_indexes"] > 0 and checks["amcheck"]["details"]["databases"] >= 3
    assert checks["readable"]["details"]["bytes"] > 1_000_000  # the orders' notes, read in full
    for name in ("amcheck", "readable"):  # on three connections at once, and no relation lost on the way
        d = checks[name]["details"]
        assert d["jobs"] == 3 and d["done"] == d["relations"] > 10 and d["rate"] > 0, d
    phases = data["phases"]
    for key in ("plan_seconds", "restore_seconds", "recovery_seconds", "verify_seconds", "total_seconds",
                "restore_rate", "replay_rate", "restore_bytes"):
        assert phases[key] > 0, key
    assert data["rto_seconds"] == pytest.approx(
        phases["plan_seconds"] + phases["restore_seconds"] + phases["recovery_seconds"], abs=0.01)
    assert data["rpo_seconds"] > 0
    # the scratch instance: its own port and directory, and gone afterwards
    assert data["port"] == sb.drill_port != sb.pg_port
    assert Path(data["scratch"]).parent == _scratch(sb) and not Path(data["scratch"]).exists()
    assert _leftovers(sb) == []
    # the promoted copy wrote WAL on a new timeline: none of it reached the repository
    time.sleep(1)
    assert archived_wal(sb) == wal_before
    assert [b["label"] for b in repo_info(sb)["backup"]] == backups_before
    # results: the history, list, show, and check's restorability
    listed = json.loads(opsd(conf, "drill", "list", "--json").stdout)
    assert listed[0]["outcome"] == "ok" and listed[0]["target"] == data["target"]
    shown = opsd(conf, "drill", "show", str(listed[0]["id"]))
    assert shown.returncode == 0 and "PASSED" in shown.stdout and "amcheck" in shown.stdout
    check = json.loads(opsd(conf, "check", "--json").stdout)
    assert {r["name"]: r["status"] for r in check["results"]}["restorability"] == "ok"


def test_time_target_between_marker_rows(drill_stack: Sandbox, tmp_path: Path) -> None:
    sb = drill_stack
    conf = _conf(sb, tmp_path, "pitr.toml", **FAST)
    _beat(conf, 2)
    time.sleep(1.2)
    target = sb.psql("select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
    time.sleep(1.2)
    _beat(conf, 2)
    switch_and_wait(sb)
    rc, data, err = _drill(conf, "--target", target)
    assert rc == 0, err
    hb = _checks(data)["heartbeat"]
    assert hb["status"] == "ok" and hb["details"]["rows_after_target"] == 0 and hb["details"]["missing_rows"] == 0
    newest = sb.psql(f"select max(written_at) from opsd.heartbeat where written_at <= '{target}'")
    assert hb["details"]["newest_row"].startswith(newest[:19])  # the newest row at or before T, not a later one


def test_false_smoke_query_fails_the_drill_naming_it(drill_stack: Sandbox, tmp_path: Path) -> None:
    conf = _conf(drill_stack, tmp_path, "smoke.toml", expect="999999", **FAST)
    rc, data, _ = _drill(conf, "--target", "latest")
    assert rc == 1
    assert data["failed_checks"] == ["smoke.orders-count"]
    assert "returned '1000', expected '999999'" in _checks(data)["smoke.orders-count"]["message"]
    assert _leftovers(drill_stack) == []
    check = json.loads(opsd(conf, "check", "--json").stdout)
    assert {r["name"]: r["status"] for r in check["results"]}["restorability"] == "critical"


@pytest.fixture
def object_swap(drill_stack: Sandbox) -> Iterator[Any]:
    """Damage objects in the bucket; put the original bytes back afterwards, whatever happens."""
    s3 = drill_stack.s3_client()
    saved: dict[str, bytes] = {}

    def damage(key: str, body: bytes | None) -> None:
        saved[key] = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        if body is None:
            s3.delete_object(Bucket=BUCKET, Key=key)
        else:
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    yield s3, damage
    for key, body in saved.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def _keys(s3: Any, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def test_corrupted_backup_file_fails_verify_and_the_drill(drill_stack: Sandbox, tmp_path: Path,
                                                          object_swap: Any) -> None:
    sb = drill_stack
    s3, damage = object_swap
    conf = _conf(sb, tmp_path, "corrupt.toml", **FAST)
    label = repo_info(sb)["backup"][-1]["label"]
    oid = sb.psql("select oid from pg_database where datname = 'shop'")
    rel = sb.psql("select pg_relation_filenode('orders')", db="shop")
    key = next(k for k in _keys(s3, f"repo/backup/{sb.stanza}/{label}/pg_data/base/{oid}/")
               if k.rsplit("/", 1)[-1].split(".")[0] == rel)
    damage(key, b"not a zstd frame" * 64)
    res = opsd(conf, "verify", "--json")
    assert res.returncode == 1
    out = json.loads(res.stdout)
    assert out["status"] == "error" and any(f"base/{oid}/{rel}" in d for d in out["damaged"])
    assert f"backup {label}" in res.stderr
    rc, data, _ = _drill(conf, "--target", "latest")
    assert rc == 1 and data["failed_checks"] == ["restore"]
    assert f"base/{oid}/{rel}" in _checks(data)["restore"]["message"]
    assert _leftovers(sb) == []


def test_missing_wal_segment_fails_the_drill_naming_it(drill_stack: Sandbox, tmp_path: Path, object_swap: Any
                                                       ) -> None:
    sb = drill_stack
    s3, damage = object_swap
    conf = _conf(sb, tmp_path, "gap.toml", **FAST)
    backup = repo_info(sb)["backup"][-1]
    segments = [k for k in _keys(s3, f"repo/archive/{sb.stanza}/") if k.endswith(".zst")
                and k.rsplit("/", 1)[-1][:24] > backup["archive"]["stop"]]
    assert len(segments) >= 3
    victim = segments[len(segments) // 2]
    damage(victim, None)
    rc, data, _ = _drill(conf, "--target", "latest")
    assert rc == 1
    assert "archive.continuity" in data["failed_checks"]
    assert victim.rsplit("/", 1)[-1][:24] in _checks(data)["archive.continuity"]["message"]


def _start_drill(conf: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "opsd", "--config", str(conf), "drill", "run", "--target",
                             "latest"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _postmaster(d: Path) -> int | None:
    try:
        pid = int((d / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _no_trace_of(sb: Sandbox, dirs: list[Path]) -> None:
    assert _leftovers(sb) == [] and not any(d.exists() for d in dirs)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert str(_scratch(sb)) + "/drill-" not in ps
    assert not list((_scratch(sb) / "work" / "run").glob(".s.PGSQL.*"))  # no socket: no port held


def test_killed_drills_are_named_by_check_and_cleaned_to_the_last_process_port_and_file(
        drill_stack: Sandbox, tmp_path: Path) -> None:
    """SIGKILL of 'opsd drill' while it restores and once its copy runs: each copy is an orphan by its record,
    'opsd check' names it with the command that cleans it, and 'opsd scratch clean' leaves no process, socket
    or file. Beside production the copy runs at nice 10."""
    sb = drill_stack
    conf = _conf(sb, tmp_path, "kill.toml")
    proc = _start_drill(conf)
    try:
        restoring = wait_until(lambda: next((d for d in _leftovers(sb) if any(d.iterdir())), None), timeout=60,
                               what="the drill's restore to start writing")
        busy = opsd(conf, "drill", "run", "--target", "latest")
        assert busy.returncode == 4 and "already running" in busy.stderr
    finally:
        _kill(proc)
    # the next copy is refused nothing: it removes the orphan first (its record names it)
    proc = _start_drill(conf)
    try:
        running = wait_until(lambda: next((d for d in _leftovers(sb) if _postmaster(d)), None), timeout=120,
                             what="the drill's copy to run")
        assert not restoring.exists()
        pm = _postmaster(running)
        assert pm is not None and _nice(pm) == 10  # beside production: low priority
    finally:
        _kill(proc)
    assert _postmaster(running), "the copy's server outlived its killed job (this test needs that)"
    check = opsd(conf, "check")
    assert check.returncode == 1 and "leftover copy of production" in check.stdout, check.stdout
    assert str(running) in check.stdout and "opsd scratch clean" in check.stdout
    listed = opsd(conf, "scratch", "list", "--json")
    assert listed.returncode == 1 and [c["state"] for c in json.loads(listed.stdout)] == ["orphan"]
    res = opsd(conf, "scratch", "clean")
    assert res.returncode == 0 and str(running) in res.stdout, res.stderr
    _no_trace_of(sb, [restoring, running])
    assert opsd(conf, "scratch", "list").stdout.strip() == "no copy of production on this host"


def test_a_kept_drill_stays_until_its_expiry_beside_the_next_one(drill_stack: Sandbox, tmp_path: Path) -> None:
    sb = drill_stack
    conf = _conf(sb, tmp_path, "keep.toml", **FAST)
    rc, kept, err = _drill(conf, "--target", "latest", "--keep", "--keep-for", "3s")
    assert rc == 0, err
    assert kept["kept"] is True and _postmaster(Path(kept["scratch"]))
    listed = json.loads(opsd(conf, "scratch", "list", "--json").stdout)
    assert [(c["state"], c["port"]) for c in listed] == [("kept", kept["port"])]
    time.sleep(3.5)
    check = opsd(conf, "check")
    assert "leftover copy of production" in check.stdout and "expired" in check.stdout, check.stdout
    rc, data, err = _drill(conf, "--target", "latest")  # the expired copy is stopped and reported
    assert rc == 0, err
    assert data["cleaned"] == [kept["scratch"]]
    _no_trace_of(sb, [Path(kept["scratch"])])


def test_the_daemon_removes_a_killed_drills_copy_when_it_starts(drill_stack: Sandbox, tmp_path: Path) -> None:
    sb = drill_stack
    conf = _conf(sb, tmp_path, "daemon.toml", **FAST)
    proc = _start_drill(conf)
    try:
        running = wait_until(lambda: next((d for d in _leftovers(sb) if _postmaster(d)), None), timeout=120,
                             what="the drill's copy to run")
    finally:
        _kill(proc)
    daemon = subprocess.Popen([sys.executable, "-m", "opsd", "--config", str(conf), "daemon"], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_until(lambda: not running.exists(), timeout=60, what="the daemon to remove the orphaned copy")
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
    assert b"copy.leftover" in err and str(running).encode() in err
    _no_trace_of(sb, [running])


def test_drill_host_verifies_from_the_repository_alone(drill_stack: Sandbox, tmp_path: Path) -> None:
    sb = drill_stack
    conf = sb.write_opsd_conf(tmp_path / "drillhost.toml", drill={"stanzas": [sb.stanza], **FAST},
                              extra=SMOKE.format(expect="1000"))
    text = conf.read_text().replace('run_as = "postgres"', 'run_as = "postgres"\nrole = "drill"')
    conf.write_text(text.replace(f"port = {sb.pg_port}", "port = 1"))  # no primary to talk to
    rc, data, err = _drill(conf, "--target", "latest")
    assert rc == 0, err
    hb = _checks(data)["heartbeat"]
    assert hb["status"] == "ok" and hb["details"]["compared_with"] == "restored copy only (no primary)"
    res = opsd(conf, "check", "--json")
    names = [r["name"] for r in json.loads(res.stdout)["results"]]
    assert "postgres" not in names and "repository" in names and "restorability" in names
    status = opsd(conf, "status").stdout.splitlines()
    assert "disabled" in next(line for line in status if line.startswith("backup-full"))


def test_latest_stops_where_the_plan_said_while_the_primary_keeps_writing(drill_stack: Sandbox,
                                                                         tmp_path: Path) -> None:
    """A target at the last archived commit is pinned to that transaction: WAL archived while the drill restores
    and recovers (marker rows every 0.3 s, a WAL switch every second) is never replayed past it."""
    sb = drill_stack
    conf = _conf(sb, tmp_path, "busy.toml", **FAST)
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            sb.psql("insert into opsd.heartbeat default values")
            n += 1
            if n % 3 == 0:
                sb.psql("select pg_switch_wal()")
            time.sleep(0.3)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        for _ in range(3):
            rc, data, err = _drill(conf, "--target", "latest")
            checks = _checks(data)
            assert rc == 0, f"{data.get('target')}: {[c for c in data['checks'] if c['status'] != 'ok']} {err[-500:]}"
            assert checks["heartbeat"]["status"] == "ok" and checks["heartbeat"]["details"]["rows_after_target"] == 0
            assert checks["recovery.target"]["status"] == "ok"
            assert "recovery stops right after it" in checks["plan"]["message"]  # pinned to the commit's xid
    finally:
        stop.set()
        thread.join()


def test_full_reads_are_server_side_for_a_superuser_and_come_to_the_client_otherwise(stack: Sandbox) -> None:
    """The drill's full read of a table: a superuser's COPY to /dev/null on the server, else (no
    pg_write_server_files) the rows through the client; both read every row and fail on an unreadable one."""
    import psycopg

    from opsd.db.drill_reads import read_relation
    from opsd.errors import NotChecked

    sb = stack
    sb.psql("drop table if exists reads_t; drop role if exists opsd_reads_probe; "
            "create table reads_t as select g as id, repeat('x', 3000) as pad from generate_series(1, 500) g; "
            "create role opsd_reads_probe login; grant select on reads_t to opsd_reads_probe; "
            "create function reads_boom(int) returns int language plpgsql as "
            "$$ begin if $1 = 250 then raise exception 'bad tuple'; end if; return $1; end $$; "
            "create view reads_v as select reads_boom(id) as id from reads_t")
    try:
        got = {}
        for user in ("postgres", "opsd_reads_probe"):
            with psycopg.connect(host=str(sb.socket_dir), port=sb.pg_port, user=user, dbname="postgres",
                                 autocommit=True) as conn:
                got[user] = read_relation(conn, "reads_t")
        assert got["postgres"] == int(sb.psql("select pg_table_size('reads_t')"))  # read on the server: its size
        assert got["opsd_reads_probe"] > 500 * 3000  # every row, pad decompressed, through the client
        # an error mid-read names the relation; the owner's code raising says nothing about the data: unchecked
        unchecked = pytest.raises(NotChecked, match=r"reading reads_v could not run \(SQLSTATE P0001\)")
        with psycopg.connect(host=str(sb.socket_dir), port=sb.pg_port, user="postgres", dbname="postgres",
                             autocommit=True) as conn, unchecked:
            read_relation(conn, "reads_v")
    finally:
        sb.psql("drop view if exists reads_v; drop function if exists reads_boom(int); drop table reads_t; "
                "drop role opsd_reads_probe")


def test_a_copy_beside_production_keeps_the_floor_free_and_is_stopped_below_it(drill_stack: Sandbox,
                                                                              tmp_path: Path) -> None:
    """The scratch area shares the sandbox primary's filesystem: a floor larger than the free space refuses the
    plan; a floor the drill fits under is watched, and space taken while the copy lives stops it."""
    sb = drill_stack
    st = os.statvfs(sb.state_dir)
    free = st.f_bavail * st.f_frsize
    refused = _conf(sb, tmp_path, "floor.toml", space_floor=free + 2**30, space_floor_percent=0, **FAST)
    rc, data, err = _drill(refused, "--target", "latest")
    assert rc == 1 and "must stay free" in _checks(data)["plan"]["message"], err[-2000:]
    assert _leftovers(sb) == []

    slow = '\n[[drill.smoke_queries]]\nname = "slow"\nsql = "SELECT pg_sleep(30) IS NOT NULL"\n'
    conf = _conf(sb, tmp_path, "watched.toml", space_floor=free - 3 * 2**29, space_floor_percent=0, **FAST)
    conf.write_text(conf.read_text() + slow)
    ballast = sb.state_dir / "ballast"
    proc = subprocess.Popen([sys.executable, "-m", "opsd", "--config", str(conf), "drill", "run", "--target",
                             "latest", "--json"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: next((d for d in _leftovers(sb) if _postmaster(d)), None), timeout=120,
                   what="the drill's copy to run")
        subprocess.run(["fallocate", "-l", str(2**31), str(ballast)], check=True)  # production's disk fills up
        out, err_b = proc.communicate(timeout=120)
    finally:
        ballast.unlink(missing_ok=True)
        if proc.poll() is None:
            proc.kill()
    data = json.loads(out)
    assert proc.returncode == 1, err_b[-2000:]
    space = _checks(data)["scratch.space"]
    assert space["status"] == "critical" and "stopped to protect production" in space["message"]
    assert _leftovers(sb) == []
