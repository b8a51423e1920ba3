"""``opsd config check`` and ``opsd config show``."""

from __future__ import annotations

import click

from opsd import settings as settings_mod
from opsd.cli import App
from opsd.cli.common import pass_app
from opsd.errors import ConfigError
from opsd.report import console, jsonout


@click.group("config")
def config_group() -> None:
    """Validate or show the configuration."""


@config_group.command("check")
@pass_app
def config_check(app: App) -> None:
    """Validate the config file; print every problem with its key path (exit 3 if any)."""
    path = settings_mod.resolve_path(app.config_path)
    try:
        settings_mod.load(app.config_path)
    except ConfigError as e:
        click.echo(f"config {e.path}: {len(e.problems)} problem(s)", err=True)
        for p in e.problems:
            click.echo(f"  {p}", err=True)
        raise SystemExit(e.exit_code) from None
    click.echo(f"config {path}: ok")


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def config_show(app: App, as_json: bool) -> None:
    """Print the effective configuration (defaults filled in, secrets masked)."""
    data = settings_mod.to_display(app.settings())
    click.echo(jsonout.dumps(data) if as_json else console.config(data))


COMMANDS = [config_group]
