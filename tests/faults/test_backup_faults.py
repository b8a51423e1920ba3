"""Backups under faults: S3 down mid-backup, pgBackRest killed -9, a hung (SIGSTOPped) pgBackRest. Each fails
with a classified error, is never listed as a good backup, and the next backup succeeds by itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsd.adapters.stores.runs import History
from opsd_sandbox import Sandbox
from tests.conftest import opsd
from tests.faults.helpers import pids, start_backup, start_copying
from tests.integration.helpers import labels, repo_info, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.slow]


def _with_timeout(sb: Sandbox, path: Path, timeout: str, pgbackrest_conf: Path | None = None) -> Path:
    conf = sb.write_opsd_conf(path, pgbackrest_conf=pgbackrest_conf)
    conf.write_text(conf.read_text().replace('probe_io_timeout = "2s"',
                                             f'probe_io_timeout = "2s"\nbackup_timeout = "{timeout}"'))
    return conf


def _quick_to_notice(sb: Sandbox, name: str) -> Path:
    """This sandbox's pgbackrest.conf (same stanza, repository and log) with io-timeout=5 and job-retry=0: an
    endpoint that is gone fails the backup after 5 s of retrying instead of pgBackRest's default 60 s, retried
    twice more per file (the second time 15 s later). The fault and its detection are the same, only sooner."""
    path = sb.write_pgbackrest_conf(path=sb.root / f"pgbackrest-{name}.conf")
    path.write_text(path.read_text().replace("[global]", "[global]\nio-timeout=5\njob-retry=0", 1))
    return path


def _start_copying(sb: Sandbox, conf: Path) -> subprocess.Popen[str]:
    return start_copying(sb.root / "pgbr" / "log" / f"{sb.stanza}-backup.log", conf)


def _pgbackrest_backup(sb: Sandbox) -> list[int]:
    """The main pgbackrest backup process of this sandbox (not runuser, not its local workers)."""
    return pids(f"^pgbackrest --config={sb.pgbackrest_conf} .*backup$")


@pytest.fixture(scope="module", autouse=True)
def _bulk_dropped_after(ready_stack: Sandbox) -> Iterator[None]:
    """fault_bulk (about 130 MB) is this module's: dropped at its end, so the session's primary does not carry it
    into every later module's backups, restores and drills (each of them took seconds more for it)."""
    yield
    ready_stack.psql("drop table if exists fault_bulk")


def _bigger(sb: Sandbox) -> None:
    """Enough data that a backup takes a few seconds (room to inject a fault while it runs)."""
    sb.psql("create table if not exists fault_bulk(id int, pad text)")
    if int(sb.psql("select count(*) from fault_bulk")) == 0:
        sb.psql("insert into fault_bulk select g, md5(g::text) || repeat(md5((g * 7)::text), 8) "
                "from generate_series(1, 400000) g")


def _next_backup_succeeds(conf: Path, sb: Sandbox, before: list[str]) -> None:
    res = opsd(conf, "backup", "--type", "full")
    assert res.returncode == 0, res.stderr[-2000:]
    after = labels(sb)
    assert len(after) >= 1 and after[-1] not in before


def test_s3_down_during_a_backup(ready_stack: Sandbox, tmp_path: Path) -> None:
    sb = ready_stack
    _bigger(sb)
    # pgBackRest 2.45 sometimes notices a vanished endpoint only after a long while (its sockets sit in
    # CLOSE-WAIT; io-timeout does not end that wait); then the job timeout is what ends the backup, as it would
    # in production. It runs from the start of pgbackrest, so it must only outlast the start of the copy.
    conf = _with_timeout(sb, tmp_path / "s3.toml", "20s", _quick_to_notice(sb, "s3down"))
    before = labels(sb)
    proc = _start_copying(sb, conf)  # S3 goes away while files are copied (this test's fault), not earlier
    try:
        sb.stop_s3()
        _out, err = proc.communicate(timeout=600)
    finally:
        sb.start_s3()
    assert proc.returncode == 1, err[-2000:]
    line = next(x for x in err.splitlines() if x.startswith("opsd: error:"))
    # classified ([49 host-connect] or a similar named code), or ended by the job timeout
    assert "pgbackrest backup failed [" in line or "timed out after 20s and was killed" in line, line
    assert labels(sb) == before  # the failed backup is not listed
    assert History(sb.state_dir, "postgres").last("backup-full").outcome == "failed"  # type: ignore[union-attr]
    _next_backup_succeeds(sb.opsd_conf, sb, before)  # without the short job timeout: a whole backup may need more


def test_pgbackrest_killed_mid_backup(ready_stack: Sandbox, tmp_path: Path) -> None:
    sb = ready_stack
    _bigger(sb)
    conf = sb.write_opsd_conf(tmp_path / "kill.toml")
    before = labels(sb)
    proc = start_backup(conf)
    [pid] = wait_until(lambda: _pgbackrest_backup(sb), timeout=30, what="pgbackrest backup to run")
    time.sleep(1.0)
    os.kill(pid, signal.SIGKILL)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "opsd: error: pgbackrest backup failed" in err, err[-2000:]
    assert labels(sb) == before  # nothing partial is reported as valid
    assert all(b.get("error") is not True for b in repo_info(sb)["backup"])
    _next_backup_succeeds(conf, sb, before)


def test_a_hung_pgbackrest_is_killed_by_the_job_timeout(ready_stack: Sandbox, tmp_path: Path) -> None:
    sb = ready_stack
    _bigger(sb)
    conf = sb.write_opsd_conf(tmp_path / "hung.toml")
    text = conf.read_text()
    conf.write_text(text.replace('probe_io_timeout = "2s"', 'probe_io_timeout = "2s"\nbackup_timeout = "6s"'))
    before = labels(sb)
    proc = start_backup(conf)
    [pid] = wait_until(lambda: _pgbackrest_backup(sb), timeout=30, what="pgbackrest backup to run")
    os.kill(pid, signal.SIGSTOP)
    started = time.monotonic()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "timed out after 6s and was killed" in err, err[-2000:]
    assert time.monotonic() - started < 40
    assert not any(os.path.exists(f"/proc/{p}") for p in [pid]), "the stopped pgbackrest was left behind"
    run = History(sb.state_dir, "postgres").last("backup-full")
    assert run is not None and run.outcome == "failed" and "timed out" in (run.error or "")
    assert labels(sb) == before
    _next_backup_succeeds(sb.opsd_conf, sb, before)  # not blocked by a stale lock


def test_postgres_crashing_during_a_backup_is_named_as_such(ready_stack: Sandbox, tmp_path: Path) -> None:
    """SIGKILL to the postmaster while files are copied (issue 14, fault 3): the backup fails with a hint that
    names PostgreSQL, not S3; after the restart the next backup succeeds and check is green."""
    sb = ready_stack
    _bigger(sb)
    conf = _with_timeout(sb, tmp_path / "crash.toml", "120s")
    before = labels(sb)
    proc = _start_copying(sb, conf)
    try:
        postmaster = int((sb.pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGKILL)
        _out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        wait_until(lambda: not _alive_postmaster(sb), timeout=30, what="the killed postmaster's children to go")
        sb.pg_ctl("start")
    assert proc.returncode == 1, err[-2000:]
    line = next(x for x in err.splitlines() if x.startswith("opsd: error:"))
    hint = next((x for x in err.splitlines() if x.startswith("hint:")), "")
    assert "pgbackrest backup failed [" in line or "timed out" in line, line
    if "failed [" in line:
        assert "S3 service" not in hint and ("PostgreSQL" in hint or "PostgreSQL" in line), (line, hint)
    assert labels(sb) == before
    _next_backup_succeeds(conf, sb, before)
    results = {r["name"]: r["status"] for r in json.loads(opsd(conf, "check", "--json").stdout)["results"]}
    assert results["postgres"] == "ok" and results["pgbackrest.check"] == "ok", results


def _alive_postmaster(sb: Sandbox) -> bool:
    out = subprocess.run(["pgrep", "-f", f"postgres -D {sb.pgdata}"], capture_output=True, text=True, check=False)
    return bool(out.stdout.strip())
