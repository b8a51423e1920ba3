"""The monthly report's figures from a recorded month of history (no processes): verdict, drills, backups,
archive lag, verify, health incidents, trends, action items, and the rendered formats."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

from opsd.actions.report.job import make_report
from opsd.adapters.stores.health import HealthStore
from opsd.core.records.checks import CRITICAL, OK
from opsd.core.records.health import IncidentMoment
from opsd.report.publish import render
from opsd_sandbox import records

NOV = datetime(2026, 11, 1, tzinfo=UTC)


def _drill(ctx: Any, day: int, rto: float, *, ok: bool = True, month: datetime = NOV) -> int:
    at = month + timedelta(days=day - 1, hours=3)
    checks = [("plan", OK, ""), ("amcheck", OK if ok else CRITICAL,
                                  "" if ok else "1 corrupt relation(s): shop.orders block 7")]
    details = records.drill("main", target=f"{at:%Y-%m-%d} 01:00:00+00:00", backup_label=f"{at:%Y%m%d}-010000F",
                            rto=rto, rpo=40.0, restore_seconds=rto * 0.7, recovery_seconds=rto * 0.3,
                            verify_seconds=9.0, replay_rate=50e6, restore_rate=200e6, checks=checks)
    return ctx.history.record("drill", "schedule", at, at + timedelta(seconds=rto + 10), "ok" if ok else "failed",
                              error=None if ok else "amcheck: 1 corrupt relation(s)", details=details)


def _month(ctx: Any) -> None:
    for day in range(1, 31):
        at = NOV + timedelta(days=day - 1, hours=1)
        failed = day == 13
        ctx.history.record("backup-full", "schedule", at, at + timedelta(minutes=20), "failed" if failed else "ok",
                           error="[49 host-connect] unable to connect to 'minio:9000'" if failed else None,
                           details=None if failed else records.backup(50 * 2**30 + day, 1200.0 + day))
        for hour in (2, 14):
            t = NOV + timedelta(days=day - 1, hours=hour)
            lag = 1500.0 if (day, hour) == (20, 14) else 30.0
            ctx.history.record("check", "schedule", t, t + timedelta(seconds=2), "ok",
                               details=records.archiver_check(lag, day))
    ctx.history.record("verify", "schedule", NOV + timedelta(days=6), NOV + timedelta(days=6, hours=1), "ok",
                       details=records.verify_ok("main"))


def test_a_month_with_one_failed_drill(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx = fake_ctx(opsd={"timezone": "UTC"})
    _month(ctx)
    _drill(ctx, 25, 300.0, month=datetime(2026, 10, 1, tzinfo=UTC))  # last month: the baseline and prior pass
    ids = [_drill(ctx, d, rto) for d, rto in ((1, 380.0), (8, 400.0), (15, 420.0), (22, 440.0))]
    bad = _drill(ctx, 23, 500.0, ok=False)
    ids.append(_drill(ctx, 29, 360.0))
    store = HealthStore(ctx.history.db)
    for i in range(3):
        at = NOV + timedelta(days=10 + i)
        moment = records.lock_moment(100 + i, waiters=4 + i, longest_wait=45.0 + i, user="wms", database="shop",
                                     application="picker")
        iid = store.open(f"lock:{100 + i}", "lock", at, summary=f"pid {100 + i} blocks", peak=45.0 + i,
                         worst=moment)
        store.close(iid, at + timedelta(minutes=2))
    store.open("pool:shop/app", "pool", NOV + timedelta(days=3), summary="3 waiting", peak=12.0,
               worst=IncidentMoment(rank=(12.0, 3.0)))
    ctx.now = lambda: datetime(2026, 12, 1, 6, tzinfo=UTC)
    r = make_report(ctx, 2026, 11, with_repository=False)
    v = r.verdict
    assert (v.drills_run, v.drills_passed, v.drills_failed) == (6, 5, 1)
    assert v.rto_worst == 440.0 and v.rto_median == 400.0 and v.rpo_worst == 40.0
    assert v.recoverable_all_month and v.longest_unproven == 0
    assert "with 1 failed drill(s) out of 6" in v.statement
    assert [d.id for d in r.drills] == [*ids[:4], bad, ids[4]] and r.drills[4].failure.startswith("amcheck: 1 corrupt")
    full = r.backups.by_type[0]
    assert (full.type, full.ok, full.failed, full.largest) == ("full", 29, 1, 50 * 2**30 + 30)
    assert full.longest_duration == 1230.0 and full.median_duration == 1216.0  # day 13 failed
    assert r.backups.failures[0]["error"].startswith("[49 host-connect]")
    assert r.backups.archive_checks == 60 and r.backups.archive_critical == 1
    assert r.backups.longest_archive_lag == 1500.0 and r.backups.archive_failures == 29
    assert (r.backups.verify_runs, r.backups.verify_failed) == (1, 0)
    h = r.health
    assert (h.lock_incidents, h.pool_incidents) == (3, 1)
    assert h.top_blockers[0]["who"] == "wms@shop (picker)" and h.top_blockers[0]["incidents"] == 3
    assert h.top_blockers[0]["longest_wait"] == 47.0 and h.top_blockers[0]["idle_in_transaction"] == 3
    assert len(r.trends["rto"].points) == 6 and len(r.trends["backup_size"].points) == 29
    assert len(r.trends["archive_lag"].points) == 60
    actions = "\n".join(r.actions)
    assert f"Drill #{bad}" in actions and "RTO grew 33% since last month" in actions
    assert "1 backup(s) failed" in actions and "WAL waited up to 25 min" in actions
    assert "wms@shop (picker) was the root blocker of 3 lock incidents, 3 idle in transaction" in actions
    assert "PgBouncer pool shop/app had clients waiting up to 12s" in actions

    # JSON carries every figure; Markdown and HTML show them
    data = json.loads(render(r, "json")[0])
    assert data["verdict"]["rto_median"] == 400.0 and len(data["drills"]) == 6 and data["actions"] == r.actions
    md, svgs = render(r, "md", chart_prefix="report-")
    assert "| 6 / 5 / 1 |" in md and "FAILED: amcheck" in md and "report-2026-11-rto.svg" in md
    assert set(svgs) == {f"report-2026-11-{k}.svg" for k in ("rto", "backup_duration", "backup_size", "archive_lag")}
    page, _ = render(r, "html")
    _well_formed_and_self_contained(page)
    assert page.count("<svg") == 4 and "Recoverable all month, with 1 failed drill" in page


VOID = frozenset({"meta", "br", "img", "hr", "link", "input"})


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()


def _well_formed_and_self_contained(page: str) -> None:
    p = _Tags()
    p.feed(page)
    assert p.errors == [] and p.stack == []
    urls = set(re.findall(r"(?:https?:)?//[\w.-]+[^\s\"')]*", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls  # namespaces only
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!#)""", page)


def test_a_month_with_a_gap_is_not_proven(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx = fake_ctx()
    _month(ctx)
    _drill(ctx, 2, 100.0)
    _drill(ctx, 20, 100.0)
    ctx.now = lambda: datetime(2026, 12, 1, 6, tzinfo=UTC)
    r = make_report(ctx, 2026, 11, with_repository=False)
    assert not r.verdict.recoverable_all_month and r.verdict.statement.startswith("NOT PROVEN for")
    # covered: Nov 1 03:00 + 8d, then Nov 20 03:00 to month end: the gap is Nov 10 03:00 .. Nov 20 03:00 (+ 3h)
    assert r.verdict.longest_unproven == timedelta(days=10).total_seconds()
    assert any(a.startswith("No passing drill for 10.0 days") for a in r.actions)


def test_a_month_without_data_says_so(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx = fake_ctx()
    ctx.now = lambda: datetime(2026, 12, 1, 6, tzinfo=UTC)
    r = make_report(ctx, 2026, 11, with_repository=False)
    assert not r.verdict.has_data and r.verdict.statement.startswith("No data for this month")
    assert len(r.actions) == 1 and "daemon" in r.actions[0] and r.drills == []
    md, svgs = render(r, "md")
    assert "No data for this month" in md and svgs == {}
    _well_formed_and_self_contained(render(r, "html")[0])


def test_the_docs_sample_report_is_what_the_code_generates(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from opsd_sandbox.sample_report import generate

    docs = Path(__file__).resolve().parents[2] / "docs"
    for path in generate(tmp_path):
        assert path.read_text() == (docs / path.name).read_text(), (
            f"docs/{path.name} is stale: run 'python -m opsd_sandbox sample-report docs'")


def test_replication_in_the_month() -> None:
    """Slot incidents by slot with the most WAL each retained, and the longest replay lag any sample saw."""
    from opsd.actions.report.data import _health
    from opsd.core.records.health import HealthSample, Receiver, ReplicationReport, StandbyLag
    from opsd.core.records.runs import Incident
    from opsd.report.monthly import _health as health_section

    t0 = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)

    def inc(key: str, peak: float) -> Incident:
        return Incident(1, key, "slot", t0, t0, None, f"{key} retains", peak, IncidentMoment())

    lag = StandbyLag("node2", "10.0.0.2", "streaming", "async", 0, 0, 10, None, None, 42.0)
    samples = [HealthSample(t0, replication=ReplicationReport("primary", [lag])),
               HealthSample(t0, replication=ReplicationReport("standby", receiver=Receiver(
                   "streaming", "x:5432", "0/2", "0/1", 1, 7.5, t0, False)))]
    h = _health([inc("slot:debezium", 2 * 1024**3), inc("slot:debezium", 3 * 1024**3), inc("slot:old", 1024**3 + 1)],
                samples)
    assert h.slot_incidents == 3 and h.replay_lag_peak == 42.0
    assert [(p["slot"], p["incidents"], p["peak_retained_bytes"]) for p in h.slot_peaks] == [
        ("debezium", 2, 3 * 1024**3), ("old", 1, 1024**3 + 1)]
    assert _health([], []).replay_lag_peak is None and _health([], []).slot_peaks == []

    class Month:  # the one field the section reads
        health = h

    _title, paras, _rows = health_section(Month)  # type: ignore[arg-type]
    text = " ".join(paras)
    assert "Replication: 3 slot incident(s); slot debezium retained up to 3.0 GiB of WAL" in text, text


def test_each_full_backup_against_the_backup_window(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx = fake_ctx(opsd={"timezone": "UTC"}, schedule={"backup_window": "00:30-01:15"})
    _month(ctx)  # a full at 01:00 every night, 20 minutes each; the 13th failed
    ctx.now = lambda: datetime(2026, 12, 1, 6, tzinfo=UTC)
    r = make_report(ctx, 2026, 11, with_repository=False)
    nights = r.backups.nights
    assert len(nights) == 29 and r.backups.backup_window == "00:30-01:15"
    assert {n["margin"] for n in nights} == {-300.0}  # every one ended 5 minutes after the window closed
    assert any(a.startswith("29 full backup(s) ended after the backup window 00:30-01:15") for a in r.actions)
    md, _ = render(r, "md")
    assert "## Full backups and the backup window" in md and "OVERRAN by 5m" in md
    assert "0 of 29 full backup(s) ended inside it" in md
    ctx.settings = ctx.settings.model_copy(update={"schedule": ctx.settings.schedule.model_copy(
        update={"backup_window": "00:30-02:00"})})
    r = make_report(ctx, 2026, 11, with_repository=False)
    assert {n["margin"] for n in r.backups.nights} == {2400.0}
    assert not any("backup window" in a for a in r.actions)
    assert "40m to spare" in render(r, "md")[0]
