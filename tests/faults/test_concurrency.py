"""Never two backups at once: opsd's own lock, and pgBackRest's lock held by a backup started by hand."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from opsd.adapters.stores.runs import History
from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg
from tests.conftest import REPO, opsd
from tests.integration.helpers import labels, repo_info, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _lock_holder(sb: Sandbox) -> int | None:
    try:
        return int(json.loads((sb.state_dir / "locks" / "backup.lock").read_text() or "{}").get("pid") or 0)
    except (FileNotFoundError, ValueError):
        return None


def test_second_backup_exits_4_and_leaves_the_first_intact(ready_stack: Sandbox) -> None:
    sb = ready_stack
    before = labels(sb)
    first = subprocess.Popen([sys.executable, "-m", "opsd", "--config", str(sb.opsd_conf), "backup", "--type", "full"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        wait_until(lambda: _lock_holder(sb) == first.pid, timeout=30, what="the first backup to take the lock",
                   interval=0.05)
        second = opsd(sb.opsd_conf, "backup", "--type", "full")
        assert second.returncode == 4, second.stderr
        err = [line for line in second.stderr.splitlines() if line.startswith(("opsd:", "hint:"))]
        assert err[0].startswith("opsd: error: opsd backup --type full already running (pid ")
        assert f"pid {first.pid}" in err[0]
        out, stderr = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, stderr
    after = labels(sb)
    # exactly one new backup (retention-full may expire the oldest one at the same time)
    assert [x for x in after if x not in before] == [after[-1]] and after[-1] in out
    assert not repo_info(sb)["backup"][-1]["error"]
    outcomes = [r.outcome for r in History(sb.state_dir, "postgres").runs("backup-full", limit=2)]
    assert sorted(outcomes) == ["busy", "ok"]


def test_backup_started_by_hand_with_pgbackrest_makes_opsd_exit_4(ready_stack: Sandbox) -> None:
    sb = ready_stack
    manual = subprocess.Popen(as_pg(["pgbackrest", f"--config={sb.pgbackrest_conf}", f"--stanza={sb.stanza}",
                                     "--type=full", "backup"]), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: repo_info(sb)["status"]["lock"]["backup"]["held"], timeout=30,
                   what="pgBackRest's backup lock", interval=0.1)
        res = opsd(sb.opsd_conf, "backup", "--type", "incr")
        assert res.returncode == 4, res.stderr
        line = next(x for x in res.stderr.splitlines() if x.startswith("opsd: error:"))
        assert "[50 lock-acquire]" in line
        assert "Traceback" not in res.stderr
    finally:
        manual.wait(timeout=300)
    assert manual.returncode == 0
