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
    text = line.strip()
    if text and ("INFO:" in text or "WARN:" in text):
        click.echo("  " + text.split(":", 1)[-1].strip() if "INFO:" in text else "  " + text, err=True)
