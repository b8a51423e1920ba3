"""The service-level metrics, from the state store only: the objectives over the 24 h up to the last snapshot (a
ratio only when met or missed, their state, executions over the threshold since midnight), recomputed only when a
snapshot arrives; availability over 30 days; the last index report's figures. Every family documented, promtool
content with the exposition, and the alert rules proven by ``promtool test rules``."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opsd.actions.queries.slowlog import definitions
from opsd.actions.report import index_figures
from opsd.adapters.stores.availability import AvailabilityStore
from opsd.adapters.stores.objectives import LogMark, ObjectiveStore
from opsd.adapters.stores.queries import QueryStore, SnapshotWrite
from opsd.core.availability import DOWN, UP, Reach
from opsd.core.records.queries import StatementDelta
from opsd.metrics import registry, text
from opsd_sandbox.sample_service import _index_report

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 12, 3, tzinfo=UTC)
NAMES = ("query_objective_ratio", "query_objective_target", "query_objective_state", "queries_over_threshold_total",
         "availability_ratio", "availability_target", "availability_unknown_seconds", "unused_index_bytes",
         "invalid_indexes", "not_valid_constraints", "index_figures_timestamp_seconds")


def _ctx(fake_ctx: Any, now: datetime = NOW) -> Any:
    return dataclasses.replace(fake_ctx(schedule={"queries": "1h"}), now=lambda: now)


def snapshots(ctx: Any, hours: int, end: datetime, *, calls: int = 1000, over: int = 20, unread: int = -1) -> None:
    """Hourly snapshots of node db1 up to ``end``: each hour ``calls`` calls of one statement by role app, and
    ``over`` of them over the "all" threshold (the hour ``unread`` hours before the end: its log not read)."""
    qs, os_ = QueryStore(ctx.history.db), ObjectiveStore(ctx.history.db)
    prev = None
    for i in range(hours, -1, -1):
        at = end - timedelta(hours=i)
        d: list[StatementDelta] = [StatementDelta(queryid=1, dbname="shop", rolname="app", calls=calls,
                                                  total_ms=1.0, rows=1, shared_hit=1,
                            shared_read=0, temp_read=0, temp_written=0, wal_bytes=0)] if prev else []
        state = "unknown" if i == unread else "complete"
        sid = qs.write(SnapshotWrite(node="db1", taken_at=at, since=prev, statements=True, log_state=state,
                                     statement_deltas=d), qs.previous("db1"))
        os_.record(sid, "db1", {("all", 1, "shop", "app"): over} if prev and state == "complete" else {}, None, at,
                   mark=LogMark(None, counted=definitions(ctx.settings.queries)))
        prev = at


def values(out: str, name: str) -> dict[str, float]:
    return {m[0]: float(m[1]) for m in re.findall(rf"^opsd_{name}(\{{.*?\}})? (\S+)$", out, re.M)}


def test_before_anything_is_recorded_the_families_have_no_sample(fake_ctx: Any) -> None:
    out = text(_ctx(fake_ctx))
    for name in NAMES:
        assert f"# TYPE opsd_{name} " in out, name
        assert values(out, name) == {}, name


def test_the_objectives_over_the_last_24_hours_and_the_executions_over_today(fake_ctx: Any) -> None:
    ctx = _ctx(fake_ctx)
    snapshots(ctx, 30, NOW - timedelta(minutes=3))
    out = text(ctx)
    assert values(out, "query_objective_ratio") == {'{objective="all"}': 0.98}  # 20 of 1000 an hour
    assert values(out, "query_objective_target") == {'{objective="all"}': 0.95, '{objective="reporting"}': 0.95}
    state = values(out, "query_objective_state")
    assert state['{objective="all",state="met"}'] == 1 and state['{objective="all",state="missed"}'] == 0
    assert state['{objective="reporting",state="no_statements"}'] == 1  # no statement of role reporting
    # windows taken since 00:00 UTC: 00:00 .. 12:00, each 20 over
    assert values(out, "queries_over_threshold_total") == {'{objective="all"}': 13 * 20, '{objective="reporting"}': 0}


def test_an_unread_duration_log_or_stopped_snapshots_leave_no_ratio(fake_ctx: Any) -> None:
    ctx = _ctx(fake_ctx)
    snapshots(ctx, 30, NOW - timedelta(minutes=3), unread=5)
    out = text(ctx)
    assert values(out, "query_objective_ratio") == {}
    assert values(out, "query_objective_state")['{objective="all",state="unknown"}'] == 1
    later = _ctx(fake_ctx, NOW + timedelta(hours=20))  # the same store, no snapshot since: a gap, not a ratio
    assert values(text(later), "query_objective_state")['{objective="all",state="incomplete"}'] == 1


def test_the_objectives_are_summed_again_only_when_a_snapshot_arrives(fake_ctx: Any, monkeypatch: Any) -> None:
    ctx = _ctx(fake_ctx)
    snapshots(ctx, 26, NOW - timedelta(hours=1, minutes=3), over=20)
    calls: list[str] = []
    real = ObjectiveStore.windows

    def counted(self: Any, *a: Any, **kw: Any) -> Any:
        calls.append("w")
        return real(self, *a, **kw)

    monkeypatch.setattr(ObjectiveStore, "windows", counted)
    reg = registry(lambda: ctx)
    from prometheus_client import generate_latest

    first = generate_latest(reg).decode()
    generate_latest(reg)
    assert len(calls) == 2  # two objectives, one scrape's worth
    snapshots_more = QueryStore(ctx.history.db), ObjectiveStore(ctx.history.db)
    at, prev = NOW - timedelta(minutes=3), NOW - timedelta(hours=1, minutes=3)
    sid = snapshots_more[0].write(SnapshotWrite(node="db1", taken_at=at, since=prev, statements=True,
                                                log_state="complete", statement_deltas=[StatementDelta(
                                                    queryid=1, dbname="shop", rolname="app", calls=1000, total_ms=1.0,
                                                    rows=1, shared_hit=1, shared_read=0, temp_read=0, temp_written=0,
                                                    wal_bytes=0)]), snapshots_more[0].previous("db1"))
    snapshots_more[1].record(sid, "db1", {("all", 1, "shop", "app"): 1000}, None, at,
                             mark=LogMark(None, counted=definitions(ctx.settings.queries)))
    second = generate_latest(reg).decode()
    assert len(calls) == 4
    assert values(first, "query_objective_ratio") == {'{objective="all"}': 0.98}
    assert values(second, "query_objective_ratio")['{objective="all"}'] == pytest.approx(1 - (23 * 20 + 1000) / 24000)
    assert values(second, "query_objective_state")['{objective="all"}'.replace("}", ',state="missed"}')] == 1


def test_availability_over_30_days_and_the_index_figures(fake_ctx: Any) -> None:
    ctx = _ctx(fake_ctx)
    store = AvailabilityStore(ctx.history.db)
    start = NOW - timedelta(days=10)
    for at, state in ((start, UP), (start + timedelta(days=5), DOWN), (start + timedelta(days=5, minutes=10), UP),
                      (NOW, UP)):
        store.note(Reach(state, "refused" if state == DOWN else ""), at, timedelta(days=6))
    index_figures.save(ctx, _index_report(ctx))
    out = text(ctx)
    assert values(out, "availability_ratio")[""] == pytest.approx(1 - 600 / (10 * 86400))
    assert values(out, "availability_unknown_seconds")[""] == 20 * 86400
    assert values(out, "availability_target")[""] == 0.999
    assert values(out, "invalid_indexes")[""] == 1 and values(out, "not_valid_constraints")[""] == 1
    assert values(out, "unused_index_bytes")[""] == 5_050_000_000
    assert values(out, "index_figures_timestamp_seconds")[""] == NOW.timestamp()


def test_every_service_metric_is_documented_and_promtool_accepts_them(fake_ctx: Any) -> None:
    ctx = _ctx(fake_ctx)
    snapshots(ctx, 26, NOW - timedelta(minutes=3))
    index_figures.save(ctx, _index_report(ctx))
    out = text(ctx)
    doc = (REPO / "docs" / "metrics.md").read_text()
    assert [n for n in NAMES if f"`opsd_{n}`" not in doc] == []
    if shutil.which("promtool"):
        res = subprocess.run(["promtool", "check", "metrics"], input=out, capture_output=True, text=True, check=False)
        assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_the_service_alert_rules_fire_as_documented() -> None:
    """An objective under its target for 15 minutes; unknown for 6 hours; an invalid index at once; availability
    under 99.9% at once."""
    spec = REPO / "tests" / "data" / "service_alerts_test.yml"  # rule_files: ../../docs/alerts.yml
    res = subprocess.run(["promtool", "test", "rules", str(spec)], capture_output=True, text=True, check=False)
    assert res.returncode == 0 and "SUCCESS" in res.stdout, res.stdout + res.stderr
