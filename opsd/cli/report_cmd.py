"""``opsd report``: the monthly recovery-drill report."""

from __future__ import annotations

from pathlib import Path

import click

from opsd.actions.jobs import run_job
from opsd.actions.report.data import parse_month, previous_month
from opsd.actions.report.job import make_report, report_job
from opsd.cli import App
from opsd.cli.common import emit_report, pass_app
from opsd.core.records.jobs import ReportResult
from opsd.core.records.runs import Outcome
from opsd.report.publish import render, to_state_dir


def _month(text: str | None, app: App) -> tuple[int, int]:
    if text is None:
        ctx = app.context()
        return previous_month(ctx.now().astimezone(ctx.settings.opsd.tz))
    return parse_month(text)


@click.command("report")
@click.option("--month", metavar="YYYY-MM", help="The month (default: the previous month, in opsd.timezone).")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (Markdown: the chart SVGs beside it). Default: standard output.")
@click.option("--publish", is_flag=True, help="Do what the scheduled job does: write every format under "
                                              "<state_dir>/reports/ and upload to [report] s3_uri; recorded.")
@pass_app
def report(app: App, month: str | None, fmt: str, output: Path | None, publish: bool) -> None:
    """Monthly recovery report: verdict, drills, backups and WAL, health, trends, action items."""
    year, mon = _month(month, app)
    ctx = app.context()
    if publish:
        outcome = run_job(ctx, "report", "cli", report_job(ctx, to_state_dir(ctx), year, mon))
        click.echo(outcome.summary)
        if outcome.outcome == Outcome.SKIPPED:
            return
        assert isinstance(outcome.details, ReportResult)
        click.echo("\n".join(outcome.details.files + outcome.details.uploaded))
        return
    rep = make_report(ctx, year, mon)
    prefix = f"{output.stem}-" if output else ""
    text, extra = render(rep, fmt, chart_prefix=prefix)
    emit_report(text, extra, output)


COMMANDS = [report]
