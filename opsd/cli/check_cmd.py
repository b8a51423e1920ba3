"""``opsd check`` and ``opsd setup``."""

from __future__ import annotations

import click

from opsd.actions.backup.setup import setup as do_setup
from opsd.actions.checks import ChecksCritical, check_job
from opsd.actions.jobs import run_job
from opsd.actions.queries.setup import setup as query_setup
from opsd.cli import App
from opsd.cli.common import pass_app
from opsd.core.records.checks import CRITICAL
from opsd.core.records.jobs import CheckReport
from opsd.errors import CheckFailed, UsageError
from opsd.report import console, jsonout

RESTART_NEEDED = 6  # "done, but PostgreSQL must be restarted" (EXIT_CODES)


@click.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def check(app: App, as_json: bool) -> None:
    """pgbackrest check, archiver health (pg_stat_archiver, age of the oldest .ready file) and backup age
    against the schedule. Exits 1 if any check is critical."""
    ctx = app.context()
    try:
        details = run_job(ctx, "check", "cli", check_job(ctx)).details
    except ChecksCritical as e:
        details = e.report
    assert isinstance(details, CheckReport)
    click.echo(jsonout.dump("check", details) if as_json else console.checks(details.results))
    bad = [r for r in details.results if r.status == CRITICAL]
    if bad:
        raise CheckFailed(f"{len(bad)} check(s) critical: {', '.join(r.name for r in bad)}")


@click.command("setup")
@click.option("--restart", is_flag=True, help="Restart PostgreSQL if a changed setting needs it.")
@click.option("--replace-archive-command", is_flag=True,
              help="Replace an archive_command that does not push to this stanza.")
@click.option("--query-stats", is_flag=True,
              help="Instead of archiving: turn on what query statistics need (pg_stat_statements, query ids, the "
                   "duration log without bind parameters, I/O timing); docs/queries.md.")
@pass_app
def setup(app: App, restart: bool, replace_archive_command: bool, query_stats: bool) -> None:
    """Configure archiving for pgBackRest (idempotent), create the stanza and run pgbackrest check; with
    --query-stats, query statistics instead. Exits 6 when PostgreSQL must still be restarted (1 is a failure: a
    script or playbook can tell them apart)."""
    if query_stats and replace_archive_command:
        raise UsageError("--replace-archive-command is for archiving: not with --query-stats")
    ctx = app.context()
    result = (query_setup(ctx, restart=restart) if query_stats
              else do_setup(ctx, restart=restart, replace_archive_command=replace_archive_command))
    click.echo(console.setup(result))
    if not result.complete:
        raise SystemExit(RESTART_NEEDED)


COMMANDS = [check, setup]
