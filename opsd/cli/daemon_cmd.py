"""``opsd daemon`` and ``opsd status``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from opsd.actions.status import job_status
from opsd.cli import App
from opsd.cli.common import pass_app
from opsd.errors import OpsdError

if TYPE_CHECKING:
    from opsd.context import Context


@click.command("daemon")
@click.option("--once", is_flag=True, help="Run every enabled job once, in order, and exit.")
@pass_app
def daemon(app: App, once: bool) -> None:
    """Run the scheduler (APScheduler) in the foreground, as systemd expects (sd_notify READY, STATUS,
    WATCHDOG, STOPPING). SIGHUP reloads the config (kept if invalid); SIGTERM cancels a running drill, lets a
    running backup finish up to [daemon] shutdown_timeout, then exits."""
    from opsd import settings as settings_mod
    from opsd.context import build
    from opsd.daemon.service import Daemon, run_once  # the scheduler and every job: only for the daemon

    ctx = app.context()
    if once:
        outcomes = run_once(ctx)
        for job, outcome in outcomes.items():
            click.echo(f"{job}: {outcome}")
        failed = [j for j, o in outcomes.items() if o not in ("ok", "skipped")]
        if failed:
            raise OpsdError(f"{len(failed)} job(s) did not succeed: {', '.join(failed)} (see 'opsd status')")
        return
    d = Daemon(ctx, lambda: settings_mod.load(app.config_path), build,
               shutdown_timeout=ctx.settings.daemon.shutdown_timeout.total_seconds())
    d.install_signals()
    d.run_forever()


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def status(app: App, as_json: bool) -> None:
    """Last run of each job, next due time, and what is overdue (exit 1 if anything is overdue)."""
    ctx = app.context()
    rows = job_status(ctx)
    if as_json:
        from opsd.report import jsonout  # every output schema: only for --json

        click.echo(jsonout.dump("status", [jsonout.status_view(r) for r in rows]))
    else:
        from opsd.report.console import status as render

        click.echo(render(rows, ctx.settings.opsd.tz))
        if ctx.settings.patroni.url:
            from opsd.actions.role import node_role, observe
            from opsd.report.console import role as render_role

            node = node_role(ctx)
            click.echo(render_role(node, observe(ctx, node)))
        from opsd.actions.alerts import waiting_deliveries
        from opsd.report.console import waiting_alerts

        w = waiting_deliveries(ctx)
        click.echo(waiting_alerts(w.count, w.oldest_since, ctx.now(), ctx.settings.opsd.tz))
    overdue = [r.job for r in rows if r.overdue] + _fleet(ctx, as_json)
    if overdue:
        raise OpsdError(f"overdue: {', '.join(overdue)}")


def _fleet(ctx: Context, as_json: bool) -> list[str]:
    """The fleet line of ``status`` (text only); ["fleet"] when this cluster is overdue in its fleet."""
    if not ctx.settings.fleet.enabled:
        return []
    from opsd.actions.fleet.state import load_state
    from opsd.report.console import fleet

    state = load_state(ctx.settings)
    if not as_json:
        click.echo(fleet(state, ctx.settings.fleet.name, ctx.settings.opsd.tz))
    if state is not None and state.reachable and state.error:
        return [f"fleet (this cluster is not published: {state.error})"]
    return ["fleet (this cluster has not passed a drill within [fleet] drill_every)"] if (
        state is not None and state.this_cluster_overdue) else []


@click.command("metrics")
@pass_app
def metrics(app: App) -> None:
    """Print the Prometheus metrics once (what the daemon serves on [metrics] listen; also usable by
    node_exporter's textfile collector)."""
    from opsd.metrics import text

    click.echo(text(app.context()), nl=False)


COMMANDS = [daemon, status, metrics]
