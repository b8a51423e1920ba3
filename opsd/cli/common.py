"""Helpers shared by the command modules."""

from __future__ import annotations

import sys

import click

from opsd.cli import App

pass_app = click.make_pass_decorator(App)


def on_terminal() -> bool:
    return sys.stderr.isatty()


def progress(stream: str, line: str) -> None:
    """Echo pgBackRest's progress lines on a terminal (logs carry them otherwise)."""
    for level in ("INFO:", "WARN:"):
        if level in line:
            message = line.split(level, 1)[1].strip()
            click.echo(f"  {message}" if level == "INFO:" else f"  warning: {message}", err=True)
            return
