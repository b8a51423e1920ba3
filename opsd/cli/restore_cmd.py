"""``opsd window`` and ``opsd restore``."""

from __future__ import annotations

from pathlib import Path

import click

from opsd.actions.jobs import JobOutcome, run_job
from opsd.actions.restore.run import execute
from opsd.actions.restore.service import load_window, plan_restore
from opsd.actions.restore.view import PlanView, describe
from opsd.cli import App
from opsd.cli.common import pass_app
from opsd.cli.restore_args import confirm, request, resolved, show_plan
from opsd.core.records.jobs import RestoreResult, RestoreTarget
from opsd.core.records.runs import Outcome
from opsd.core.timeparse import ACCEPTED
from opsd.report import restore_console


@click.command("window")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def window(app: App, as_json: bool) -> None:
    """Earliest and latest recoverable times per timeline, and gaps in the WAL archive (repository only)."""
    ctx = app.context()
    _info, w = load_window(ctx)
    if as_json:
        from opsd.report import jsonout  # the JSON views import every record: only when asked
        from opsd.report.jsonout import GapView, WindowView

        click.echo(jsonout.dump("window", WindowView(
            intervals=list(w.intervals), gaps=[GapView({"timeline": g.timeline, "from": g.missing_from.name,
                                                        "to": g.missing_to.name, "missing": g.count}) for g in w.gaps],
            unusable_backups=list(w.unusable), switches=list(w.switches), earliest=w.earliest, latest=w.latest)))
    else:
        click.echo(restore_console.window(w, ctx.settings.opsd.tz))


@click.command("restore", epilog=f"Times: {ACCEPTED}.")
@click.option("--to-time", metavar="TIME", help="Recover to this time (inclusive).")
@click.option("--to-name", metavar="NAME", help="Recover to this restore point (opsd restore-point).")
@click.option("--target-lsn", "--to-lsn", "target_lsn", metavar="LSN", help="Recover to this LSN.")
@click.option("--target-xid", metavar="XID", help="Recover to this transaction id (inclusive).")
@click.option("--before-xid", type=click.IntRange(3, 2**32 - 1), metavar="XID",
              help="Recover to just before this transaction committed (found in the archived WAL).")
@click.option("--type", "target_kind", type=click.Choice(["immediate"]),
              help="'immediate': stop as soon as the backup is consistent.")
@click.option("--since", metavar="TIME", help="With --to-name/--before-xid: read the WAL archived since TIME "
                                              "(default: the last 24 hours).")
@click.option("--set", "set_label", metavar="LABEL", help="Use this backup set instead of the one opsd picks.")
@click.option("--target-timeline", metavar="TL", help="Timeline to follow (default: latest).")
@click.option("--target-dir", type=click.Path(file_okay=False, path_type=Path), help="Side restore: empty directory.")
@click.option("--port", type=click.IntRange(1, 65535), help="Side restore: port of the restored server.")
@click.option("--in-place", is_flag=True, help="Restore over [postgres] data_dir (moved aside first).")
@click.option("--delta", is_flag=True, help="With --in-place --force: overwrite in place instead of moving aside.")
@click.option("--force", is_flag=True, help="With --in-place: allow --delta, and accept a cluster that was not shut "
                                             "down cleanly when no process of it is alive.")
@click.option("--start", is_flag=True, help="Start the restored server and wait until recovery reaches the target.")
@click.option("--pause", is_flag=True, help="With --start: stay paused at the target instead of promoting.")
@click.option("--table", "table", metavar="SCHEMA.TABLE", multiple=True,
              help="Restore only this table (repeatable) through a scratch copy, beside the live one: SQL form "
                   "('\"Inventory\".\"StockMovements\"') or plain form (Inventory.StockMovements, ignoring case).")
@click.option("--into-schema", metavar="NAME", help="With --table: load into this new schema of production.")
@click.option("--into-file", type=click.Path(dir_okay=False, path_type=Path),
              help="With --table: write a SQL dump here instead; production is not touched.")
@click.option("--dbname", metavar="DB", help="With --table: the database (default: [postgres] dbname).")
@click.option("--wait-timeout", type=click.IntRange(1, 7 * 86400), default=3600, show_default=True,
              help="Seconds to wait for recovery with --start.")
@click.option("--dry-run", is_flag=True, help="Print the plan and stop; nothing is written anywhere.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (in-place restores, --into-schema).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan (and result) as JSON.")
@pass_app
def restore(app: App, /, **kw: object) -> None:
    """Point-in-time restore with a preflight plan. Exit 5 when the plan refuses (nothing touched)."""
    as_json, dry_run, yes = bool(kw.pop("as_json")), bool(kw.pop("dry_run")), bool(kw.pop("yes"))
    wait_timeout = float(kw.pop("wait_timeout"))  # type: ignore[arg-type]
    kw["immediate"] = kw.pop("target_kind") == "immediate"
    if kw["table"]:
        from opsd.cli.table_cmd import restore_tables  # a copy, the table's catalog, the put-back: only for --table

        restore_tables(app, kw, dry_run=dry_run, yes=yes, as_json=as_json)
        return
    req = request(app, kw)
    ctx = app.context()
    req = resolved(app, ctx, req, kw, as_json)
    plan, _w = plan_restore(ctx, req)
    described = describe(plan)
    if show_plan(restore_console.plan(described), lambda: _json(described),
                 as_json=as_json, dry_run=dry_run, refusals=plan.refusals()):
        return
    if req.in_place and not yes:
        confirm(f"Restore over {req.dest}? The current directory is "
                f"{'overwritten (--delta)' if req.delta else 'moved aside, not deleted'}", "an in-place restore")

    def body() -> JobOutcome:
        r = execute(ctx, plan, report=lambda m: click.echo(f"  {m}", err=True), wait_timeout=wait_timeout)
        result = r.model_copy(update={"target": RestoreTarget(**described["target"]), "wal_bytes": plan.wal_bytes})
        return JobOutcome(Outcome.OK, r.summary(), result)

    outcome = run_job(ctx, "restore", "cli", body)
    if as_json:
        assert isinstance(outcome.details, RestoreResult)
        click.echo(_json(described, outcome.details))
    else:
        click.echo(outcome.summary)


def _json(described: PlanView, result: RestoreResult | None = None) -> str:
    from opsd.report import jsonout  # the JSON views import every record: only when asked

    view = jsonout.RestoreView(plan=described)
    if result is not None:
        view["result"] = result
    return jsonout.dump("restore", view)


COMMANDS = [window, restore]
