"""``opsd queries``: the query objectives, met or missed per day, and the statements contributing most to the
misses (docs/queries.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

import click

from opsd.cli import App
from opsd.cli.common import pass_app
from opsd.errors import ExitCode, OpsdError, UsageError


class QueriesOff(OpsdError):
    """No objective to report: [queries] turned off or without objectives (exit 3, configuration)."""

    exit_code = ExitCode.CONFIG


def _period(since: str | None, month: str | None, now: datetime, app: App) -> tuple[datetime, datetime]:
    from opsd.actions.report.data import month_bounds, parse_month
    from opsd.core.schedule import parse_duration
    from opsd.core.timeparse import parse_target_time

    tz = app.settings().opsd.tz
    if since is not None and month is not None:
        raise UsageError("--since and --month cannot be given together")
    if month is not None:
        return month_bounds(*parse_month(month), tz)
    try:
        span = parse_duration(since or "24h")
    except ValueError:
        start = parse_target_time(since or "", tz)
    else:
        if span <= timedelta(0):
            raise UsageError(f"--since {since} is an empty period: give a duration above zero ('24h', '7d')")
        return now - span, now
    if start >= now:
        raise UsageError(f"--since {since} is not in the past")
    return start, now


@click.command("queries")
@click.option("--since", metavar="DURATION|TIME", help="From this long ago ('24h', '7d') or this time, to now "
                                                       "(default: the last 24 h).")
@click.option("--month", metavar="YYYY-MM", help="A calendar month in opsd.timezone.")
@click.option("--objective", metavar="NAME", help="Only this objective of [queries] objectives.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def queries(app: App, since: str | None, month: str | None, objective: str | None, as_json: bool) -> None:
    """The query objectives counted: per day the statements' calls (pg_stat_statements), the executions at or
    over the threshold (PostgreSQL's duration log), the share under it and met / missed / unknown / incomplete,
    and the statements with the most executions over it. Exits 1 when an objective is missed, unknown or
    incomplete; 3 when [queries] is off or has no objective."""
    from opsd.actions.queries.objectives import objective_report

    q = app.settings().queries
    if not q.enabled or not q.objectives:
        raise QueriesOff("[queries] is turned off (enabled = false)" if not q.enabled
                         else "[queries] objectives is empty: nothing to count",
                         hint="docs/queries.md: [queries] objectives and opsd setup --query-stats")
    ctx = app.context()
    lo, hi = _period(since, month, ctx.now(), app)
    rep = objective_report(ctx, lo, hi, objective)
    if as_json:
        from opsd.report import jsonout

        click.echo(jsonout.dump("queries", rep))
    else:
        from opsd.report.queries_console import report

        click.echo(report(rep, ctx.settings.opsd.tz), nl=False)
    if not rep.all_met:
        bad = [f"{o.name} {o.state.replace('_', ' ')}" for o in rep.objectives if o.state not in ("met",
                                                                                                   "no_statements")]
        raise OpsdError(f"objective(s) not met: {', '.join(bad)}")


COMMANDS = [queries]
