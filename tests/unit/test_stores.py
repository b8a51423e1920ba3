"""The state file: a history written by opsd before schema versions (tests/data/history-v0.sqlite3, made by
that version's own History, HealthStore and alert tables) is migrated with nothing lost; a newer schema is
refused untouched; files are 0600 whatever the umask."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from opsd.adapters.stores.alerts import AlertStore
from opsd.adapters.stores.database import NewerSchema, StateDB
from opsd.adapters.stores.health import HealthStore
from opsd.adapters.stores.migrations import LATEST
from opsd.adapters.stores.runs import History
from opsd.core.records.checks import CRITICAL
from opsd.core.records.drill import DrillResult
from opsd.core.records.jobs import BackupResult, CheckReport
from tests.conftest import _me

V0 = Path(__file__).parent.parent / "data" / "history-v0.sqlite3"
T0 = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)


def _v0_copy(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    shutil.copy(V0, state / "history.sqlite3")
    return state


def _columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as c:
        return [r[1] for r in c.execute(f"PRAGMA table_info({table})")]


def test_a_history_from_before_versions_is_migrated_with_nothing_lost(tmp_path: Path) -> None:
    state = _v0_copy(tmp_path)
    with sqlite3.connect(V0) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == 0
    h = History(state, _me())
    runs = h.runs(limit=10)
    assert [(r.job, r.outcome) for r in runs] == [("drill", "running"), ("drill", "ok"), ("check", "failed"),
                                                  ("backup-full", "ok")]
    full = h.last("backup-full", ("ok",))
    b = full.details_as(BackupResult) if full else None
    assert b is not None and (b.label, b.size, b.repo_delta, b.duration) == ("20261101-010000F", 123456, 2345, 180.0)
    check = h.last("check")
    rep = check.details_as(CheckReport) if check else None
    assert rep is not None and rep.archiver is not None and rep.repository is not None
    assert (rep.archiver.oldest_ready_age, rep.archiver.failed_count, rep.repository.backups) == (720.0, 3, 1)
    assert rep.worst == CRITICAL and rep.results[0].status == CRITICAL
    drill = h.last("drill", ("ok",))
    d = drill.details_as(DrillResult) if drill else None
    assert d is not None and d.passed and d.rto_seconds == 53.5 and d.phases.replay_rate == 1398101.0
    assert [c.name for c in d.checks] == ["plan", "amcheck"]
    store = HealthStore(h.db)
    (inc,) = store.incidents()
    assert (inc.key, inc.peak, inc.open) == ("lock:42", 45.0, False)
    assert inc.worst.tree is not None and inc.worst.tree.root.children[0].pid == 43 and inc.worst.rank == (1, 45.0)
    sample = store.last_sample()
    assert sample is not None and sample.taken_at == T0 and sample.problems == ["locks: 1 waiting"]
    assert sample.locks is not None and sample.locks.deadlocks_total == 7
    assert sample.pool is not None and sample.pool.waiting == 2 and sample.pool.stats[0].total_xact_count == 99
    alerts = AlertStore(h.db)
    assert alerts.firing() == ["job.backup-full"] and alerts.delivery_failures() == 1
    with sqlite3.connect(h.path) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == LATEST
    assert "details_version" in _columns(h.path, "runs")
    assert "data_version" in _columns(h.path, "health_samples")
    # and it keeps working: a new run lands after the old ones
    h.record("backup-diff", "cli", T0, T0, "ok")
    assert len(h.runs(limit=10)) == 5


def test_a_schema_newer_than_this_opsd_is_refused_and_left_alone(tmp_path: Path) -> None:
    state = _v0_copy(tmp_path)
    path = state / "history.sqlite3"
    with sqlite3.connect(path) as c:
        c.execute(f"PRAGMA user_version = {LATEST + 1}")
    before = path.read_bytes()
    db = StateDB(path, _me())
    with pytest.raises(NewerSchema, match=f"schema version {LATEST + 1}, this opsd knows up to {LATEST}"), \
            db.connect():
        pass
    assert path.read_bytes() == before


def test_state_files_are_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        h = History(tmp_path / "fresh", _me())
        h.record("check", "cli", T0, T0, "ok")
        state = _v0_copy(tmp_path)  # a file from before: tightened when opened
        os.chmod(state / "history.sqlite3", 0o644)
        History(state, _me()).runs()
    finally:
        os.umask(old)
    for p in [*(tmp_path / "fresh").iterdir(), state / "history.sqlite3"]:
        if p.name.startswith("history.sqlite3"):
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) & 0o007 == 0


def test_two_processes_opening_a_new_file_migrate_it_once(tmp_path: Path) -> None:
    """The migration runs in BEGIN IMMEDIATE: a second opener waits and then finds it done."""
    import subprocess
    import sys
    code = ("import sys; from pathlib import Path; from opsd.adapters.stores.runs import History; "
            "h = History(Path(sys.argv[1]), sys.argv[2]); [h.record('check', 'cli', h_t, h_t, 'ok') "
            "for h_t in [__import__('datetime').datetime.now(__import__('datetime').UTC)] * 20]")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "s"), _me()]) for _ in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    h = History(tmp_path / "s", _me())
    assert len(h.runs(limit=1000)) == 80
    with sqlite3.connect(h.path) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == LATEST


def test_the_cli_creates_its_state_private_whatever_the_callers_umask(tmp_path: Path) -> None:
    """A DBA's shell with umask 000: the state directory is 0750, the history and the published reports 0600."""
    import subprocess
    import sys

    state = tmp_path / "state"
    conf = tmp_path / "opsd.toml"
    conf.write_text(f'[opsd]\nstate_dir = "{state}"\nrun_as = "{_me()}"\nrole = "drill"\n')  # no primary here
    res = subprocess.run([sys.executable, "-m", "opsd", "--config", str(conf), "report", "--publish"],
                         capture_output=True, text=True, preexec_fn=lambda: os.umask(0), check=False)
    assert res.returncode in (0, 1), res.stderr
    assert stat.S_IMODE(state.stat().st_mode) == 0o750
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in files)
    loose = [(p.name, oct(p.stat().st_mode)) for p in files if stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert loose == []
