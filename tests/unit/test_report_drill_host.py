"""The monthly report says on which host each drill ran: a drill of this host shows this host, a drill that ran on a
drill host of the fleet and was imported from the cluster's repository (``repo_results.import_results``: host = the
drill host, trigger ``fleet``) shows the drill host, in the JSON, the Markdown and the HTML drill tables."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

from opsd.actions.fleet import repo_results
from opsd.actions.report.job import make_report
from opsd.context import Context
from opsd.core.records.checks import OK, CheckResult
from opsd.core.records.drill import DrillResult
from opsd.core.records.fleet import DrillSummary, FleetDrill
from opsd.report.publish import render
from opsd_sandbox import records

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DRILL_HOST = "drill7.fleet.example"


def _cluster(tmp_path: Path, fake_ctx: Callable[..., Context]) -> Context:
    """A cluster whose pgBackRest repository is a posix folder in tmp_path."""
    (tmp_path / "repo").mkdir()
    conf = tmp_path / "pgbackrest.conf"
    conf.write_text(f"[global]\nrepo1-path={tmp_path / 'repo'}\n\n[main]\npg1-path=/nowhere\n")
    ctx = fake_ctx(opsd={"timezone": "UTC"}, pgbackrest={"config": str(conf), "stanza": "main"})
    ctx.now = lambda: datetime(2026, 12, 1, 6, tzinfo=UTC)
    return ctx


def _fleet_drill(at: datetime) -> FleetDrill:
    res = DrillResult(stanza="main", target_mode="random", target=at.isoformat(), backup="20261110-010000F",
                      rto_seconds=300.0, rpo_seconds=42.0, checks=[CheckResult("databases", OK, "3 databases")])
    summary = DrillSummary(host=DRILL_HOST, started_at=at, finished_at=at + timedelta(minutes=6), outcome="ok",
                           summary=res.summary(), run_id=7, rto_seconds=300.0, rpo_seconds=42.0, claim=11)
    return FleetDrill(fleet="prod", cluster="main", stanza="main", drill=summary, result=res)


def _month_with_a_local_and_an_imported_drill(ctx: Context) -> tuple[int, int]:
    at = NOV + timedelta(days=2, hours=3)
    local = ctx.history.record("drill", "schedule", at, at + timedelta(minutes=5), "ok", details=records.drill(
        "main", target=f"{at:%Y-%m-%d} 01:00:00+00:00", backup_label=f"{at:%Y%m%d}-010000F", rto=280.0, rpo=30.0,
        restore_seconds=200.0, recovery_seconds=80.0, verify_seconds=9.0, replay_rate=50e6, restore_rate=200e6,
        checks=[("plan", OK, "")]))
    repo_results.publish(ctx.settings.pgbackrest.config, "main", _fleet_drill(NOV + timedelta(days=10, hours=2)))
    imported = repo_results.import_results(ctx)
    assert len(imported.imported) == 1 and not imported.problems
    return local, imported.imported[0]


def test_a_drill_imported_from_a_drill_host_shows_that_host(tmp_path: Path,
                                                            fake_ctx: Callable[..., Context]) -> None:
    ctx = _cluster(tmp_path, fake_ctx)
    local, fleet = _month_with_a_local_and_an_imported_drill(ctx)
    r = make_report(ctx, 2026, 11, with_repository=False)
    assert [(d.id, d.host) for d in r.drills] == [(local, socket.gethostname()), (fleet, DRILL_HOST)]

    data = json.loads(render(r, "json")[0])
    assert [(d["id"], d["host"]) for d in data["drills"]] == [(local, socket.gethostname()), (fleet, DRILL_HOST)]

    md, _ = render(r, "md")
    table = md.split("## Recovery drills", 1)[1].split("## ", 1)[0]
    head, rule, *rows = [line for line in table.splitlines() if line.startswith("|")]
    cols = [c.strip() for c in head.strip("|").split("|")]
    assert cols[:3] == ["#", "date", "host"] and rule.count("---") == len(cols)
    cells = {int(c[0]): c for c in ([x.strip() for x in row.strip("|").split("|")] for row in rows)}
    assert all(len(c) == len(cols) for c in cells.values())
    assert cells[local][2] == socket.gethostname() and cells[fleet][2] == DRILL_HOST
    assert cells[fleet][-1] == "passed"

    page, _ = render(r, "html")
    grid = _Tables()
    grid.feed(page)
    drills = next(t for t in grid.tables if t[0][:3] == ["#", "date", "host"])
    assert [row[2] for row in drills[1:]] == [socket.gethostname(), DRILL_HOST]


class _Tables(HTMLParser):
    """Every <table> of a page as rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
