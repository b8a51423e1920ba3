"""The run history under faults, on the real stack (issue 14, items 1 and 5.5): with a damaged history file a
scheduled backup still runs and lands in the repository, the alert goes out, the run is kept in the pending
journal and arrives in the history once the file is moved aside; restore planning goes on with one warning;
a command that needs the history says what is wrong with it in one line."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from opsd.adapters.stores.runs import History
from opsd.core.records.jobs import BackupResult
from opsd_sandbox import Sandbox
from opsd_sandbox.procs import free_port, mkdir_pg
from tests.conftest import opsd
from tests.integration.helpers import labels

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_a_damaged_history_never_skips_a_scheduled_backup(ready_stack: Sandbox, hook: Any) -> None:
    sb = ready_stack
    url, got = hook
    state = sb.root / "state-history-faults"
    mkdir_pg(state, 0o750)
    conf = sb.write_opsd_conf(sb.root / "history-faults.toml", state_dir=state,
                              schedule={"full": "0 3 * * *", "check": ""},
                              extra=f'\n[alerts]\nwebhook_url = "{url}"\nretries = 1\n')
    assert opsd(conf, "status").returncode in (0, 1)  # the history file exists
    history = state / "history.sqlite3"
    history.write_bytes(os.urandom(16384))  # a damaged file: not SQLite any more
    before = labels(sb)

    res = opsd(conf, "daemon", "--once")
    assert res.returncode == 0 and res.stdout.strip() == "backup-full: ok", res.stdout + res.stderr[-2000:]
    assert labels(sb)[-1] not in before  # the backup ran and is in the repository (retention may expire one)
    assert '"history.unwritable"' in res.stderr and "is damaged" in res.stderr
    assert ("history.unwritable", "firing") in [(g["alert"]["key"], g["alert"]["status"]) for g in got]
    assert (state / "history.pending.jsonl").exists()

    status = opsd(conf, "status")
    assert status.returncode == 1 and "Traceback" not in status.stderr and "internal error" not in status.stderr
    assert f"opsd: error: run history {history} is damaged" in status.stderr
    plan = opsd(conf, "restore", "--type", "immediate", "--target-dir", str(sb.root / "hf-side"), "--port",
                str(free_port()), "--dry-run")
    assert plan.returncode == 0 and "history.unreadable" in plan.stderr, plan.stderr[-2000:]

    shutil.move(history, f"{history}.damaged")  # what the error line tells the DBA to do
    assert opsd(conf, "check").returncode in (0, 1)  # the next job writes the kept run
    runs = History(state, "postgres").runs("backup-full")
    assert [(r.trigger, r.outcome) for r in runs] == [("once", "ok")]
    kept = runs[0].details_as(BackupResult)
    assert kept is not None and kept.label == labels(sb)[-1]
    assert not (state / "history.pending.jsonl").exists()
    assert got[-1]["alert"]["key"] == "history.unwritable" and got[-1]["alert"]["status"] == "resolved"
