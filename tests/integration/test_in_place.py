"""An in-place restore on a cluster of its own (never the session's primary, so it runs in any order): refused
while the cluster runs, then, once it is stopped, the old data directory is moved aside, not deleted, archiving
is preserved (this is production), and the cluster comes back with the data of the backup."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from opsd_sandbox import Sandbox
from tests.conftest import opsd
from tests.integration.helpers import Cluster, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(stack: Sandbox) -> Iterator[Cluster]:
    """Rows 1..3 in the full backup, rows 4..5 only in the WAL after it."""
    c = Cluster(stack, "inplace")
    c.initdb()
    try:
        res = opsd(c.conf, "setup", "--restart")
        assert res.returncode == 0, res.stderr
        c.psql("create table marker(id int primary key)")
        c.psql("insert into marker select generate_series(1, 3)")
        res = opsd(c.conf, "backup", "--type", "full")
        assert res.returncode == 0, res.stderr
        c.psql("insert into marker select generate_series(4, 5)")
        c.switch_and_wait()
        yield c
    finally:
        c.stop_quietly()


def test_in_place_refuses_a_running_cluster_and_keeps_the_old_directory(cluster: Cluster) -> None:
    c = cluster
    res = opsd(c.conf, "restore", "--type", "immediate", "--in-place", "--yes")
    assert res.returncode == 5 and "stop it first" in res.stderr, res.stderr
    assert (c.pgdata / "PG_VERSION").exists() and c.psql("select count(*) from marker") == "5"

    c.ctl("stop", "-m", "fast")
    try:
        res = opsd(c.conf, "restore", "--type", "immediate", "--in-place", "--yes")
        assert res.returncode == 0, res.stderr
        aside = sorted(c.pgdata.parent.glob(f"{c.pgdata.name}.before-restore-*"))
        assert len(aside) == 1 and (aside[0] / "PG_VERSION").exists()
        assert (c.pgdata / "PG_VERSION").exists() and (c.pgdata / "recovery.signal").exists()
        auto = (c.pgdata / "postgresql.auto.conf").read_text()
        assert "archive_mode = 'off'" not in auto  # in place: archiving preserved, this is production
    finally:
        c.ctl("start")
    wait_until(lambda: c.psql("select not pg_is_in_recovery()") == "t", timeout=60, what="the cluster promoted")
    assert c.psql("select count(*) from marker") == "3"  # the backup's rows: --type immediate stops at its end
