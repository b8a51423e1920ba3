"""``opsd backup`` and ``opsd info``."""

from __future__ import annotations

import click

from opsd.actions.backup.job import take_backup
from opsd.actions.jobs import JobOutcome, run_job
from opsd.cli import App
from opsd.cli.common import on_terminal, pass_app, progress
from opsd.core.records.runs import Outcome


@click.command("backup")
@click.option("--type", "backup_type", type=click.Choice(["full", "diff", "incr"]), default="full", show_default=True,
              help="pgBackRest backup type (diff/incr become full when no prior full exists).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def backup(app: App, backup_type: str, as_json: bool) -> None:
    """Take a backup now. Exits 4 if another backup is running (says who holds the lock)."""
    ctx = app.context()

    def body() -> JobOutcome:
        r = take_backup(ctx, backup_type, on_line=progress if on_terminal() and not as_json else None)
        return JobOutcome(Outcome.OK, r.summary(), r)

    outcome = run_job(ctx, f"backup-{backup_type}", "cli", body)  # a standby's skip prints why, exit 0
    if as_json:
        from opsd.report import jsonout  # the JSON views import every record: only when asked

        click.echo(jsonout.dump("backup", outcome.details))
    else:
        click.echo(outcome.summary)


@click.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def info(app: App, as_json: bool) -> None:
    """Backups and WAL archive range in the repository, and opsd's recent runs."""
    from opsd.actions.restore.service import load_timelines
    from opsd.report import console, jsonout
    from opsd.report.jsonout import InfoView, TimelinesView

    ctx = app.context()
    st = ctx.pgbackrest.info()
    recent = ctx.history.runs(limit=10)
    t = load_timelines(ctx, st)
    if as_json:
        click.echo(jsonout.dump("info", InfoView(stanza=st, timelines=TimelinesView(
            current=t.newest, switches=list(t.switches)), recent_runs=recent)))
    else:
        click.echo(console.info(st, ctx.settings.opsd.tz, recent, (t.newest, t.switches)))


COMMANDS = [backup, info]
