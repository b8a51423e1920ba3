"""The monthly report on the real stack: a month of history made of a real backup, drill, verify, check and
health sample plus recorded runs for volume; every section's figures checked against that history; the HTML
is self-contained; Markdown links its charts; --publish uploads to the test S3 endpoint."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opsd.adapters.stores.runs import History
from opsd.core.records.checks import CRITICAL, OK
from opsd.core.records.jobs import ReportResult
from opsd_sandbox import Sandbox, records
from opsd_sandbox.stack import BUCKET
from tests.conftest import opsd
from tests.integration.helpers import switch_and_wait
from tests.unit.test_report_data import _well_formed_and_self_contained

pytestmark = pytest.mark.integration


def _ok(res: Any) -> Any:
    assert res.returncode == 0, res.stderr[-3000:]
    return res


@pytest.fixture(scope="module")
def month(ready_stack: Sandbox) -> dict[str, Any]:
    sb = ready_stack
    state = sb.root / "report-state"
    conf = sb.write_opsd_conf(sb.root / "report.toml", drill={"process_max": 4, "priority": "normal"},  # faster copy
                              extra='\n[report]\ns3_uri = "s3://pgbackrest/reports/2026/"\n')
    conf.write_text(conf.read_text().replace(f'state_dir = "{sb.state_dir}"', f'state_dir = "{state}"'))
    _ok(opsd(conf, "backup", "--type", "full"))
    _ok(opsd(conf, "drill", "heartbeat"))
    switch_and_wait(sb)
    drill = json.loads(_ok(opsd(conf, "drill", "run", "--target", "latest", "--json", timeout=600)).stdout)
    _ok(opsd(conf, "verify"))
    _ok(opsd(conf, "check"))
    _ok(opsd(conf, "health", "sample"))
    # volume: recorded runs of earlier days; only those in the current month count
    now = datetime.now(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    hist = History(state, "postgres")
    recorded = {"drill_ok": 0, "drill_failed": 0, "full_ok": 0, "rtos": []}
    for k in range(1, 29):
        at = now - timedelta(days=k, hours=2)
        if at < start:
            continue
        hist.record("backup-full", "schedule", at, at + timedelta(minutes=3), "ok",
                    details=records.backup(2**30, 180.0, label=f"{at:%Y%m%d}-010000F"))
        recorded["full_ok"] += 1
        if k % 7 == 3:
            failed = k == 10
            hist.record("drill", "schedule", at, at + timedelta(minutes=9), "failed" if failed else "ok",
                        error="restore: zst error" if failed else None, details=records.drill(
                            sb.stanza, rto=240.0 + k, rpo=30.0, restore_seconds=200.0, recovery_seconds=40.0 + k,
                            checks=[("restore", CRITICAL if failed else OK, "zst error" if failed else "ok")]))
            recorded["drill_failed" if failed else "drill_ok"] += 1
            if not failed:
                recorded["rtos"].append(240.0 + k)
    return {"conf": conf, "state": state, "drill": drill, "recorded": recorded, "month": f"{now:%Y-%m}"}


def test_figures_match_the_history(ready_stack: Sandbox, month: dict[str, Any]) -> None:
    rec, real = month["recorded"], month["drill"]
    data = json.loads(_ok(opsd(month["conf"], "report", "--month", month["month"], "--format", "json")).stdout)
    v = data["verdict"]
    assert v["drills_run"] == rec["drill_ok"] + rec["drill_failed"] + 1
    assert v["drills_failed"] == rec["drill_failed"]
    assert v["rto_worst"] == max([*rec["rtos"], real["rto_seconds"]])
    real_row = next(d for d in data["drills"] if d["target"] == real["target"])
    assert real_row["passed"] and real_row["rto"] == real["rto_seconds"] and real_row["backup"] == real["backup"]
    assert real_row["checks"]["amcheck"] == "ok" and real_row["checks"]["heartbeat"] == "ok"
    full = next(t for t in data["backups"]["by_type"] if t["type"] == "full")
    assert full["ok"] == rec["full_ok"] + 1 and full["failed"] == 0
    b = data["backups"]
    assert b["verify_runs"] == 1 and b["verify_failed"] == 0 and b["archive_checks"] == 1
    w = b["window"]
    assert w["retention_full"] == 2 and w["full_backups"] >= 1 and w["earliest_recoverable"]
    if rec["drill_failed"]:
        assert any(a.startswith("Drill #") and "failed" in a for a in data["actions"])
        assert "failed drill" in v["statement"] or v["statement"].startswith("NOT PROVEN")


def test_html_is_self_contained_and_markdown_links_its_charts(month: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    _ok(opsd(month["conf"], "report", "--month", month["month"], "--format", "html", "--output", str(out)))
    page = out.read_text()
    _well_formed_and_self_contained(page)
    assert "<svg" in page and "Recovery report " + month["month"] in page
    md = tmp_path / "r.md"
    _ok(opsd(month["conf"], "report", "--month", month["month"], "--format", "md", "--output", str(md)))
    text = md.read_text()
    linked = [line.split("](")[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    assert linked and all((tmp_path / name).read_text().startswith("<svg") for name in linked)


def test_publish_writes_every_format_and_uploads_to_the_bucket(ready_stack: Sandbox, month: dict[str, Any]) -> None:
    res = _ok(opsd(month["conf"], "report", "--month", month["month"], "--publish"))
    reports = month["state"] / "reports"
    for ext in ("md", "html", "json"):
        assert (reports / f"report-{month['month']}.{ext}").exists()
    s3 = ready_stack.s3_client()
    host = socket.gethostname()  # each node of an HA pair publishes under its own name
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="reports/2026/").get("Contents", [])}
    assert {f"reports/2026/{host}/report-{month['month']}.{e}" for e in ("md", "html", "json")} <= keys
    assert any(k.endswith("-rto.svg") for k in keys)
    body = s3.get_object(Bucket=BUCKET, Key=f"reports/2026/{host}/report-{month['month']}.json")["Body"].read()
    assert json.loads(body)["month"] == month["month"]
    assert "uploaded to s3://pgbackrest/reports/2026/" in res.stdout
    runs = History(month["state"], "postgres").runs("report")
    got = runs[0].details_as(ReportResult)
    assert runs[0].outcome == "ok" and got is not None and got.uploaded
