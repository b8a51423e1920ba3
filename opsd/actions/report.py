"""The monthly recovery-drill report: gather a month from the run history, the health store and the
repository, build the figures (report_data), render Markdown / HTML / JSON, write them under
``<state_dir>/reports/`` and upload them when ``[report] s3_uri`` is set."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from opsd.actions.jobs import JobOutcome
from opsd.actions.report_data import MonthReport, RepoFacts, build, month_bounds, previous_month
from opsd.adapters import files
from opsd.adapters.pgbackrest_conf import option
from opsd.context import Context
from opsd.errors import OpsdError
from opsd.health_store import HealthStore
from opsd.log import get_logger
from opsd.report import jsonout, monthly


def _repo(ctx: Context) -> RepoFacts | None:
    try:
        info = ctx.pgbackrest.info()
    except OpsdError as e:
        get_logger().warning("report.repository_unreachable", error=str(e))
        return None
    keep = option(ctx.settings.pgbackrest.config, ctx.settings.pgbackrest.stanza, "repo1-retention-full")
    return RepoFacts(backups=[{"label": b.label, "type": b.type, "stop": b.stop} for b in info.backups],
                     retention_full=int(keep) if keep and keep.isdigit() else None, seen_at=ctx.now())


def make_report(ctx: Context, year: int, month: int, *, with_repository: bool = True) -> MonthReport:
    tz = ctx.settings.opsd.tz
    start, end = month_bounds(year, month, tz)
    runs = ctx.history.between(start, end)
    py, pm = previous_month(start)
    pstart, _ = month_bounds(py, pm, tz)
    prev = [r for r in ctx.history.between(pstart, start) if r.job == "drill" and r.outcome == "ok"]
    prev_rtos = [float(r.details["rto_seconds"]) for r in prev if r.details.get("rto_seconds") is not None]
    before = [r.started_at for r in ctx.history.runs("drill", limit=1000) if r.outcome == "ok" and r.started_at < start]
    store = HealthStore(ctx.history)
    samples = [(t, d) for t, d in store.samples(start) if t < end]
    return build(ctx.settings, year, month, runs=runs, prior_passes=sorted(before),
                 prev_rto_median=statistics.median(prev_rtos) if prev_rtos else None,
                 incidents=store.opened_between(start, end), samples=samples,
                 repo=_repo(ctx) if with_repository else None, now=ctx.now())


def render(report: MonthReport, fmt: str, chart_prefix: str = "") -> tuple[str, dict[str, str]]:
    """The document, and for Markdown the chart files it links to (name -> SVG text)."""
    from opsd.report import charts  # matplotlib: imported only when a chart is drawn

    drawn = charts.all_charts(report.trends) if fmt in ("md", "html") else {}
    if fmt == "json":
        return jsonout.dumps(asdict(report)) + "\n", {}
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
    try:
        path.write_text(text)
    except OSError as e:
        raise OpsdError(f"cannot write {path}: {e.strerror}") from None
    files.give_to(path, user)
    return path


def report_job(ctx: Context, year: int | None = None, month: int | None = None) -> Callable[[], JobOutcome]:
    def body() -> JobOutcome:
        y, m = (year, month) if year and month else previous_month(ctx.now().astimezone(ctx.settings.opsd.tz))
        report = make_report(ctx, y, m)
        paths = write(ctx, report, ctx.settings.opsd.state_dir / "reports", list(ctx.settings.report.formats))
        uploaded = []
        if ctx.settings.report.s3_uri:
            from opsd.adapters import s3  # boto3: imported only to upload

            uploaded = s3.upload(ctx.settings, paths)
        summary = (f"report {report.month}: {report.verdict.statement} {len(report.actions)} action item(s); "
                   f"{len(paths)} file(s) in {paths[0].parent}" + (f", uploaded to {ctx.settings.report.s3_uri}"
                                                                  if uploaded else ""))
        return JobOutcome("ok", summary, {"month": report.month, "files": [str(p) for p in paths],
                                          "uploaded": uploaded, "recoverable_all_month":
                                          report.verdict.recoverable_all_month, "actions": report.actions})

    return body
