"""The repository's disk fills up (issue 14, fault 2), on a posix repository on a small tmpfs: the backup fails
cleanly with the reason and nothing partial is listed, archiving's failure turns check critical, and once
space returns the backlog drains with no gap in the WAL and the next backup succeeds."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import mkdir_pg
from tests.conftest import opsd
from tests.integration.helpers import Cluster, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.slow]


@pytest.fixture
def small_repo(stack: Sandbox) -> Iterator[tuple[Cluster, Any]]:
    repo = stack.root / "small-repo"
    repo.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m,mode=0755", "tmpfs", str(repo)], check=True)
    mkdir_pg(repo, 0o750)
    c = Cluster(stack, "diskfull")
    text = c.pgbr.read_text()
    s3 = [ln for ln in text.splitlines() if ln.startswith(("repo1-", "repo1-s3"))]
    text = "\n".join(ln for ln in text.splitlines() if ln not in s3)
    # job-retry=0: the backup fails at its first write that finds the disk full, not after two more tries of
    # that file (the second 15 s later); the fault and its report are the same, only sooner. (Known flake, with or
    # without retries: a write the full disk cuts short is reported without errno, "unable to write '<file>'"
    # with no "[28] No space left on device", and the "space" assertion below fails; seen in 2 runs of 6 here.)
    c.pgbr.write_text(text.replace("[global]", f"[global]\nrepo1-type=posix\nrepo1-path={repo}\n"
                                               "repo1-retention-full=2\njob-retry=0", 1))
    c.conf.write_text(c.conf.read_text() + '\n[check]\nmax_ready_age = "5s"\narchive_timeout = "5s"\n')
    c.initdb()
    try:  # the data is there before archiving starts: the backup's copy, not the WAL, fills the disk
        c.psql("create table bulk as select g, md5(g::text) || md5((g * 3)::text) || md5((g * 7)::text) as pad "
               "from generate_series(1, 300000) g")  # more than 12 MiB even compressed
        res = opsd(c.conf, "setup", "--restart")
        assert res.returncode == 0, res.stderr
        yield c, repo
    finally:
        c.stop_quietly()
        subprocess.run(["umount", "-l", str(repo)], check=False)


def _results(c: Cluster) -> dict[str, str]:
    return {r["name"]: r["status"] for r in json.loads(opsd(c.conf, "check", "--json").stdout)["results"]}


def test_a_full_repository_disk(small_repo: tuple[Cluster, Any]) -> None:
    c, repo = small_repo
    res = opsd(c.conf, "backup", "--type", "full")
    assert res.returncode == 1, res.stdout + res.stderr
    line = next(x for x in res.stderr.splitlines() if x.startswith("opsd: error:"))
    assert "pgbackrest backup failed [" in line and ("space" in res.stderr.lower()), res.stderr[-2000:]
    assert c.labels() == []  # nothing partial is listed
    for _ in range(3):
        c.psql("select pg_switch_wal() from (select txid_current()) t")
    wait_until(lambda: _results(c).get("archive.archiver") == "critical", timeout=90,
               what="check to see archiving failing")

    subprocess.run(["mount", "-o", "remount,size=512m", str(repo)], check=True)  # space returns
    # a record to switch away from: the segment is empty after check's own switch, and a switch of an empty
    # segment does nothing, so the archiver (resting after three failures) would drain the backlog only at its
    # 60 s wake-up; a new segment wakes it at once, as production's next WAL would
    c.psql("select pg_logical_emit_message(false, 'opsd-test', 'space returned')")
    c.switch_and_wait()  # the backlog drains
    wait_until(lambda: _results(c).get("archive.archiver") == "ok", timeout=90, what="the archiver to recover")
    assert opsd(c.conf, "backup", "--type", "full").returncode == 0
    window = json.loads(opsd(c.conf, "window", "--json").stdout)
    assert window["gaps"] == [] and window["intervals"], window
