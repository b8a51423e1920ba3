"""The 3 a.m. restore on a Debian-layout cluster (pg_createcluster; config in /etc/postgresql, peer authentication):
opsd never moves a running cluster, even when pg_ctl says it is stopped; an in-place restore starts the cluster
with pg_ctlcluster and its own config; a later point in time that exists on two timelines is planned on one named
timeline; and a side restore of the lost primary becomes the new primary with 'opsd setup --restart'.

One cluster for the module, in stages that are module fixtures, each building on the one before (in place ->
two timelines -> the primary lost): a test asks for the stage it checks and asserts on what the stage recorded,
so the tests run in any order. Tests that need the cluster running ask for ``online``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsd import settings as settings_mod
from opsd.actions.restore.plan import Request
from opsd.actions.restore.run import execute
from opsd.actions.restore.service import plan_restore
from opsd.context import build
from opsd.errors import RefusedError
from opsd_sandbox import Sandbox
from opsd_sandbox.debian import SOCKET_DIR, DebianCluster
from opsd_sandbox.procs import as_pg, free_port, mkdir_pg, run
from tests.conftest import opsd
from tests.integration.helpers import PG_BIN, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def deb(stack: Sandbox) -> Iterator[DebianCluster]:
    dc = DebianCluster(stack).create()
    try:
        res = opsd(dc.opsd_conf, "setup", "--restart")  # through peer authentication: no pg_hba.conf edit
        assert res.returncode == 0, res.stderr
        mkdir_pg(_tablespace(dc), 0o700)  # in the backup: every restore of it maps or moves it
        dc.psql(f"create tablespace deb_ts location '{_tablespace(dc)}'")
        assert opsd(dc.opsd_conf, "backup", "--type", "full").returncode == 0
        yield dc
    finally:
        dc.drop()
        for aside in Path("/var/lib/postgresql/15").glob(f"{dc.name}.before-restore-*"):
            shutil.rmtree(aside, ignore_errors=True)


@pytest.fixture
def online(deb: DebianCluster) -> DebianCluster:
    """The cluster running (the lost-primary stage leaves it stopped)."""
    if deb.status() != "online":
        deb.ctl("start")
    return deb


def _tablespace(dc: DebianCluster) -> Path:
    return dc.sb.root / f"ts-{dc.name}"


def _now(dc: DebianCluster) -> str:
    return dc.psql("select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")


def _archived(dc: DebianCluster) -> list[str]:
    res = run(as_pg(["pgbackrest", f"--config={dc.pgbackrest_conf}", f"--stanza={dc.stanza}", "--output=json",
                     "--recurse", "repo-ls", f"archive/{dc.stanza}"]))
    return sorted(k.rsplit("/", 1)[-1] for k, v in json.loads(res.stdout).items() if v["type"] == "file")


def _stanza_info(dc: DebianCluster) -> dict[str, object]:
    res = run(as_pg(["pgbackrest", f"--config={dc.pgbackrest_conf}", f"--stanza={dc.stanza}", "--output=json",
                     "info"]))
    data: list[dict[str, object]] = json.loads(res.stdout)
    return data[0]


def _switch_and_wait(dc: DebianCluster, port: int | None = None) -> str:
    seg = dc.psql("select pg_walfile_name(pg_current_wal_lsn())", port=port)
    dc.psql("select pg_switch_wal()", port=port)
    wait_until(lambda: seg in " ".join(_archived(dc)), timeout=60, what=f"{seg} archived")
    return seg


def _marker(dc: DebianCluster, rows: range, batch: str) -> None:
    for i in rows:
        dc.psql(f"insert into marker values ({i}, '{batch}')")
        time.sleep(0.05)


def _lying_bin_dir(root: Path) -> Path:
    """PostgreSQL's binaries, except a pg_ctl whose 'status' always says 'not running' (exit 3): what a postmaster
    in another PID namespace looks like."""
    fake = root / "lying-bin"
    fake.mkdir(mode=0o755)
    for b in PG_BIN.iterdir():
        (fake / b.name).symlink_to(b)
    (fake / "pg_ctl").unlink()
    (fake / "pg_ctl").write_text(f'#!/bin/sh\nfor a; do [ "$a" = status ] && exit 3; done\nexec {PG_BIN}/pg_ctl "$@"\n')
    (fake / "pg_ctl").chmod(0o755)
    return fake


def test_a_running_cluster_is_never_moved_even_when_pg_ctl_says_stopped(online: DebianCluster, tmp_path: Path
                                                                        ) -> None:
    deb = online
    conf = tmp_path / "lying.toml"
    lying = _lying_bin_dir(deb.sb.root)
    conf.write_text(deb.opsd_conf.read_text().replace(f'bin_dir = "{PG_BIN}"', f'bin_dir = "{lying}"'))
    res = opsd(conf, "restore", "--type", "immediate", "--in-place", "--yes")
    assert res.returncode == 5, res.stderr
    assert "postmaster.pid names process" in res.stderr and "answers on socket" in res.stderr
    assert "Traceback" not in res.stderr
    assert deb.status() == "online" and (deb.data_dir / "PG_VERSION").exists()
    assert not list(deb.data_dir.parent.glob(f"{deb.name}.before-restore-*"))


def test_the_last_check_under_the_lock_catches_a_cluster_started_after_planning(online: DebianCluster) -> None:
    """The plan was made while the cluster was stopped; it was started again while the confirmation prompt sat
    open: the check under the restore lock refuses, and nothing is moved."""
    deb = online
    ctx = build(settings_mod.load(str(deb.opsd_conf)))
    deb.ctl("stop")
    try:
        plan, _w = plan_restore(ctx, Request(target_type="immediate", dest=deb.data_dir, in_place=True))
        assert not plan.refused, plan.refusals()
    finally:
        deb.ctl("start")
    with pytest.raises(RefusedError, match="refused at the last check before touching"):
        execute(ctx, plan, report=lambda _m: None)
    assert deb.status() == "online" and (deb.data_dir / "PG_VERSION").exists()
    assert not list(deb.data_dir.parent.glob(f"{deb.name}.before-restore-*"))


def test_config_check_refuses_root_and_a_bin_dir_without_postgres(deb: DebianCluster, tmp_path: Path) -> None:
    conf = tmp_path / "bad.toml"
    conf.write_text(deb.opsd_conf.read_text().replace('run_as = "postgres"', 'run_as = "root"')
                    .replace(f'bin_dir = "{PG_BIN}"', f'bin_dir = "{tmp_path}"').replace('probe_io_timeout = "2s"',
                                                                                          'backup_timeout = "0s"')
                    .replace(f"[drill]\nport = {deb.sb.drill_port}", f"[drill]\nport = {deb.port}"))
    res = opsd(conf, "config", "check")
    assert res.returncode == 3
    for expected in ("opsd.run_as: 'root' is root", "postgres.bin_dir: no executable pg_ctl or postgres",
                     "pgbackrest.backup_timeout: must be longer than zero",
                     f"drill.port: {deb.port} is the production port"):
        assert expected in res.stderr, res.stderr


def test_missing_data_dir_and_mount_point_are_refused_in_one_line(deb: DebianCluster, tmp_path: Path) -> None:
    gone = tmp_path / "gone.toml"
    gone.write_text(deb.opsd_conf.read_text().replace(f'data_dir = "{deb.data_dir}"', 'data_dir = "/srv/no-such"'))
    res = opsd(gone, "restore", "--type", "immediate", "--in-place", "--yes", "--dry-run")
    assert res.returncode == 5 and "/srv/no-such does not exist" in res.stderr and "Traceback" not in res.stderr
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)])
    try:
        (mnt / "PG_VERSION").write_text("15\n")
        conf = tmp_path / "mnt.toml"
        conf.write_text(deb.opsd_conf.read_text().replace(f'data_dir = "{deb.data_dir}"', f'data_dir = "{mnt}"'))
        res = opsd(conf, "restore", "--type", "immediate", "--in-place", "--yes", "--dry-run")
        assert res.returncode == 5 and "is a mount point: it cannot be moved aside" in res.stderr
        assert "--delta --force" in res.stderr and (mnt / "PG_VERSION").exists()
    finally:
        run(["umount", str(mnt)], check=False)


def test_config_show_names_the_detected_layout(deb: DebianCluster) -> None:
    res = opsd(deb.opsd_conf, "config", "show", "--json")
    layout = json.loads(res.stdout)["layout"]
    assert layout["kind"] == "debian" and layout["config_file"] == str(deb.config_dir / "postgresql.conf")
    assert f"pg_ctlcluster 15 {deb.name} start" in opsd(deb.opsd_conf, "config", "show").stdout


@pytest.fixture(scope="module")
def in_place(deb: DebianCluster) -> dict[str, str]:
    """Stage 1. Marker rows 1..3, T, rows 4..6 (archived); then the cluster is stopped and restored in place to
    T with --start, its data directory behind a symlink on another path. What the restored cluster shows is
    recorded before any later stage changes it."""
    deb.psql("create table marker(id int primary key, batch text) tablespace deb_ts")
    _marker(deb, range(1, 4), "before")
    t = _now(deb)
    time.sleep(0.3)
    _marker(deb, range(4, 6), "after")
    t2 = _now(deb)  # between rows 5 and 6, on timeline 1 only
    time.sleep(0.3)
    _marker(deb, range(6, 7), "after")
    _switch_and_wait(deb)
    deb.ctl("stop")
    real = deb.sb.root / f"real-{deb.name}"
    shutil.move(str(deb.data_dir), str(real))
    deb.data_dir.symlink_to(real)
    res = opsd(deb.opsd_conf, "restore", "--to-time", t, "--in-place", "--yes", "--start", "--json")
    assert res.returncode == 0, res.stderr
    where = "select pg_tablespace_location(reltablespace) from pg_class where relname = 'marker'"
    seen = {"marker_in": deb.psql(where),
            "status": deb.status(), "config_file": deb.psql("show config_file"),
            "archive_mode": deb.psql("show archive_mode"), "port": deb.psql("show port"),
            "rows": deb.psql("select string_agg(id::text, ',' order by id) from marker"),
            "auto": (real / "postgresql.auto.conf").read_text(), "first_segment": _switch_and_wait(deb),
            "archived": "\n".join(_archived(deb))}
    return {"T": t, "T2": t2, "real": str(real), "out": res.stdout, **seen}


def test_in_place_restore_starts_the_cluster_the_way_it_runs(deb: DebianCluster, in_place: dict[str, str]) -> None:
    out = json.loads(in_place["out"])
    assert out["result"]["state"] == "promoted on timeline 2"
    assert in_place["status"] == "online"  # pg_lsclusters
    assert in_place["config_file"] == str(deb.config_dir / "postgresql.conf")
    assert in_place["archive_mode"] == "on" and in_place["port"] == str(deb.port)
    assert in_place["rows"] == "1,2,3"
    # nothing but recovery settings went into the production data directory, and those are gone again
    real = Path(in_place["real"])
    assert deb.data_dir.is_symlink() and deb.data_dir.resolve() == real
    assert not (real / "postgresql.conf").exists() and not (real / "pg_hba.conf").exists()
    assert "restore_command" not in in_place["auto"] and "recovery_target" not in in_place["auto"]
    # the old directory was moved aside next to the real one, not the symlink renamed
    [aside] = list(real.parent.glob(f"real-{deb.name}.before-restore-*"))
    assert (aside / "PG_VERSION").exists()
    # and so was the tablespace's version directory, in its own location; the restored one is read from there
    ts = _tablespace(deb)
    [ts_aside] = list(ts.glob("PG_15_*.before-restore-*"))
    assert any(ts_aside.rglob("*")) and any((ts / ts_aside.name.split(".")[0]).rglob("*"))
    assert in_place["marker_in"] == str(ts)
    placed = [(t["name"], t["destination"], t["how"]) for t in out["plan"]["tablespaces"]]
    assert placed == [("deb_ts", str(ts), "moved aside")]
    assert out["result"]["tablespaces_moved_aside"] == [str(ts_aside)]
    # the first WAL of the new timeline reaches the repository
    assert in_place["first_segment"].startswith("00000002") and "00000002.history" in in_place["archived"]


@pytest.fixture(scope="module")
def two_timelines(deb: DebianCluster, in_place: dict[str, str]) -> dict[str, object]:
    """Stage 2. A row on timeline 2, then the window, and T2 (on timeline 1 only) restored beside it twice:
    along the newest timeline, and along timeline 1 named."""
    deb.psql("insert into marker values (7, 'timeline 2')")
    _switch_and_wait(deb)
    window = json.loads(opsd(deb.opsd_conf, "window", "--json").stdout)
    shown = opsd(deb.opsd_conf, "window").stdout
    results: dict[str | None, tuple[dict[str, object], str]] = {}
    for timeline in (None, "1"):
        dest, port = deb.sb.root / f"two-tl-{timeline}", free_port()
        extra = ["--target-timeline", timeline] if timeline else []
        res = opsd(deb.opsd_conf, "restore", "--to-time", in_place["T2"], "--target-dir", str(dest), "--port",
                   str(port), "--start", "--json", *extra)
        try:
            assert res.returncode == 0, res.stderr
            plan = json.loads(res.stdout)["plan"]
            results[timeline] = (plan, deb.psql("select string_agg(id::text, ',' order by id) from marker", port=port))
        finally:
            run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(dest), "-m", "immediate", "-w", "stop"]), check=False)
    return {"window": window, "shown": shown, "results": results}


def test_a_time_on_two_timelines_is_planned_on_a_named_one(two_timelines: dict[str, Any]) -> None:
    w = two_timelines["window"]
    assert sorted(i["timeline"] for i in w["intervals"]) == [1, 2]
    assert [(s["timeline"], s["parent"]) for s in w["switches"]] == [(2, 1)]
    assert "switch" in two_timelines["shown"]
    plan, rows = two_timelines["results"][None]
    assert plan["target"]["timeline"] == "2" and rows == "1,2,3"  # along timeline 2: it left timeline 1 at T
    assert any("timelines 1, 2" in v["message"] for v in plan["verdicts"])
    plan, rows = two_timelines["results"]["1"]
    assert plan["target"]["timeline"] == "1" and rows == "1,2,3,4,5"  # timeline 1's abandoned part


def test_a_side_restore_of_the_lost_primary_becomes_the_new_primary(deb: DebianCluster,
                                                                    two_timelines: dict[str, Any]) -> None:
    """Stage 3, last by construction (no stage builds on it): the production primary is lost for good."""
    # the production primary is lost
    deb.psql("insert into marker values (8, 'last')")
    _switch_and_wait(deb)
    deb.ctl("stop")
    # the runbook: the latest recoverable time, a restore beside it, check it, make it the primary
    t = json.loads(opsd(deb.opsd_conf, "window", "--json").stdout)["latest"]["time"]
    dest, port = deb.sb.root / "new-primary", free_port()
    res = opsd(deb.opsd_conf, "restore", "--to-time", t, "--target-dir", str(dest), "--port", str(port), "--start",
               "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["plan"]["recovery"].startswith("pinned: xid")
    assert deb.psql("select max(id) from marker", port=port) == "8"
    assert deb.psql("show archive_mode", port=port) == "off"  # a copy never archives into the repository
    new_pgbr = deb.sb.write_pgbackrest_conf(path=deb.sb.root / "pgbackrest-new.conf", stanza=deb.stanza, pg_path=dest,
                                            pg_port=port, socket_dir=SOCKET_DIR)
    new = deb.write_opsd_conf(deb.sb.root / "new.toml", data_dir=dest, port=port, pgbackrest_conf=new_pgbr,
                              state_dir=deb.state_dir)
    try:
        res = opsd(new, "setup", "--restart")
        assert res.returncode == 0, res.stderr
        assert deb.psql("show archive_mode", port=port) == "on"
        assert str(new_pgbr) in deb.psql("show archive_command", port=port)
        seg = _switch_and_wait(deb, port=port)
        assert seg.startswith("00000003")  # the copy promoted onto timeline 3, and its WAL reaches the repository
        check = opsd(new, "check")
        assert check.returncode == 0, check.stdout + check.stderr
        backup = opsd(new, "backup", "--type", "full", "--json")
        assert backup.returncode == 0, backup.stderr
        assert json.loads(backup.stdout)["label"] == _stanza_info(deb)["backup"][-1]["label"]  # type: ignore[index]
    finally:
        run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(dest), "-m", "immediate", "-w", "stop"]), check=False)
