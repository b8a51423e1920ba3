"""The monthly report's "Service levels" section: each success metric answered, the same numbers in Markdown,
HTML and JSON, the charts inside the section, a part whose data is missing saying what and why (never a clean
verdict), no section with [queries] off, and the index figures kept for the metrics."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opsd.actions.report import index_figures
from opsd.actions.report.job import make_report
from opsd.actions.report.rows import MonthReport
from opsd.actions.report.service import Sources
from opsd.adapters.stores.availability import AvailabilityStore
from opsd.core.records.service import ObjectiveDay, ObjectiveMonth, TableGrowth
from opsd.errors import DatabaseError
from opsd.report.publish import render
from opsd.report.service_section import pct
from opsd_sandbox.sample_service import MONTH, _index_report, record_availability

NOW = datetime(2026, 11, 1, 6, tzinfo=UTC)


def _objectives(ctx: Any, start: datetime, end: datetime) -> list[ObjectiveMonth]:
    days = [ObjectiveDay(day="2026-10-01", calls=120_000, over=2_400, share_under=0.98, verdict="met"),
            ObjectiveDay(day="2026-10-02", calls=100_000, over=7_300, share_under=0.927, verdict="missed"),
            ObjectiveDay(day="2026-10-03", calls=90_000, over=100, share_under=None, verdict="unknown",
                         why="the duration log was rotated away before it was read")]
    return [ObjectiveMonth(name="all", threshold_seconds=0.1, target=0.95, calls=310_000, over=9_800,
                           share_under=1 - 9_800 / 310_000, days_met=1, days_missed=1, days_unknown=1,
                           verdict="missed", days=days)]


def _tables(ctx: Any, start: datetime, end: datetime) -> list[TableGrowth]:
    return [TableGrowth(dbname="supply", schema_name="supply", table_name="stock_movements", first_day="2026-10-01",
                        last_day="2026-10-31", size_first=40 * 2**30, size_last=46 * 2**30, growth_bytes=6 * 2**30,
                        growth_share=0.15)]


def _refuse(*args: Any) -> Any:
    raise DatabaseError("cannot connect to PostgreSQL at /run/postgresql:5432 as opsd: connection refused")


SOURCES = Sources(objectives=_objectives, indexes=_index_report, tables=_tables)


def _report(fake_ctx: Any, sources: Sources = SOURCES, **sections: Any) -> tuple[Any, MonthReport]:
    ctx = dataclasses.replace(fake_ctx(**sections), now=lambda: NOW)
    record_availability(AvailabilityStore(ctx.history.db))
    return ctx, make_report(ctx, 2026, 10, with_repository=False, sources=sources)


def test_the_same_numbers_in_markdown_html_and_json(fake_ctx: Any) -> None:
    _ctx, report = _report(fake_ctx)
    md, files = render(report, "md", chart_prefix="r-")
    page = render(report, "html")[0]
    doc = json.loads(render(report, "json")[0])["service"]
    a = doc["availability"]
    assert a["verdict"] == "not proven" and a["down_seconds"] == 23 * 60 and a["unknown_seconds"] == 50 * 60
    assert [(o["start"][:16], o["ended"]) for o in a["outages"]] == [("2026-10-09T02:13", "up"),
                                                                      ("2026-10-17T10:02", "up")]
    figures = [pct(a["measured_share"], 3), pct(a["lower_bound"], 3), "2026-10-09 02:13", "23m", "50m",
               "supply.shipments_carrier_ref_idx", "order_lines_qty_positive", "4.7 GiB", "46.0 GiB", "15.0%",
               "98.00% of 120,000 (2,400 over)", "MISSED 92.70% of 100,000 (7,300 over)",
               "unknown: the duration log was rotated away before it was read"]
    for text in figures:
        assert text in md, text
        assert text in page.replace("&#x27;", "'"), text
    assert [x["key"] for x in doc["answers"]] == ["objective:all", "availability", "recovery", "migrations",
                                                  "integrity", "storage"]
    verdicts = {x["key"]: x["verdict"] for x in doc["answers"]}
    assert verdicts == {"objective:all": "missed", "availability": "not proven", "recovery": "no data",
                        "migrations": "measured", "integrity": "missed", "storage": "measured"}
    assert doc["storage"]["unused_bytes"] == 5_050_000_000 and doc["integrity"]["invalid_indexes"][0]["name"] == (
        "shipments_carrier_ref_idx")
    # the charts are inside the section, before the action items, and not under Trends
    service, rest = page.split("<h2>Service levels</h2>")[1].split("<h2>Action items</h2>")
    assert 'aria-label="Availability: availability"' in service and 'aria-label="Query objectives per day: ' \
        'objective_all"' in service and "<svg" in service and "service_" not in rest
    assert set(files) >= {"r-2026-10-service_availability.svg", "r-2026-10-service_objective_all.svg"}
    assert "(r-2026-10-service_availability.svg)" in md.split("## Action items")[0].split("## Service levels")[1]
    assert any(x.startswith("Query objective all (95% under 100 ms) missed on 1 day(s): 2026-10-02;")
               for x in report.actions), report.actions
    assert any("Invalid index supply.shipments_carrier_ref_idx" in x for x in report.actions)


def test_a_drill_whose_amcheck_found_corruption_misses_integrity_even_with_the_catalogs_unread(fake_ctx: Any
                                                                                              ) -> None:
    ctx = dataclasses.replace(fake_ctx(), now=lambda: NOW)
    from opsd.core.records.checks import CRITICAL
    from opsd_sandbox import records

    at = MONTH + timedelta(days=3)
    ctx.history.record("drill", "schedule", at, at + timedelta(hours=1), "failed", error="amcheck: corrupt",
                       details=records.drill("main", rto=3.0, rpo=1.0, restore_seconds=2.0, recovery_seconds=1.0,
                                             checks=[("amcheck", CRITICAL, "1 corrupt")]))
    sources = dataclasses.replace(SOURCES, indexes=_refuse)
    report = make_report(ctx, 2026, 10, with_repository=False, sources=sources)
    assert report.service is not None
    [answer] = [x for x in report.service.answers if x.key == "integrity"]
    assert answer.verdict == "missed" and "1 found corruption" in answer.measured
    assert "catalogs not read" in answer.measured and report.service.integrity.invalid_indexes == []
    assert [a.status for a in report.service.integrity.amcheck] == ["critical"]


def test_missing_data_says_what_and_why_never_a_clean_verdict(fake_ctx: Any) -> None:
    sources = Sources(objectives=_refuse, indexes=_refuse, tables=lambda *a: [])
    ctx = dataclasses.replace(fake_ctx(), now=lambda: NOW)
    report = make_report(ctx, 2026, 10, with_repository=False, sources=sources)
    assert report.service is not None
    verdicts = {x.key: x.verdict for x in report.service.answers}
    assert verdicts["objective:all"] == verdicts["availability"] == verdicts["storage"] == "no data"
    assert verdicts["integrity"] == "not proven"  # no drill ran amcheck, catalogs unread
    md = render(report, "md")[0]
    section = md.split("## Service levels")[1].split("## Action items")[0]
    for why in ("the objective's counts could not be read: cannot connect to PostgreSQL",
                "no health probe was recorded in the month",
                "no drill ran amcheck this month",
                "the catalogs could not be read when the report was made (cannot connect",
                "no table size was recorded in the month"):
        assert why in section, why
    assert " met |" not in section  # not one clean verdict
    assert not (ctx.settings.opsd.state_dir / "index-figures.json").exists()


def test_no_section_with_queries_off(fake_ctx: Any) -> None:
    _ctx, report = _report(fake_ctx, queries={"enabled": False})
    assert report.service is None
    assert "Service levels" not in render(report, "md")[0]
    assert json.loads(render(report, "json")[0])["service"] is None


def test_the_index_report_figures_are_kept_for_the_metrics(fake_ctx: Any) -> None:
    ctx, _ = _report(fake_ctx)
    f = index_figures.load(ctx.settings)
    assert f is not None and (f.invalid, f.not_valid, f.unused, f.unused_bytes) == (1, 1, 2, 5_050_000_000)
    assert f.at == NOW


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_a_month_without_outages_says_so(fake_ctx: Any, fmt: str) -> None:
    ctx = dataclasses.replace(fake_ctx(), now=lambda: NOW)
    from opsd.core.availability import UP, Reach

    store = AvailabilityStore(ctx.history.db)
    for t in (MONTH - timedelta(minutes=1), MONTH + timedelta(days=31, minutes=1)):
        store.note(Reach(UP), t, timedelta(days=40))
    report = make_report(ctx, 2026, 10, with_repository=False, sources=SOURCES)
    assert report.service is not None and report.service.availability is not None
    assert report.service.availability.verdict == "met"
    text = render(report, fmt)[0]
    assert "No outage was seen." in text and re.search(r"100\.000% up of the time measured", text)


def test_an_objective_month_from_its_days() -> None:
    from opsd.actions.report.service_sources import month_of
    from opsd.core.records.objectives import ObjectiveDay as Day
    from opsd.core.records.objectives import ObjectiveResult

    def result(*states: str) -> ObjectiveResult:
        days = [Day(day=f"2026-10-0{i + 1}", calls=100 if s != "no_statements" else 0, over=1, share_over=0.01,
                    share_under=0.99, state=s, reasons=[f"why {i}"] if s in ("unknown", "incomplete") else [])
                for i, s in enumerate(states)]
        return ObjectiveResult(name="all", threshold_ms=100.0, target=0.95, calls=300, over=3, days=days)

    m = month_of(result("met", "missed", "unknown", "incomplete"), ["texts hidden"])
    assert (m.verdict, m.days_met, m.days_missed, m.days_unknown) == ("missed", 1, 1, 2)
    assert m.threshold_seconds == 0.1 and [d.verdict for d in m.days][1] == "missed"
    assert m.missing == ["2 day(s) unknown or incomplete: why 2; why 3", "texts hidden"]
    assert month_of(result("met", "incomplete"), []).verdict == "not proven"
    assert month_of(result("met", "no_statements"), ["a note"]).verdict == "met"
    assert month_of(result("met", "no_statements"), ["a note"]).missing == []
    empty = month_of(result("no_statements"), [])
    assert empty.verdict == "no data" and empty.missing == ["no statement of this objective was counted in the month"]


def test_table_growth_over_each_tables_own_days() -> None:
    from datetime import date

    from opsd.actions.report.service_parts import storage
    from opsd.actions.report.service_sources import growth
    from opsd.core.records.queries import TableSize

    sizes = [TableSize(date(2026, 10, d), "db", "s", t, n) for d, t, n in (
        (1, "a", 100), (31, "a", 150), (10, "new", 0), (31, "new", 40), (1, "gone", 900), (5, "gone", 950))]
    g = {t.table_name: t for t in growth(sizes)}
    assert (g["a"].growth_bytes, g["a"].growth_share, g["new"].first_day, g["new"].growth_share) == (
        50, 0.5, "2026-10-10", None)
    st = storage("catalogs unreadable", list(g.values()), [])
    assert [t.table_name for t in st.tables] == ["a", "new"] and st.tables_bytes == 190  # "gone" is not storage now


def test_refresh_reads_the_index_report_without_advice_and_keeps_its_figures(fake_ctx: Any, monkeypatch: Any) -> None:
    import opsd.actions.queries.indexes as indexes

    ctx = dataclasses.replace(fake_ctx(), now=lambda: NOW)
    asked: list[bool] = []

    def report(c: Any, *, advise: bool = True, **kw: Any) -> Any:
        asked.append(advise)
        return _index_report(c)

    monkeypatch.setattr(indexes, "index_report", report)
    f = index_figures.refresh(ctx)
    assert asked == [False] and f.invalid == 1 and index_figures.load(ctx.settings) == f
