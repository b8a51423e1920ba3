"""A stanza that went through 'pgbackrest stanza-upgrade' (here: the cluster was re-created, so a new system id;
archive ids 15-1 and 15-2 both number their WAL from segment 1): no fake gaps, a window per database generation,
and restores and drills work. Its pgbackrest.conf turns on asynchronous archive-get only in [global:archive-get]:
a side restore and a drill still get a spool of their own, never production's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, free_port, mkdir_pg, run
from opsd_sandbox.stack import PG_BIN
from tests.conftest import opsd
from tests.integration.helpers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STANZA = "upgraded"


class Cluster:
    def __init__(self, sb: Sandbox) -> None:
        self.sb, self.pgdata, self.port = sb, sb.root / "upg-data", free_port()
        self.state = sb.root / "upg-state"
        self.spool = sb.root / "pgbr" / "spool-upg"
        self.pgbr = sb.write_pgbackrest_conf(path=sb.root / "pgbackrest-upg.conf", stanza=STANZA, pg_path=self.pgdata,
                                             pg_port=self.port)
        with self.pgbr.open("a") as f:
            f.write(f"[global:archive-get]\narchive-async=y\nspool-path={self.spool}\n")
        mkdir_pg(self.spool)
        mkdir_pg(self.state, 0o750)
        self.conf = sb.root / "opsd-upg.toml"
        self.conf.write_text(sb.opsd_toml(pgbackrest_conf=self.pgbr, stanza=STANZA, data_dir=self.pgdata,
                                          pg_port=self.port, state_dir=self.state))

    def initdb(self) -> None:
        mkdir_pg(self.pgdata, 0o700)
        run(as_pg([str(PG_BIN / "initdb"), "-D", str(self.pgdata), "-U", "postgres", "--auth=trust"]))
        with (self.pgdata / "postgresql.conf").open("a") as f:
            f.write(f"port = {self.port}\nunix_socket_directories = '{self.sb.socket_dir}'\nlisten_addresses = ''\n"
                    "fsync = off\n")
        self.ctl("start")

    def ctl(self, action: str) -> None:
        run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.sb.root / "pglog" / "upg.log"),
                   "-w", action]))

    def psql(self, sql: str) -> str:
        return run(as_pg([str(PG_BIN / "psql"), "-h", str(self.sb.socket_dir), "-p", str(self.port), "-XAtc",
                          sql])).stdout.strip()

    def pgbackrest(self, *args: str) -> str:
        return run(as_pg(["pgbackrest", f"--config={self.pgbr}", f"--stanza={STANZA}", *args])).stdout

    def archived_max(self) -> str:
        info = json.loads(self.pgbackrest("--output=json", "info"))[0]
        return max((a["max"] or "") for a in info["archive"])


@pytest.fixture(scope="module")
def upgraded(stack: Sandbox) -> Iterator[Cluster]:
    c = Cluster(stack)
    c.initdb()
    try:
        assert opsd(c.conf, "setup", "--restart").returncode == 0
        assert opsd(c.conf, "backup", "--type", "full").returncode == 0
        c.ctl("stop")
        run(["rm", "-rf", str(c.pgdata)])
        c.initdb()  # a new cluster: new system id, the same major
        assert opsd(c.conf, "setup", "--restart").returncode == 1  # stanza mismatch until the upgrade
        c.pgbackrest("stanza-upgrade")
        res = opsd(c.conf, "setup")
        assert res.returncode == 0, res.stderr
        assert opsd(c.conf, "backup", "--type", "full").returncode == 0
        c.psql("create table m(id int)")
        for i in range(3):
            c.psql(f"insert into m values ({i})")
        seg = c.psql("select pg_walfile_name(pg_current_wal_lsn())")
        c.psql("select pg_switch_wal()")
        wait_until(lambda: c.archived_max() >= seg, timeout=60, what=f"{seg} archived")
        yield c
    finally:
        run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(c.pgdata), "-m", "immediate", "-w", "stop"]), check=False)


def test_no_fake_gaps_and_a_window_per_database_generation(upgraded: Cluster) -> None:
    ids = sorted(a["id"] for a in json.loads(upgraded.pgbackrest("--output=json", "info"))[0]["archive"])
    assert ids == ["15-1", "15-2"]
    res = opsd(upgraded.conf, "window", "--json")
    assert res.returncode == 0, res.stderr
    w = json.loads(res.stdout)
    assert w["gaps"] == [] and len(w["intervals"]) == 2
    newest = max(w["intervals"], key=lambda i: i["latest"]["time"])
    assert "pg_waldump" in newest["latest"]["source"]  # read from the current archive id's WAL


def test_drill_and_side_restore_use_a_spool_of_their_own(upgraded: Cluster) -> None:
    res = opsd(upgraded.conf, "drill", "run", "--target", "latest", "--json", timeout=600)
    data = json.loads(res.stdout)
    assert res.returncode == 0, [c for c in data["checks"] if c["status"] != "ok"]
    dry = opsd(upgraded.conf, "restore", "--type", "immediate", "--target-dir", str(upgraded.sb.root / "upg-dry"),
               "--port", str(free_port()), "--dry-run", "--json")
    plan = json.loads(dry.stdout)["plan"]  # no restore ran here yet: the estimate comes from the drill
    assert plan["estimate_seconds"] is not None and "1 measured drill(s)" in plan["estimate_source"]
    dest = upgraded.sb.root / "upg-side"
    res = opsd(upgraded.conf, "restore", "--type", "immediate", "--target-dir", str(dest), "--port", str(free_port()))
    assert res.returncode == 0, res.stderr
    auto = Path(dest / "postgresql.auto.conf").read_text()
    command = next(line for line in auto.splitlines() if line.startswith("restore_command"))
    assert f"--spool-path={upgraded.state / 'restores' / 'spool'}" in command
    assert str(upgraded.spool) not in command
