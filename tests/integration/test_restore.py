"""Point-in-time restore on the real stack: marker rows around T, refusals that touch nothing, a second
full picked for later targets, a non-UTC config, in-place safety, and no WAL pushed by the restored copy."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from opsd.adapters.stores.runs import History
from opsd.core.records.jobs import RestoreResult
from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, free_port, run
from tests.conftest import opsd
from tests.integration.helpers import PG_BIN, archived_wal, switch_and_wait

pytestmark = pytest.mark.integration




def _now(sb: Sandbox) -> str:
    return sb.psql("select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")


def _stop(dest: Path) -> None:
    run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(dest), "-m", "immediate", "-w", "stop"]), check=False)


def _query(sb: Sandbox, port: int, sql: str) -> str:
    return run(as_pg([str(PG_BIN / "psql"), "-h", str(sb.socket_dir), "-p", str(port), "-XAtc", sql])).stdout.strip()


@pytest.fixture(scope="module")
def markers(ready_stack: Sandbox) -> dict[str, str]:
    """A full backup, then marker rows committed one by one with the time noted between them."""
    sb = ready_stack
    assert opsd(sb.opsd_conf, "backup", "--type", "full").returncode == 0
    time.sleep(1.1)  # T more than a second after the backup's end (recorded in whole seconds): no warning
    sb.psql("create table if not exists marker(id int primary key, batch text)")
    sb.psql("truncate marker")
    for i in range(1, 4):
        sb.psql(f"insert into marker values ({i}, 'before')")
    time.sleep(0.2)
    t = _now(sb)
    time.sleep(0.2)
    for i in range(4, 7):
        sb.psql(f"insert into marker values ({i}, 'after')")
    switch_and_wait(sb)
    return {"T": t}


def test_pitr_round_trip_exactly_the_rows_committed_at_or_before_T(ready_stack: Sandbox, markers: dict[str, str]
                                                                   ) -> None:
    sb = ready_stack
    dest, port = sb.root / "pitr-side", free_port()
    wal_before = archived_wal(sb)
    res = opsd(sb.opsd_conf, "restore", "--to-time", markers["T"], "--target-dir", str(dest), "--port", str(port),
               "--start", "--json")
    try:
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout)
        assert out["plan"]["refused"] is False and out["plan"]["destination"]["archive_mode"] == "off"
        assert out["result"]["state"].startswith("promoted")
        assert _query(sb, port, "select string_agg(id::text, ',' order by id) from marker") == "1,2,3"
        assert _query(sb, port, "show archive_mode") == "off"
        # the promoted copy writes WAL on a new timeline, and none of it reaches the repository
        _query(sb, port, "create table scratch_only(x int); select pg_switch_wal()")
        time.sleep(2)
        assert archived_wal(sb) == wal_before
    finally:
        _stop(dest)
    last = History(sb.state_dir, "postgres").last("restore")
    res = last.details_as(RestoreResult) if last else None
    assert last is not None and last.outcome == "ok" and res is not None and res.restore_rate > 0
    assert res.target is not None and res.target.type == "time" and res.wal_bytes is not None


def test_refusals_touch_nothing(ready_stack: Sandbox, markers: dict[str, str]) -> None:
    sb = ready_stack
    runs_before = len(History(sb.state_dir, "postgres").runs(limit=1000))
    cases = (("2001-01-01 00:00:00+00", "before the earliest"), ("2099-01-01 00:00:00+00", "after the latest"))
    for when, why in cases:
        dest = sb.root / f"refused-{when[:4]}"
        res = opsd(sb.opsd_conf, "restore", "--to-time", when, "--target-dir", str(dest), "--port", str(free_port()))
        assert res.returncode == 5, res.stderr
        assert why in res.stderr and "window: timeline" in res.stderr
        assert not dest.exists()
    dry = sb.root / "dry"
    res = opsd(sb.opsd_conf, "restore", "--to-time", markers["T"], "--target-dir", str(dry), "--port",
               str(free_port()), "--dry-run")
    assert res.returncode == 0 and "restore plan" in res.stdout and "all preflight checks passed" in res.stdout
    assert not dry.exists()
    # neither the refusals nor the dry run left a trace in the run history
    runs = History(sb.state_dir, "postgres").runs(limit=1000)
    assert len(runs) == runs_before


def test_bad_time_is_a_usage_error(ready_stack: Sandbox, tmp_path: Path) -> None:
    res = opsd(ready_stack.opsd_conf, "restore", "--to-time", "yesterday noon", "--target-dir", "/tmp/x",
               "--port", "5999")
    assert res.returncode == 2 and "YYYY-MM-DD HH:MM" in res.stderr and "Traceback" not in res.stderr
    paris = tmp_path / "paris.toml"
    paris.write_text(ready_stack.opsd_conf.read_text().replace('timezone = "UTC"', 'timezone = "Europe/Paris"'))
    res = opsd(paris, "restore", "--to-time", "2026-10-25 02:30", "--target-dir", "/tmp/x", "--port", "5999")
    assert res.returncode == 2 and "ambiguous" in res.stderr, res.stderr
    assert "2026-10-25 02:30:00+02:00 or 2026-10-25 02:30:00+01:00" in res.stderr
    for far in ("0001-01-01 00:00", "0001-01-01 00:00+01"):
        res = opsd(paris, "restore", "--to-time", far, "--target-dir", "/tmp/x", "--port", "5999")
        assert res.returncode == 2 and "out of range" in res.stderr and "internal error" not in res.stderr


def test_time_without_offset_is_read_in_the_configured_timezone(ready_stack: Sandbox, markers: dict[str, str],
                                                                 tmp_path: Path) -> None:
    sb = ready_stack
    conf = tmp_path / "ny.toml"
    conf.write_text(sb.opsd_conf.read_text().replace('timezone = "UTC"', 'timezone = "America/New_York"'))
    utc_t = markers["T"]  # e.g. 2026-11-25 19:40:43.123456+00  -> 14:40:43.123456-05:00
    from datetime import datetime
    from zoneinfo import ZoneInfo

    local = datetime.fromisoformat(utc_t).astimezone(ZoneInfo("America/New_York"))
    res = opsd(conf, "restore", "--to-time", local.strftime("%Y-%m-%d %H:%M:%S.%f"), "--target-dir",
               str(sb.root / "ny"), "--port", str(free_port()), "--dry-run", "--json")
    assert res.returncode == 0, res.stderr
    target = json.loads(res.stdout)["plan"]["target"]["value"]
    assert target.endswith("-05:00") and datetime.fromisoformat(target) == datetime.fromisoformat(utc_t)


def test_a_later_target_picks_the_second_full(ready_stack: Sandbox, markers: dict[str, str]) -> None:
    sb = ready_stack
    second = json.loads(opsd(sb.opsd_conf, "backup", "--type", "full", "--json").stdout)["label"]
    time.sleep(1.1)  # a target within a second of the backup's recorded end would use the one before it
    sb.psql("insert into marker values (7, 'late')")
    t = _now(sb)
    sb.psql("insert into marker values (8, 'later')")
    switch_and_wait(sb)
    res = opsd(sb.opsd_conf, "restore", "--to-time", t, "--target-dir", str(sb.root / "second"), "--port",
               str(free_port()), "--dry-run", "--json")
    assert res.returncode == 0, res.stderr
    plan = json.loads(res.stdout)["plan"]
    assert plan["backup"] == second and "ended before the target" in plan["why"]
