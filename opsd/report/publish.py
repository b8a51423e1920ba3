"""Publishing the monthly report: render it (Markdown with SVG chart files, self-contained HTML, JSON) and write
every configured format under ``<state_dir>/reports/``, owned by ``run_as``."""

from __future__ import annotations

from pathlib import Path

from opsd.actions.report.job import Writer
from opsd.actions.report.rows import MonthReport
from opsd.adapters import files
from opsd.context import Context
from opsd.report import jsonout, monthly, service_section


def render(report: MonthReport, fmt: str, chart_prefix: str = "") -> tuple[str, dict[str, str]]:
    """The document, and for Markdown the chart files it links to (name -> SVG text)."""
    from opsd.report import charts  # matplotlib: imported only when a chart is drawn

    drawn = charts.all_charts(report.trends) if fmt in ("md", "html") else {}
    if fmt in ("md", "html") and report.service is not None:
        drawn |= service_section.charts(report.service)
    if fmt == "json":
        return jsonout.dump("report", report) + "\n", {}
    if fmt == "html":
        return monthly.html_page(report, drawn), {}
    names = {k: f"{chart_prefix}{report.month}-{k}.svg" for k in drawn}
    return monthly.markdown(report, names), {names[k]: v for k, v in drawn.items()}


def write(ctx: Context, report: MonthReport, directory: Path, formats: list[str]) -> list[Path]:
    user = ctx.settings.opsd.run_as
    files.ensure_dir(directory, user)
    written = []
    for fmt in formats:
        text, extra = render(report, fmt, chart_prefix="report-")
        for name, svg in extra.items():
            written.append(_put(directory / name, svg, user))
        written.append(_put(directory / f"report-{report.month}.{fmt}", text, user))
    return written


def _put(path: Path, text: str, user: str) -> Path:
    files.write_whole(path, text)
    files.give_to(path, user)
    return path


def to_state_dir(ctx: Context) -> Writer:
    """The writer the report job uses: every format of ``[report] formats`` under ``<state_dir>/reports/``."""
    directory, formats = ctx.settings.opsd.state_dir / "reports", [str(f) for f in ctx.settings.report.formats]
    return lambda report: write(ctx, report, directory, formats)
