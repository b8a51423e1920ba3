"""The fleet's monthly report from a hand-made month: each cluster's verdict row, totals that add up, the overdue
cluster standing out in Markdown and HTML, the JSON documented by docs/schemas/fleet-report.json, the HTML
self-contained with its SVG charts, and rendered by headless Chromium (when installed) with nothing left out."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import pytest

from opsd.core.fleet.month import ClusterMonth, FleetMonth
from opsd.report.fleet_report import render
from opsd.report.fleet_views import FleetReportView, report_view
from opsd.report.jsonout import schema
from tests.unit.test_fleet_console import NOW, drill, fleet_view
from tests.unit.test_report_data import _well_formed_and_self_contained

BERLIN = ZoneInfo("Europe/Berlin")


def month() -> FleetMonth:
    late = tuple(date(2026, 10, d) for d in range(25, 32))
    return FleetMonth("2026-10", (
        ClusterMonth("analytics", "analytics-stanza", 2, 1, drill("drill-b", NOW - timedelta(days=20), "failed"),
                     late, True),
        ClusterMonth("main", "main-stanza", 5, 0, drill("drill-a", NOW - timedelta(days=16)), (), False),
        ClusterMonth("warehouse", "warehouse-stanza", 0, 0, None, (date(2026, 10, 30), date(2026, 10, 31)), False),
    ))


def view() -> FleetReportView:
    return report_view(month(), fleet_view(), BERLIN)


def test_totals_add_up() -> None:
    t = view()["totals"]
    assert (t["clusters"], t["passed"], t["failed"], t["overdue_days"], t["overdue_now"]) == (3, 7, 1, 9, 1)


def test_json_is_documented_and_in_the_timezone() -> None:
    text, extra = render(view(), "json")
    data = json.loads(text)
    jsonschema.validate(data, schema("fleet-report"))
    jsonschema.validate(data, json.loads((Path(__file__).parents[2] / "docs/schemas/fleet-report.json").read_text()))
    assert extra == {} and data["timezone"] == "Europe/Berlin" and data["month"] == "2026-10"
    ana = data["clusters"][0]
    assert ana["overdue_now"] and ana["overdue_days"][0] == "2026-10-25" and len(ana["overdue_days"]) == 7
    assert ana["last"]["finished_at"] == "2026-10-25T12:00:00+01:00" and ana["last"]["outcome"] == "failed"


def test_markdown_rows_totals_and_the_overdue_cluster_in_bold() -> None:
    text, charts = render(view(), "md", chart_prefix="x-")
    assert text.startswith("# Fleet drill report 2026-10")
    assert "| 3 | 7 | 1 | 9 | 1 |" in text
    ana = next(x for x in text.splitlines() if "analytics" in x and x.startswith("|"))
    assert "**OVERDUE**" in ana and "**FAILED**" in ana and "**drill-b**" in ana and "**7**" in ana
    main_row = next(x for x in text.splitlines() if x.startswith("| main"))
    assert "| 5 | 0 | passed | 2026-10-29 12:00 CET | drill-a | 0 | no |" in main_row
    assert "- warehouse: 2026-10-30, 2026-10-31" in text
    assert "1 cluster(s) OVERDUE now: analytics." in text and "(Europe/Berlin)" in text
    linked = re.findall(r"\]\((x-fleet-2026-10-\w+\.svg)\)", text)
    assert sorted(linked) == sorted(charts) and len(charts) == 3  # overdue days, passed, failed
    assert all(svg.startswith("<svg") for svg in charts.values())


def test_html_is_self_contained_with_charts_and_the_overdue_row_stands_out() -> None:
    page, extra = render(view(), "html")
    assert extra == {}
    _well_formed_and_self_contained(page)
    assert page.count("<svg") == 3 and "Days overdue per cluster" in page
    rows = re.findall(r"<tr( class=\"overdue\")?><td>(\w+)</td>", page)
    assert [(bool(c), n) for c, n in rows if n in ("analytics", "main", "warehouse")] == [
        (True, "analytics"), (False, "main"), (False, "warehouse")]
    assert 'class="verdict bad"' in page


def test_an_empty_month_renders_without_charts() -> None:
    from opsd.actions.fleet.view import FleetView

    empty = report_view(FleetMonth("2026-10"), FleetView("prod", NOW, timedelta(days=7), (), ()), BERLIN)
    page, _ = render(empty, "html")
    _well_formed_and_self_contained(page)
    assert "<svg" not in page and "No cluster is registered in the fleet." in page and 'verdict ok' in page


def chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.mark.skipif(chromium() is None and os.environ.get("CI") != "true",
                    reason="chromium not installed (apt-get install chromium; scripts/test installs it)")
def test_headless_chromium_renders_every_cluster_and_chart(tmp_path: Path) -> None:
    """What a browser makes of the page: its DOM after load holds every cluster row, the three charts as SVG
    elements, and the overdue row styled; a PDF prints (what an auditor keeps)."""
    page, _ = render(view(), "html")
    src = tmp_path / "fleet.html"
    src.write_text(page)
    base = [str(chromium()), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--dump-dom", src.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for name in ("analytics", "main", "warehouse"):
        assert f"<td>{name}</td>" in dom.stdout
    assert dom.stdout.count("<svg") == 3 and '<tr class="overdue"><td>analytics</td>' in dom.stdout
    pdf = tmp_path / "fleet.pdf"
    res = subprocess.run([*base, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", src.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5000, res.stderr
