"""``opsd scratch list|clean``: the copies of production on this host (drills, side copies, rehearsals)."""

from __future__ import annotations

import click

from opsd.actions.copies import leftovers, registry
from opsd.cli import App
from opsd.cli.common import pass_app
from opsd.core.records.copies import CopyView
from opsd.report import jsonout


@click.group("scratch")
def scratch() -> None:
    """Copies of production on this host: list them, remove the leftovers."""


@scratch.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def list_(app: App, as_json: bool) -> None:
    """Every copy with its state: running (its job runs), kept (--keep, until its expiry), orphan (its job is
    gone) or expired. Exit 1 when there is an orphaned or expired one."""
    views = [CopyView.of(v) for v in registry.verdicts(app.context())]
    if as_json:
        click.echo(jsonout.dump("scratch-list", views))
    elif not views:
        click.echo("no copy of production on this host")
    for v in [] if as_json else views:
        until = f", until {v.expires_at:%Y-%m-%d %H:%M %Z}" if v.expires_at else ""
        click.echo(f"{v.state:8} {v.purpose:8} {v.stanza:12} port {v.port:<6} pid {v.pid:<8} {v.directory}{until}")
    if any(v.state in ("orphan", "expired") for v in views):
        raise SystemExit(1)


@scratch.command("clean")
@click.option("--all", "everything", is_flag=True, help="Kept copies too (never one whose job is running).")
@pass_app
def clean(app: App, everything: bool) -> None:
    """Stop and remove copies whose job is gone or whose keep expired: their server, any restore still writing
    into them, their files and their record. Never anything outside the scratch area."""
    gone = leftovers.clean(app.context(), everything=everything, report=click.echo)
    if not gone:
        click.echo("nothing to clean")


COMMANDS = [scratch]
