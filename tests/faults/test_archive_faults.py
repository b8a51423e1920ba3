"""WAL archiving under faults: the S3 endpoint down (critical within two check intervals, nothing lost, the
backlog drains when it returns) and an archive_command that fails silently (caught by the age of .ready)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from opsd_sandbox import Sandbox
from tests.conftest import opsd
from tests.faults.helpers import archive_gaps, archived, ready_count, wait_drained
from tests.integration.helpers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.slow]

READY_AGE = 4  # check.max_ready_age for these tests (seconds): one "check interval"
CHECK = f'\n[check]\nmax_ready_age = "{READY_AGE}s"\narchive_timeout = "3s"\n'


def _check(conf: Path) -> dict[str, dict[str, object]]:
    res = opsd(conf, "check", "--json")
    return {r["name"]: r for r in json.loads(res.stdout)["results"]} | {"_rc": {"status": res.returncode}}


def _segments_written(sb: Sandbox, n: int) -> list[str]:
    names = []
    for i in range(n):
        sb.psql(f"create table if not exists fault_wal(x int); insert into fault_wal values ({i})")
        names.append(sb.psql("select pg_walfile_name(pg_current_wal_lsn())"))
        sb.psql("select pg_switch_wal()")
    return names


def test_s3_down_while_archiving_is_critical_then_drains_without_loss(ready_stack: Sandbox, tmp_path: Path) -> None:
    sb = ready_stack
    conf = sb.write_opsd_conf(tmp_path / "a.toml", extra=CHECK)
    wait_drained(sb)
    assert _check(conf)["archive.archiver"]["status"] == "ok"
    sb.stop_s3()
    try:
        written = _segments_written(sb, 3)
        wait_until(lambda: ready_count(sb) >= 2, timeout=30, what=".ready files to pile up")
        checks = []
        for _ in range(2):  # within two check intervals
            time.sleep(READY_AGE + 0.5)
            checks.append(_check(conf))  # about 20 s each while the endpoint is down
            if checks[-1]["archive.archiver"]["status"] == "critical":
                break
        last = checks[-1]["archive.archiver"]
        assert last["status"] == "critical", [c["archive.archiver"] for c in checks]
        assert "waiting to be archived" in str(last["message"])
        assert checks[-1]["_rc"]["status"] == 1  # the same check exits 1 (not a second one, 20 s more)
    finally:
        sb.start_s3()
    wait_drained(sb)
    assert all(archived(sb, s) for s in written), "a WAL segment written during the outage is missing"
    assert archive_gaps(sb) == []
    assert _check(conf)["archive.archiver"]["status"] in ("ok", "warning")  # the last failure may still show


def test_a_silently_broken_archive_command_is_caught_by_ready_age(ready_stack: Sandbox, tmp_path: Path) -> None:
    sb = ready_stack
    conf = sb.write_opsd_conf(tmp_path / "b.toml", extra=CHECK)
    wait_drained(sb)
    original = sb.psql("show archive_command")
    sb.psql("alter system set archive_command = '/usr/bin/pgbackrest-gone archive-push %p'")
    sb.psql("select pg_reload_conf()")
    try:
        written = _segments_written(sb, 2)
        time.sleep(READY_AGE + 1)
        result = _check(conf)["archive.archiver"]
        assert result["status"] == "critical", result
        details = result["details"]
        assert details["ready_count"] >= 1 and details["oldest_ready_age"] > READY_AGE  # type: ignore[index,operator]
    finally:
        sb.psql(f"alter system set archive_command = '{original}'")
        sb.psql("select pg_reload_conf()")
    wait_drained(sb)
    assert all(archived(sb, s) for s in written) and archive_gaps(sb) == []
