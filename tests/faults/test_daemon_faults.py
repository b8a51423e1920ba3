"""The daemon killed during its catch-up backup (issue 14, fault 4): what systemd does when the main process
dies (SIGKILL to it and to what is left in its cgroup), then a restart: the killed run is recorded as
interrupted, and exactly one new catch-up runs and succeeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsd.adapters.stores.runs import History
from opsd_sandbox import Sandbox
from tests.conftest import REPO, opsd
from tests.faults.helpers import pids
from tests.integration.helpers import Cluster, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.slow]


@pytest.fixture
def fresh(stack: Sandbox) -> Iterator[Cluster]:
    c = Cluster(stack, "killed")
    c.initdb()
    try:
        assert opsd(c.conf, "setup", "--restart").returncode == 0
        c.psql("create table bulk as select g, md5(g::text) || repeat(md5((g * 7)::text), 8) as pad "
               "from generate_series(1, 400000) g")  # a backup of a few seconds: time to kill the daemon
        yield c
    finally:
        c.stop_quietly()


def _start(conf: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "opsd", "--config", str(conf), "--log-format", "json",
                             "--log-level", "info", "daemon"], stdout=subprocess.DEVNULL, stderr=log.open("wb"),
                            cwd=REPO, start_new_session=True)


def _events(log: Path) -> list[str]:
    out = []
    for line in log.read_text().splitlines():
        try:
            out.append(str(json.loads(line).get("event")))
        except ValueError:
            continue
    return out


def test_a_daemon_killed_during_its_catch_up_catches_up_once_after_restart(fresh: Cluster, tmp_path: Path) -> None:
    conf = fresh.write_conf(tmp_path / "opsd.toml", schedule={"full": "0 3 * * *", "check": ""})
    hist = History(fresh.state, "postgres")
    first = _start(conf, tmp_path / "first.log")
    try:
        backup = f"^pgbackrest --config={fresh.pgbr} .*backup$"
        wait_until(lambda: pids(backup), timeout=90, what="the catch-up backup to start")
        os.killpg(first.pid, signal.SIGKILL)  # the daemon dies...
        for pid in pids(f"pgbackrest --config={fresh.pgbr}"):  # ...and systemd kills what is left in its cgroup
            os.kill(pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert [(r.trigger, r.outcome) for r in hist.runs("backup-full")] == [("catch-up", "running")]

    second = _start(conf, tmp_path / "second.log")
    try:
        wait_until(lambda: [r.outcome for r in hist.runs("backup-full") if r.outcome != "interrupted"] == ["ok"],
                   timeout=180, what="the new catch-up backup")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=120) == 0
    runs = [(r.trigger, r.outcome) for r in reversed(hist.runs("backup-full"))]
    assert runs == [("catch-up", "interrupted"), ("catch-up", "ok")], runs
    assert "history.interrupted_runs" in _events(tmp_path / "second.log")
    assert len(fresh.labels()) == 1
