"""``opsd indexes``: unused, duplicate and covered, invalid and missing indexes, and constraints never validated,
each with the statement that fixes it (opsd never runs one)."""

from __future__ import annotations

import click

from opsd.cli import App
from opsd.cli.common import pass_app
from opsd.errors import ExitCode

EPILOG = ("Exit codes: 0 nothing invalid (suggestions may still be listed), 1 invalid indexes found or the catalog "
          "could not be read, 2 usage, 3 configuration invalid.")


@click.command("indexes", epilog=EPILOG)
@click.option("--since", metavar="DURATION", help="The window whose statistics decide unused and missing indexes "
                                                  "(default: [queries] unused_window, e.g. 30d).")
@click.option("--dbname", "dbnames", metavar="DB", multiple=True,
              help="Only this database (repeatable; default: every database a client can connect to).")
@click.option("--no-advice", is_flag=True, help="Do not EXPLAIN statements with hypothetical indexes (hypopg): "
                                                "missing indexes are listed as guesses.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (docs/schemas/indexes.json).")
@pass_app
def indexes(app: App, since: str | None, dbnames: tuple[str, ...], no_advice: bool, as_json: bool) -> None:
    """Indexes that cost more than they give: unused on every node of the cluster (once the statistics cover
    [queries] unused_min_span), duplicate or covered by another, invalid (a failed CREATE INDEX CONCURRENTLY),
    and missing (tables read by large sequential scans: proven with a hypothetical index where pg_qualstats and
    hypopg are installed, else a guess). Constraints added NOT VALID and never validated are listed too."""
    from opsd.actions.queries.indexes import index_report
    from opsd.core.schedule import parse_duration
    from opsd.errors import UsageError

    window = None
    if since is not None:
        try:
            window = parse_duration(since)
        except ValueError as e:
            raise UsageError(f"--since {since!r}: {e}") from None
    ctx = app.context()
    report = index_report(ctx, window=window, dbnames=list(dbnames), advise=not no_advice)
    if window is None and not dbnames:  # the whole cluster over the configured window: what the metrics show
        from opsd.actions.report.index_figures import save

        save(ctx, report)
    if as_json:
        from opsd.report import jsonout

        click.echo(jsonout.dump("indexes", report))
    else:
        from opsd.report import indexes_console

        click.echo(indexes_console.render(report, ctx.settings.opsd.tz))
    if report.invalid:
        raise SystemExit(ExitCode.FAILED)


COMMANDS = [indexes]
