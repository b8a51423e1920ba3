"""``opsd fleet``: the fleet of drill hosts and clusters that share drills through etcd (docs/fleet.md)."""

from __future__ import annotations

from pathlib import Path

import click

from opsd.cli import App
from opsd.cli.common import emit_report, pass_app
from opsd.errors import ExitCode, OpsdError

STATUS_EXIT = "Exit codes: 0 every cluster is within [fleet] drill_every, 1 a cluster is overdue (or etcd could " \
              "not be read), 2 usage, 3 config invalid or no [fleet] endpoints."
REPORT_EXIT = "Exit codes: 0 written, 1 etcd could not be read, 2 usage, 3 config invalid or no [fleet] endpoints."


class NoFleet(OpsdError):
    exit_code = ExitCode.CONFIG


def _require_fleet(app: App) -> None:
    if not app.settings().fleet.enabled:
        raise NoFleet("no fleet: [fleet] endpoints is empty",
                      hint="list the etcd client URLs in [fleet] endpoints (docs/fleet.md)")


@click.group("fleet")
def fleet() -> None:
    """The fleet: every cluster's drills shared by the drill hosts through etcd (docs/fleet.md)."""


@fleet.command("status", epilog=STATUS_EXIT)
@click.option("--json", "as_json", is_flag=True, help="Print the fleet as JSON (docs/schemas/fleet-status.json).")
@pass_app
def status(app: App, as_json: bool) -> None:
    """Every cluster of the fleet (last drill: when, where, verdict, RTO, RPO; due or overdue; the drill in
    flight; too large for every drill host), the drill hosts alive, and a summary. Read from etcd now."""
    _require_fleet(app)
    from opsd.actions.fleet.read import read_view
    from opsd.report import fleet_console, jsonout
    from opsd.report.fleet_views import status_view

    ctx = app.context()
    view = status_view(read_view(ctx), ctx.settings.opsd.tz)
    click.echo(jsonout.dump("fleet-status", view) if as_json else fleet_console.fleet_status(view), nl=as_json)
    if view["overdue"]:
        raise SystemExit(ExitCode.FAILED)


@fleet.command("report", epilog=REPORT_EXIT)
@click.option("--month", metavar="YYYY-MM", help="The month (default: the previous month, in opsd.timezone).")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (Markdown: the chart SVGs beside it). Default: standard output.")
@pass_app
def report(app: App, month: str | None, fmt: str, output: Path | None) -> None:
    """The fleet's monthly drill report: each cluster's verdict row (drills passed, failed, last drill, days
    overdue, overdue now) and the month's totals."""
    _require_fleet(app)
    from opsd.actions.fleet.read import read_month
    from opsd.actions.report.data import previous_month
    from opsd.report.fleet_report import render
    from opsd.report.fleet_views import report_view

    ctx = app.context()
    tz = ctx.settings.opsd.tz
    if month is None:
        year, mon = previous_month(ctx.now().astimezone(tz))
        month = f"{year:04d}-{mon:02d}"
    fm, view = read_month(ctx, month.strip())
    text, extra = render(report_view(fm, view, tz), fmt, chart_prefix=f"{output.stem}-" if output else "")
    emit_report(text, extra, output)


COMMANDS = [fleet]
