"""``opsd rehearse``: a migration tried on a restored copy of production before it touches production."""

from __future__ import annotations

import os
from pathlib import Path

import click

from opsd.cli import App
from opsd.errors import ExitCode

HAZARDS_EXIT = 6  # passed with hazards (EXIT_CODES)


@click.command("rehearse", epilog="Exit codes: 0 passed, 6 passed with hazards, 1 failed or not exact, 2 usage, "
                                  "4 another copy holds the drill lock, 5 refused before anything ran.")
@click.option("--migrate", "migrate", metavar="CMD", required=True,
              help="The migration, a shell command line run as [rehearse] os_user with PGHOST/PGPORT/PGUSER/"
                   "PGDATABASE pointing at the copy (e.g. 'npx typeorm migration:run -d dist/data-source.js').")
@click.option("--rollback", metavar="CMD", help="Its rollback, run after it; the schema and every table's rows are "
                                                "then compared with the state before the migration.")
@click.option("--target", default="latest", show_default=True, metavar="latest|TIME",
              help="Recover the copy to the end of the archive, or to this time.")
@click.option("--to-name", metavar="NAME", help="Recover the copy to this restore point instead.")
@click.option("--dbname", metavar="DB", help="The database the migration runs on (default: [postgres] dbname).")
@click.option("--role", metavar="ROLE", help="The role it connects as (default: [rehearse] role, else the "
                                             "database's owner). Never a superuser.")
@click.option("--workdir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Where the command runs (default: the current directory); os_user must be able to read it.")
@click.option("--env", "env", metavar="NAME=VALUE", multiple=True, help="Also in the command's environment "
                                                                         "(repeatable; never PG*).")
@click.option("--timeout", metavar="DURATION", help="Kill the migration (and the rollback) after this long "
                                                    "(default: [rehearse] timeout).")
@click.option("--tag", metavar="TAG", help="Names the restore point in the printed production steps "
                                           "(before-TAG; default: the date).")
@click.option("--keep", is_flag=True, help="Keep the copy afterwards (until drill.keep_for) to look at it.")
@click.option("--dry-run", is_flag=True, help="Print the plan and stop; nothing is restored.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan and the result as JSON.")
@click.pass_obj
def rehearse(app: App, /, **kw: object) -> None:
    """Restore a quarantined copy, run the migration (and its rollback) on it, and report what it would do to
    production: locks and how long, rewrites, indexes, constraints, WAL, hazards, and whether the rollback is
    exact. Production is never connected to by the command."""
    from opsd.cli.rehearse_run import run_rehearse  # the restore machinery: only when a rehearsal runs

    outcome = run_rehearse(app, kw, workdir=Path(str(kw["workdir"] or os.getcwd())).absolute())
    if outcome == "HAZARDS":
        raise SystemExit(HAZARDS_EXIT)
    if outcome == "FAILED":
        raise SystemExit(ExitCode.FAILED)


COMMANDS = [rehearse]
