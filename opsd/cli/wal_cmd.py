"""``opsd restore-point create|list`` and ``opsd wal find``."""

from __future__ import annotations

from datetime import timedelta

import click

from opsd.actions.targeted.catalog import catalog_at
from opsd.actions.wal.find import FindRequest, find
from opsd.actions.wal.points import create, listing
from opsd.cli import App
from opsd.cli.common import pass_app
from opsd.core.records.targeted import RestorePoint
from opsd.core.relname import parse
from opsd.core.timeparse import ACCEPTED, parse_target_time
from opsd.errors import RepositoryError, UsageError
from opsd.report import jsonout, targeted_console

DAY = timedelta(hours=24)


@click.group("restore-point")
def restore_point() -> None:
    """Named restore points (before a migration: opsd restore-point create before-<migration>)."""


@restore_point.command("create")
@click.argument("name")
@click.option("--wait", type=click.IntRange(1, 3600), default=120, show_default=True,
              help="Seconds to wait until the point's WAL segment is in the repository.")
@click.option("--json", "as_json", is_flag=True, help="Print the point as JSON.")
@pass_app
def point_create(app: App, name: str, wait: int, as_json: bool) -> None:
    """Create restore point NAME on the primary, switch WAL, and wait until it is archived. Exit 5: the name is
    taken."""
    ctx = app.context()
    out = create(ctx, name, wait=wait, report=lambda m: None if as_json else click.echo(f"  {m}", err=True))
    assert isinstance(out.details, RestorePoint)
    click.echo(jsonout.dump("restore-point", out.details) if as_json else out.summary)


@restore_point.command("list", epilog=f"Times: {ACCEPTED}.")
@click.option("--since", metavar="TIME", help="Read the WAL archived since TIME for points made outside opsd "
                                              "(default: the last 24 hours; segments read once are remembered).")
@click.option("--jobs", type=click.IntRange(1, 32), default=4, show_default=True,
              help="Segments fetched at once; the WAL is decoded by min(N, cores) processes.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def point_list(app: App, since: str | None, jobs: int, as_json: bool) -> None:
    """Restore points from the history and the archived WAL, and whether each is still recoverable."""
    ctx = app.context()
    tz = app.settings().opsd.tz
    start = parse_target_time(since, tz) if since else ctx.now() - DAY
    found, _read = listing(ctx, start, lambda m: None if as_json else click.echo(f"  {m}", err=True), jobs)
    click.echo(jsonout.dump("restore-point-list", found) if as_json else targeted_console.points(found, tz))


@click.group("wal")
def wal() -> None:
    """Read the archived WAL (through pgBackRest: it works when the primary is gone)."""


@wal.command("find", epilog=f"Times: {ACCEPTED}.")
@click.option("--table", "table", required=True, metavar="SCHEMA.TABLE",
              help="The table (partitions included): SQL form ('\"Inventory\".\"StockMovements\"': quoted parts keep "
                   "case) or plain form (Inventory.StockMovements: the one table of that name ignoring case).")
@click.option("--since", metavar="TIME", help="Transactions that committed at or after TIME (default: 24 h ago).")
@click.option("--until", metavar="TIME", help="... and at or before TIME (default: the end of the archive).")
@click.option("--min-rows", type=click.IntRange(0), default=0, show_default=True,
              help="Only transactions that changed at least N rows (truncations and drops always show).")
@click.option("--dbname", metavar="DB", help="The table's database (default: [postgres] dbname).")
@click.option("--jobs", type=click.IntRange(1, 32), default=4, show_default=True,
              help="Segments fetched at once; the WAL is decoded by min(N, cores) processes.")
@click.option("--catalog-from-copy", is_flag=True,
              help="Name the table from a scratch copy recovered to --since (a table dropped or re-created since; "
                   "restores a backup into the drill's scratch area first).")
@click.option("--json", "as_json", is_flag=True, help="Print a list of transactions as JSON.")
@pass_app
def wal_find(app: App, *, table: str, since: str | None, until: str | None, min_rows: int, dbname: str | None,
             jobs: int, catalog_from_copy: bool, as_json: bool) -> None:
    """Every committed transaction that changed TABLE: xid, commit time and LSN, rows inserted, updated and
    deleted, truncations and drops."""
    s = app.settings()
    given = parse(table)
    ctx = app.context()
    start = parse_target_time(since, s.opsd.tz) if since else ctx.now() - DAY
    end = parse_target_time(until, s.opsd.tz) if until else None
    if end is not None and end <= start:
        raise UsageError("--until must be after --since")
    req = FindRequest(given, dbname or s.postgres.dbname, start, end, min_rows, jobs)
    report = lambda m: click.echo(f"  {m}", err=True)  # noqa: E731
    at_start = catalog_at(ctx, req.dbname, given, start, report) if catalog_from_copy else None
    found = find(ctx, req, report, at_start)
    if found.stopped is not None and not found.changes:
        raise RepositoryError(found.stopped)
    if as_json:
        if not found.changes:  # stdout stays the documented list; what was searched goes to stderr
            click.echo(f"none found: {found.searched()}", err=True)
        click.echo(jsonout.dump("wal-find", found.changes))
        _stopped(found.stopped)
        return
    if not found.changes:
        click.echo(targeted_console.none_found(str(found.table.name), found.searched(), min_rows))
    else:
        click.echo(targeted_console.changes(found.changes, s.opsd.tz))
    mib = len(found.span.segments) * 16
    click.echo(f"read {len(found.span.segments)} segment(s) ({mib} MiB) in {found.seconds:.1f}s "
               f"({mib / max(found.seconds, 0.001):.1f} MiB/s)"
               + (f"; {found.span.holes} segment(s) missing in the range: changes there are unknown"
                  if found.span.holes else ""))
    _stopped(found.stopped)


def _stopped(why: str | None) -> None:
    """A read that ended early: the transactions printed are those before it (exit 1)."""
    if why is not None:
        raise RepositoryError(f"{why}: the transactions above are those in the WAL before it; later ones are unknown")


COMMANDS = [restore_point, wal]
