"""Backups on the real stack: full, WAL archived after it, diff on top, restorable with the rows."""

from __future__ import annotations

import json
import re

import pytest

from opsd.adapters.stores.runs import History
from opsd_sandbox import Sandbox
from opsd_sandbox.procs import free_port, mkdir_pg
from tests.conftest import opsd
from tests.integration.helpers import labels, repo_info, restore_and_count, wait_until

pytestmark = pytest.mark.integration


def test_full_then_wal_then_diff_then_restore(ready_stack: Sandbox) -> None:
    sb = ready_stack
    full = opsd(sb.opsd_conf, "backup", "--type", "full", "--json")
    assert full.returncode == 0, full.stderr
    result = json.loads(full.stdout)
    assert result["type"] == "full"
    assert result["label"] in labels(sb)

    # WAL written after the backup reaches the repository
    sb.psql("create table orders(id int primary key, sku text, qty int)")
    sb.psql("insert into orders select g, 'SKU-' || g, g % 7 from generate_series(1, 1000) g")
    segment = sb.psql("select pg_walfile_name(pg_current_wal_lsn())")
    sb.psql("select pg_switch_wal()")
    wait_until(lambda: (repo_info(sb)["archive"][0]["max"] or "") >= segment, timeout=60,
               what=f"WAL segment {segment} in the repository")

    diff = opsd(sb.opsd_conf, "backup", "--type", "diff")
    assert diff.returncode == 0, diff.stderr
    assert "(diff)" in diff.stdout
    newest = repo_info(sb)["backup"][-1]
    assert newest["type"] == "diff" and newest["prior"] == result["label"]

    # the history has both runs, from the CLI
    hist = History(sb.state_dir, "postgres")
    assert [(r.job, r.outcome, r.trigger) for r in hist.runs(limit=2)] == [
        ("backup-diff", "ok", "cli"), ("backup-full", "ok", "cli")]

    # and the diff restores, with the rows written before it
    rows = restore_and_count(sb, sb.root / "restored-full-diff", free_port(), "select count(*), sum(qty) from orders")
    assert rows == sb.psql("select count(*), sum(qty) from orders") == "1000|3003"


def test_info_and_check_and_status_after_backups(ready_stack: Sandbox) -> None:
    """With a history of its own (other tests record failed drills in the session's), so it runs in any order."""
    sb = ready_stack
    state = sb.root / "state-info-check"
    mkdir_pg(state, 0o750)
    conf = sb.write_opsd_conf(sb.root / "opsd-info-check.toml", state_dir=state,
                              schedule={"full": "0 6 * * *", "backup_window": "01:00-05:00"})
    assert opsd(conf, "backup").returncode == 0
    info = opsd(conf, "info", "--json")
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert [b["label"] for b in data["stanza"]["backups"]] == labels(sb)

    check = opsd(conf, "check", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    results = {r["name"]: r for r in json.loads(check.stdout)["results"]}
    assert results["pgbackrest.check"]["status"] == "ok"
    assert results["archive.archiver"]["status"] == "ok"
    assert results["archive.archiver"]["details"]["ready_count"] == 0
    assert results["backup.full.age"]["status"] == "ok"
    # advice on the sandbox's pgbackrest.conf (S3 without bundling; zst and process-max 2 are fine), warnings only
    assert results["tuning.repo-bundle"]["status"] == "warning" and "repo1-bundle" in results["tuning.repo-bundle"][
        "message"]
    assert "tuning.compress-type" not in results and "tuning.process-max" not in results
    # fulls at 06:00 and a window of 01:00-05:00: the forecast says so, and the metrics carry it
    fc = results["backup.window.forecast"]
    assert fc["status"] == "warning" and "06:00" in fc["message"] and "outside the backup window" in fc["message"]
    assert fc["details"]["fulls"] >= 1 and fc["details"]["seconds"] > 0
    metrics = opsd(conf, "metrics").stdout
    assert re.search(r"^opsd_backup_forecast_seconds \d", metrics, re.M) and \
        re.search(r"^opsd_backup_window_margin_seconds ", metrics, re.M), metrics[-3000:]

    status = opsd(conf, "status", "--json")
    rows = {r["job"]: r for r in json.loads(status.stdout)}
    assert rows["backup-full"]["last_ok"]["outcome"] == "ok"
    assert rows["check"]["last"]["trigger"] == "cli"
