from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opsd.adapters.files import exclusive_lock
from opsd.adapters.stores.runs import History
from opsd.errors import BusyError, ExitCode
from opsd_sandbox import records
from tests.conftest import _me


def test_history_records_and_orders_runs(tmp_path: Path) -> None:
    h = History(tmp_path / "state", _me())
    t0 = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
    h.record("backup-full", "schedule", t0, t0 + timedelta(minutes=3), "ok",
             details=records.backup(9, 180.0, label="A"))
    h.record("backup-full", "schedule", t0 + timedelta(days=1), t0 + timedelta(days=1, minutes=1), "failed",
             error="boom")
    last = h.last("backup-full")
    assert last is not None and last.outcome == "failed" and last.error == "boom"
    ok = h.last("backup-full", ("ok",))
    assert ok is not None and ok.details == records.backup(9, 180.0, label="A") and ok.duration == 180
    assert h.last("check") is None
    assert [r.outcome for r in h.runs()] == ["failed", "ok"]
    assert (tmp_path / "state" / "history.sqlite3").exists()


def test_runs_of_dead_processes_become_interrupted(tmp_path: Path) -> None:
    h = History(tmp_path, _me())
    rid = h.start("backup-full", "schedule")
    assert h.mark_interrupted(os.uname().nodename, alive=set()) == 1
    last = h.last("backup-full")
    assert last is not None and last.id == rid and last.outcome == "interrupted"


def test_second_holder_is_refused_and_told_who_holds_it(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from opsd.adapters.files import exclusive_lock\n"
        f"with exclusive_lock(Path({str(tmp_path)!r}), 'backup', {_me()!r}, 'opsd backup --type full'):\n"
        "    print('held', flush=True); time.sleep(30)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(BusyError) as ei, exclusive_lock(tmp_path, "backup", _me(), "second"):
            pass
        assert ei.value.exit_code == ExitCode.BUSY
        assert f"pid {holder.pid}" in str(ei.value) and "opsd backup --type full" in str(ei.value)
    finally:
        holder.kill()
        holder.wait()
    # the kernel released it with the dead holder: no stale lock
    deadline = time.monotonic() + 5
    while True:
        try:
            with exclusive_lock(tmp_path, "backup", _me(), "third"):
                break
        except BusyError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
