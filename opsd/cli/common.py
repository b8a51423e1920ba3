"""Helpers shared by the command modules."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

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


class Interval(click.FloatRange):
    """Seconds between repeats: a finite number in the range (click's FloatRange lets NaN through, and a NaN or
    infinite pause then fails or never ends)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return float(rv)


def emit_report(text: str, charts: dict[str, str], output: Path | None) -> None:
    """A rendered report to standard output, or to ``output`` with its chart SVGs written beside it."""
    from opsd.adapters.files import write_whole

    if output is None:
        click.echo(text, nl=False)
        return
    for name, svg in charts.items():
        write_whole(output.parent / name, svg, 0o644)
    write_whole(output, text, 0o644)
    click.echo(f"wrote {output}" + (f" and {len(charts)} chart(s) beside it" if charts else ""))
