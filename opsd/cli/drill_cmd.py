"""``opsd drill run|list|show|clean|heartbeat`` and ``opsd verify``."""

from __future__ import annotations

from datetime import timedelta

import click

from opsd.actions.backup import heartbeat
from opsd.actions.backup.verify import RepositoryDamaged, verify_job
from opsd.actions.drill.job import DrillFailed, DrillRequest, drill_job
from opsd.actions.drill.job import clean as clean_scratch
from opsd.actions.jobs import run_job
from opsd.actions.role import RoleSkip, require
from opsd.cli import App
from opsd.cli.common import pass_app
from opsd.core.records.base import Skipped
from opsd.core.records.drill import DrillResult
from opsd.core.records.jobs import VerifyResult
from opsd.core.schedule import parse_duration
from opsd.core.timeparse import ACCEPTED, parse_target_time
from opsd.errors import UsageError
from opsd.report import drill_console, jsonout
from opsd.report.jsonout import drill_run_view


@click.group("drill")
def drill() -> None:
    """Recovery drills: restore into a scratch instance, recover to a time, prove the data is there."""


@drill.command("run", epilog=f"TIME: {ACCEPTED}.")
@click.option("--target", default="random", show_default=True, metavar="latest|random|TIME",
              help="Recovery target: the latest recoverable time, a random time in the window, or a time.")
@click.option("--stanza", metavar="NAME", help="Stanza to drill (default: pgbackrest.stanza, or the next in "
                                                "rotation on a drill host).")
@click.option("--keep", is_flag=True, help="Leave the copy running for inspection, until drill.keep_for (24h).")
@click.option("--keep-for", "keep_for", metavar="DURATION",
              help="With --keep: how long the copy may run (e.g. 2h; default drill.keep_for).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), hidden=True,
              help="Seed for --target random (tests, reproductions).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def run(app: App, *, target: str, stanza: str | None, keep: bool, keep_for: str | None, seed: int | None,
        as_json: bool) -> None:
    """Run a drill now. Exit 1 when any check fails (named in the output), 4 when a drill is running."""
    s = app.settings()
    if stanza is not None and stanza not in s.drill_stanzas:
        raise UsageError(f"stanza {stanza!r} is not configured (drill.stanzas: {', '.join(s.drill_stanzas)})")
    when = None
    if target not in ("latest", "random"):
        when = parse_target_time(target, s.opsd.tz)
    req = DrillRequest(target=target if when is None else "given", target_time=when, stanza=stanza, keep=keep,
                       keep_for=_keep_for(keep, keep_for), seed=seed)
    ctx = app.context()
    report = (lambda m: None) if as_json else (lambda m: click.echo(f"  {m}", err=True))
    try:
        outcome = run_job(ctx, "drill", "cli", drill_job(ctx, req, report))
    except DrillFailed as e:
        click.echo(jsonout.dump("drill-run", e.result) if as_json else drill_console.drill(e.result, "failed"))
        raise
    if isinstance(outcome.details, Skipped):  # this node's role does not run drills: exit 0
        click.echo(jsonout.dump("drill-run", outcome.details) if as_json else outcome.summary)
        return
    assert isinstance(outcome.details, DrillResult)
    click.echo(jsonout.dump("drill-run", outcome.details) if as_json
               else drill_console.drill(outcome.details, outcome.outcome))


def _keep_for(keep: bool, value: str | None) -> timedelta | None:
    if value is None:
        return None
    if not keep:
        raise UsageError("--keep-for goes with --keep")
    try:
        d = parse_duration(value)
    except ValueError as e:
        raise UsageError(f"--keep-for {value!r}: {e}") from None
    if d <= timedelta(0):
        raise UsageError(f"--keep-for {value!r}: must be longer than zero")
    return d


@drill.command("list")
@click.option("--limit", type=click.IntRange(1, 100000), default=20, show_default=True,
              help="How many drills, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_(app: App, limit: int, as_json: bool) -> None:
    """Recent drills with their outcome, target, RTO, RPO and failed checks."""
    ctx = app.context()
    runs = ctx.history.runs("drill", limit=limit)
    if as_json:
        click.echo(jsonout.dump("drill-list", [drill_run_view(r) for r in runs]))
    else:
        click.echo(drill_console.drills(runs, ctx.settings.opsd.tz))


@drill.command("show")
@click.argument("run_id", type=click.IntRange(1, 2**63 - 1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def show(app: App, run_id: int, as_json: bool) -> None:
    """One drill in full: target, backup, RTO phases, RPO and every check."""
    ctx = app.context()
    r = ctx.history.get(run_id)
    if r is None or r.job != "drill":
        raise UsageError(f"no drill with id {run_id} (see 'opsd drill list')")
    if as_json:
        click.echo(jsonout.dump("drill-show", drill_run_view(r)))
    else:
        d = r.details_as(DrillResult) or DrillResult(stanza="", target_mode="", hint=r.details.hint)
        click.echo(drill_console.drill(d, r.outcome, r.id, r.error))


@drill.command("clean")
@pass_app
def clean(app: App) -> None:
    """Stop and remove scratch instances left by --keep or by a crashed drill (never anything else)."""
    ctx = app.context()
    removed = clean_scratch(ctx)
    click.echo("\n".join(f"removed {d}" for d in removed) or "nothing to clean")


@drill.command("heartbeat")
@pass_app
def beat(app: App) -> None:
    """Write one marker row into opsd.heartbeat now (the daemon does this every drill.heartbeat_interval)."""
    ctx = app.context()
    try:
        require(ctx, "heartbeat")
    except RoleSkip as e:
        click.echo(str(e))
        return
    row = heartbeat.write(ctx)
    click.echo(f"heartbeat {row.id} written at {row.written_at.isoformat()} (LSN {row.lsn})")


@click.command("verify")
@click.option("--set", "backup_set", metavar="LABEL", help="Verify one backup set only.")
@click.option("--stanza", metavar="NAME", help="Stanza (default: pgbackrest.stanza).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def verify(app: App, backup_set: str | None, stanza: str | None, as_json: bool) -> None:
    """pgbackrest verify: read back every backup file and WAL segment. Exit 1 when anything is damaged."""
    ctx = app.context()
    try:
        outcome = run_job(ctx, "verify", "cli", verify_job(ctx, stanza, backup_set))
    except RepositoryDamaged as e:
        click.echo(jsonout.dump("verify", e.result) if as_json else drill_console.verify(e.result))
        raise
    if isinstance(outcome.details, Skipped):
        click.echo(jsonout.dump("verify", outcome.details) if as_json else outcome.summary)
        return
    assert isinstance(outcome.details, VerifyResult)
    click.echo(jsonout.dump("verify", outcome.details) if as_json else drill_console.verify(outcome.details))


COMMANDS = [drill, verify]
