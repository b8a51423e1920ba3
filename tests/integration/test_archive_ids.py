"""A stanza that went through 'pgbackrest stanza-upgrade' (here: the cluster was re-created, so a new system id;
archive ids 15-1 and 15-2 both number their WAL from segment 1): no fake gaps, a window per database generation,
and restores and drills work. Its pgbackrest.conf turns on asynchronous archive-get only in [global:archive-get]:
a side restore and a drill still get a spool of their own, never production's."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import free_port, mkdir_pg, run
from opsd_sandbox.stack import PG_BIN
from tests.conftest import opsd
from tests.integration.helpers import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STANZA = "upgraded"


class Upgraded(Cluster):
    """Its pgbackrest.conf turns on asynchronous archive-get in [global:archive-get], with a spool of its own."""

    def __init__(self, sb: Sandbox) -> None:
        super().__init__(sb, STANZA)
        self.spool = sb.root / "pgbr" / "spool-upg"
        with self.pgbr.open("a") as f:
            f.write(f"[global:archive-get]\narchive-async=y\nspool-path={self.spool}\n")
        mkdir_pg(self.spool)


@pytest.fixture(scope="module")
def upgraded(stack: Sandbox) -> Iterator[Upgraded]:
    c = Upgraded(stack)
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
        c.switch_and_wait()
        yield c
    finally:
        c.stop_quietly()


def test_no_fake_gaps_and_a_window_per_database_generation(upgraded: Upgraded) -> None:
    ids = sorted(a["id"] for a in json.loads(upgraded.pgbackrest("--output=json", "info"))[0]["archive"])
    assert ids == ["15-1", "15-2"]
    res = opsd(upgraded.conf, "window", "--json")
    assert res.returncode == 0, res.stderr
    w = json.loads(res.stdout)
    assert w["gaps"] == [] and len(w["intervals"]) == 2
    newest = max(w["intervals"], key=lambda i: i["latest"]["time"])
    assert "pg_waldump" in newest["latest"]["source"]  # read from the current archive id's WAL
    # remembered for the current archive id only, and for the cluster (system id) that wrote it
    info = json.loads(upgraded.pgbackrest("--output=json", "info"))[0]
    current = max(info["db"], key=lambda d: d["id"])["system-id"]
    cache = upgraded.state / "walcache" / f"segments-{STANZA}-15-2-{current}.json"
    assert cache.exists() and not list((upgraded.state / "walcache").glob(f"segments-{STANZA}-15-1-*.json"))
    assert all(k.startswith("0000000") for k in json.loads(cache.read_text())["segments"])
    again = opsd(upgraded.conf, "window", "--json")  # from the cache: the same window
    assert again.returncode == 0 and json.loads(again.stdout) == w


def test_drill_and_side_restore_use_a_spool_of_their_own(upgraded: Upgraded) -> None:
    res = opsd(upgraded.conf, "drill", "run", "--target", "latest", "--json", timeout=600)
    data = json.loads(res.stdout)
    assert res.returncode == 0, [c for c in data["checks"] if c["status"] != "ok"]
    dry = opsd(upgraded.conf, "restore", "--type", "immediate", "--target-dir", str(upgraded.sb.root / "upg-dry"),
               "--port", str(free_port()), "--dry-run", "--json")
    plan = json.loads(dry.stdout)["plan"]  # no restore ran here yet: the estimate comes from the drill
    assert plan["estimate_seconds"] is not None and "1 measured drill(s)" in plan["estimate_source"]
    dest = upgraded.sb.root / "upg-side"
    # segments of the same names from the old archive id (here: garbage) left in this destination's spool by an
    # earlier restore: asynchronous archive-get would hand them to recovery before asking the repository
    spool = upgraded.state / "restores" / "spool" / hashlib.sha256(str(dest).encode()).hexdigest()[:12]
    stale = spool / "archive" / STANZA / "in"
    mkdir_pg(stale)
    for n in range(1, 17):
        (stale / f"0000000100000000{n:08X}").write_bytes(b"stale" * 100)
    run(["chown", "-R", "postgres:postgres", str(upgraded.state / "restores")])  # as opsd would have left it
    res = opsd(upgraded.conf, "restore", "--type", "immediate", "--target-dir", str(dest), "--port", str(free_port()),
               "--start", timeout=300)
    assert res.returncode == 0, res.stderr
    # promoted: the recovery settings are gone from postgresql.auto.conf; the restore's argv (logged) had them
    command = next(line for line in res.stderr.splitlines() if "--recovery-option=restore_command=" in line)
    assert f"--spool-path={spool} " in command and "--archive-async" in command  # WAL fetched ahead of replay
    assert f"--archive-get-queue-max={1024**3}" in command and "--process-max=" in command
    assert str(upgraded.spool) not in command
    assert not any(p.read_bytes().startswith(b"stale") for p in stale.glob("0*"))
    run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(dest), "-m", "immediate",
         "stop"], check=False)
