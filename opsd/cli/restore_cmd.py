"""``opsd window`` and ``opsd restore``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from opsd.actions.jobs import JobOutcome, run_job
from opsd.actions.restore.plan import Request
from opsd.actions.restore.run import execute
from opsd.actions.restore.service import load_window, plan_restore
from opsd.actions.restore.view import describe
from opsd.cli import App
from opsd.cli.common import pass_app
from opsd.core.records.jobs import RestoreResult, RestoreTarget
from opsd.core.records.runs import Outcome
from opsd.core.timeparse import ACCEPTED, parse_target_time
from opsd.errors import RefusedError, UsageError
from opsd.report import jsonout, restore_console
from opsd.report.jsonout import GapView, RestoreView, WindowView


@click.command("window")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def window(app: App, as_json: bool) -> None:
    """Earliest and latest recoverable times per timeline, and gaps in the WAL archive (repository only)."""
    ctx = app.context()
    _info, w = load_window(ctx)
    if as_json:
        click.echo(jsonout.dump("window", WindowView(
            intervals=list(w.intervals), gaps=[GapView({"timeline": g.timeline, "from": g.missing_from.name,
                                                        "to": g.missing_to.name, "missing": g.count}) for g in w.gaps],
            unusable_backups=list(w.unusable), switches=list(w.switches), earliest=w.earliest, latest=w.latest)))
    else:
        click.echo(restore_console.window(w, ctx.settings.opsd.tz))


def _request(app: App, to_time: str | None, target_lsn: str | None, target_xid: str | None, immediate: bool,
             **kw: object) -> Request:
    kinds = [k for k, v in (("--to-time", to_time), ("--target-lsn", target_lsn), ("--target-xid", target_xid),
                            ("--type immediate", immediate)) if v]
    if len(kinds) != 1:
        raise UsageError(f"give exactly one target: --to-time, --target-lsn, --target-xid or --type immediate"
                         f" (got {', '.join(kinds) or 'none'})")
    _conflicts(immediate, target_lsn, **kw)
    s = app.settings()
    in_place, target_dir, port = kw["in_place"], kw["target_dir"], kw["port"]
    dest = s.postgres.data_dir if in_place else Path(str(target_dir)).absolute()
    when = parse_target_time(to_time, s.opsd.tz) if to_time else None
    return Request(
        target_type="time" if to_time else "lsn" if target_lsn else "xid" if target_xid else "immediate",
        target_time=when, target_value=target_lsn or target_xid, set_label=kw["set_label"],  # type: ignore[arg-type]
        target_timeline=kw["target_timeline"], dest=dest, port=port, in_place=bool(in_place),  # type: ignore[arg-type]
        delta=bool(kw["delta"]), start=bool(kw["start"]), pause=bool(kw["pause"]), force=bool(kw["force"]),
    )


def _conflicts(immediate: bool, target_lsn: str | None, **kw: object) -> None:
    """Options that contradict each other: one usage line naming them."""
    in_place, target_dir, port = kw["in_place"], kw["target_dir"], kw["port"]
    if in_place and (target_dir or port):
        raise UsageError("--in-place restores over [postgres] data_dir; do not give --target-dir/--port")
    if not in_place and (not target_dir or not port):
        raise UsageError("a side restore needs --target-dir DIR (empty or absent) and --port P")
    if kw["delta"] and not (in_place and kw["force"]):
        raise UsageError("--delta overwrites files in place: only with --in-place --force")
    if kw["force"] and not in_place:
        raise UsageError("--force goes with --in-place")
    if immediate and kw["target_timeline"]:
        raise UsageError("--type immediate stops at the backup's end on its own timeline: no --target-timeline")
    if kw["pause"] and not kw["start"]:
        raise UsageError("--pause needs --start")
    if target_lsn and "/" not in target_lsn:
        raise UsageError(f"invalid LSN {target_lsn!r}: use the X/Y form, e.g. 0/3000060")


@click.command("restore", epilog=f"Times: {ACCEPTED}.")
@click.option("--to-time", metavar="TIME", help="Recover to this time (inclusive).")
@click.option("--target-lsn", metavar="LSN", help="Recover to this LSN.")
@click.option("--target-xid", metavar="XID", help="Recover to this transaction id.")
@click.option("--type", "target_kind", type=click.Choice(["immediate"]),
              help="'immediate': stop as soon as the backup is consistent.")
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
@click.option("--wait-timeout", type=click.IntRange(1, 7 * 86400), default=3600, show_default=True,
              help="Seconds to wait for recovery with --start.")
@click.option("--dry-run", is_flag=True, help="Print the plan and stop; nothing is written anywhere.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (in-place restores).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan (and result) as JSON.")
@pass_app
def restore(app: App, /, **kw: object) -> None:
    """Point-in-time restore with a preflight plan. Exit 5 when the plan refuses (nothing touched)."""
    as_json, dry_run, yes = bool(kw.pop("as_json")), bool(kw.pop("dry_run")), bool(kw.pop("yes"))
    wait_timeout = float(kw.pop("wait_timeout"))  # type: ignore[arg-type]
    req = _request(app, kw.pop("to_time"), kw.pop("target_lsn"), kw.pop("target_xid"),  # type: ignore[arg-type]
                   kw.pop("target_kind") == "immediate", **kw)
    ctx = app.context()
    plan, _w = plan_restore(ctx, req)
    described = describe(plan)
    if not as_json:
        click.echo(restore_console.plan(described))
    if dry_run:
        if as_json:
            click.echo(jsonout.dump("restore", RestoreView(plan=described)))
        if plan.refused:
            raise RefusedError("refused: " + "; ".join(plan.refusals()))
        return
    if plan.refused:
        if as_json:
            click.echo(jsonout.dump("restore", RestoreView(plan=described)))
        raise RefusedError("refused: " + "; ".join(plan.refusals()))
    if req.in_place and not yes:
        if not sys.stdin.isatty():
            raise UsageError("an in-place restore asks for confirmation: pass --yes when not on a terminal")
        click.confirm(f"Restore over {req.dest}? The current directory is "
                      f"{'overwritten (--delta)' if req.delta else 'moved aside, not deleted'}", abort=True)

    def body() -> JobOutcome:
        r = execute(ctx, plan, report=lambda m: click.echo(f"  {m}", err=True), wait_timeout=wait_timeout)
        result = r.model_copy(update={"target": RestoreTarget(**described["target"]), "wal_bytes": plan.wal_bytes})
        return JobOutcome(Outcome.OK, r.summary(), result)

    outcome = run_job(ctx, "restore", "cli", body)
    if as_json:
        assert isinstance(outcome.details, RestoreResult)
        click.echo(jsonout.dump("restore", RestoreView(plan=described, result=outcome.details)))
    else:
        click.echo(outcome.summary)


COMMANDS = [window, restore]
