"""``opsd config check`` and ``opsd config show``."""

from __future__ import annotations

import click

from opsd import settings as settings_mod
from opsd.adapters.alert_channels import problems as alert_problems
from opsd.adapters.cluster import detect_layout, layout_problems
from opsd.adapters.files import private_dir_problem
from opsd.cli import App
from opsd.cli.common import pass_app
from opsd.errors import ConfigError
from opsd.report import console, jsonout
from opsd.settings_check import to_display


@click.group("config")
def config_group() -> None:
    """Validate or show the configuration."""


@config_group.command("check")
@pass_app
def config_check(app: App) -> None:
    """Validate the config file; print every problem with its key path (exit 3 if any)."""
    path = settings_mod.resolve_path(app.config_path)
    try:
        s = settings_mod.load(app.config_path)
        pg = s.postgres
        problems = layout_problems(detect_layout(pg.data_dir, pg.config_dir), pg.data_dir) if pg.config_dir else []
        scratch = private_dir_problem(s.scratch_dir, s.opsd.run_as)
        if scratch:
            problems.append(f"drill.scratch_dir: not private: {scratch}")
        problems += alert_problems(s.alerts)
        if problems:
            raise ConfigError(path, problems)
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
    """Print the effective configuration (defaults filled in, secrets masked) and the detected cluster layout."""
    s = app.settings()
    data = to_display(s)
    layout = detect_layout(s.postgres.data_dir, s.postgres.config_dir)
    if as_json:
        shown = {"kind": layout.kind, "config_file": str(layout.config_file), "describe": layout.describe()}
        click.echo(jsonout.dumps({**data, "layout": shown}))
    else:
        click.echo(console.config(data) + f"\n# cluster layout (detected, not a setting): {layout.describe()}")


COMMANDS = [config_group]
