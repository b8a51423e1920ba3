"""The fleet's metrics from ``<state_dir>/fleet.json`` (none without a fleet; families without samples before the
first check), every one documented, promtool content with the exposition, and the fleet's alert rules proven by
``promtool test rules`` on series of their own."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opsd.core.records.fleet import FleetState
from opsd.metrics import text

REPO = Path(__file__).resolve().parents[2]
FLEET = {"endpoints": ["http://127.0.0.1:2379"], "name": "prod"}


def fleet_state(ctx: Any, **kw: Any) -> None:
    now = datetime.now(UTC)
    st = FleetState(fleet="prod", role="drill", host="drill-a", checked_at=now - timedelta(minutes=1), reachable=True,
                    clusters=3, drill_hosts=2, claims=1, overdue=["analytics", "shop"], too_large=["warehouse"],
                    lease_losses=2, **kw)
    state_dir = ctx.settings.opsd.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "fleet.json").write_text(st.model_dump_json())


def test_no_fleet_no_fleet_metric(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    assert "opsd_fleet" not in text(fake_ctx())


def test_before_the_first_check_the_families_have_no_sample(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    out = text(fake_ctx(fleet=FLEET))
    assert "# TYPE opsd_fleet_up gauge" in out and not re.search(r"^opsd_fleet_\w+(\{.*\})? ", out, re.M)


def test_the_fleet_as_last_checked(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx = fake_ctx(fleet=FLEET)
    fleet_state(ctx)
    out = text(ctx)
    for line in ("opsd_fleet_up 1.0", "opsd_fleet_clusters 3.0", "opsd_fleet_overdue_clusters 2.0",
                 'opsd_fleet_cluster_overdue{cluster="analytics"} 1.0',
                 'opsd_fleet_cluster_overdue{cluster="shop"} 1.0',
                 "opsd_fleet_claims 1.0", "opsd_fleet_drill_hosts 2.0", "opsd_fleet_lease_losses_total 2.0",
                 "opsd_fleet_too_large_clusters 1.0"):
        assert f"\n{line}\n" in out, line
    assert "\nopsd_fleet_this_cluster_overdue " not in out  # a drill host has no cluster of its own
    at = float(re.findall(r"^opsd_fleet_checked_timestamp_seconds (\S+)$", out, re.M)[0])
    assert abs(at - (datetime.now(UTC) - timedelta(minutes=1)).timestamp()) < 60


def test_a_cluster_host_says_whether_its_own_cluster_is_overdue_and_unreachable_is_0(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx = fake_ctx(fleet=FLEET)
    fleet_state(ctx, this_cluster_overdue=True, error="etcd: connection refused")
    state = ctx.settings.opsd.state_dir / "fleet.json"
    state.write_text(state.read_text().replace('"reachable":true', '"reachable":false'))
    out = text(ctx)
    assert "\nopsd_fleet_this_cluster_overdue 1.0\n" in out and "\nopsd_fleet_up 0.0\n" in out


def test_every_fleet_metric_is_documented_and_promtool_accepts_them(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx = fake_ctx(fleet=FLEET)
    fleet_state(ctx, this_cluster_overdue=False)
    out = text(ctx)
    names = sorted(set(re.findall(r"^# TYPE (opsd_fleet_\w+) ", out, re.M)))
    assert len(names) == 10
    doc = (REPO / "docs" / "metrics.md").read_text()
    assert [n for n in names if f"`{n}" not in doc] == []
    if shutil.which("promtool"):
        res = subprocess.run(["promtool", "check", "metrics"], input=out, capture_output=True, text=True)
        assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr




@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_the_fleet_alert_rules_fire_as_documented() -> None:
    """One overdue alert per cluster whatever the number of hosts that see it; unreachable after 5 minutes; a lost
    lease at once; too large after 30 minutes; a state file older than 30 minutes is stale."""
    spec = REPO / "tests" / "data" / "fleet_alerts_test.yml"  # rule_files: ../../docs/alerts.yml
    res = subprocess.run(["promtool", "test", "rules", str(spec)], capture_output=True, text=True)
    assert res.returncode == 0 and "SUCCESS" in res.stdout, res.stdout + res.stderr
