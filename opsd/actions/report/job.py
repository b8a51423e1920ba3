"""The monthly recovery-drill report: gather a month from the run history, the health store and the
repository, build the figures (report_data), have them written (the front end passes the writer: rendering is
report/publish.py's job) and upload them when ``[report] s3_uri`` is set."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from opsd.actions.jobs import JobOutcome
from opsd.actions.report import service, service_parts
from opsd.actions.report.data import build, month_bounds, previous_month
from opsd.actions.report.rows import MonthReport, RepoBackup, RepoFacts
from opsd.adapters.pgbackrest_conf import option
from opsd.adapters.stores.health import HealthStore
from opsd.context import Context
from opsd.core.records.drill import DrillResult
from opsd.core.records.jobs import ReportResult
from opsd.core.records.runs import Outcome
from opsd.errors import OpsdError
from opsd.log import get_logger


def _repo(ctx: Context) -> RepoFacts | None:
    try:
        info = ctx.pgbackrest.info()
    except OpsdError as e:
        get_logger().warning("report.repository_unreachable", error=str(e))
        return None
    keep = option(ctx.settings.pgbackrest.config, ctx.settings.pgbackrest.stanza, "repo1-retention-full")
    return RepoFacts(backups=[RepoBackup(label=b.label, type=b.type, stop=b.stop) for b in info.backups],
                     retention_full=int(keep) if keep and keep.isdigit() else None, seen_at=ctx.now())


def make_report(ctx: Context, year: int, month: int, *, with_repository: bool = True,
                sources: service.Sources | None = None) -> MonthReport:
    """``sources``: where the "Service levels" section reads what is not the report's own (default: the state
    store, and the live catalogs unless ``with_repository`` is False; the sample report passes recorded ones)."""
    tz = ctx.settings.opsd.tz
    start, end = month_bounds(year, month, tz)
    runs = ctx.history.between(start, end)
    py, pm = previous_month(start)
    pstart, _ = month_bounds(py, pm, tz)
    prev = [r for r in ctx.history.between(pstart, start) if r.job == "drill" and r.outcome == "ok"]
    prev_rtos = [d.rto_seconds for r in prev if (d := r.details_as(DrillResult)) and d.rto_seconds is not None]
    before = [r.started_at for r in ctx.history.runs("drill", limit=1000) if r.outcome == "ok" and r.started_at < start]
    store = HealthStore(ctx.history.db)
    samples = store.worst_samples(start, end, CHART_STEP)  # a year of history costs what a day does
    report = build(ctx.settings, year, month, runs=runs, prior_passes=sorted(before),
                   prev_rto_median=statistics.median(prev_rtos) if prev_rtos else None,
                   incidents=store.opened_between(start, end), samples=samples,
                   repo=_repo(ctx) if with_repository else None, now=ctx.now())
    if ctx.settings.queries.enabled:
        report.service = service.gather(ctx, report, start, end,
                                        sources or service.default_sources(live=with_repository))
        report.actions += service_parts.action_items(report.service)
    return report


CHART_STEP = timedelta(minutes=15)  # the samples charted: the worst of each quarter hour

Writer = Callable[[MonthReport], list[Path]]  # writes the report in every configured format; the files written


def report_job(ctx: Context, write: Writer, year: int | None = None, month: int | None = None
               ) -> Callable[[], JobOutcome]:
    def body() -> JobOutcome:
        y, m = (year, month) if year and month else previous_month(ctx.now().astimezone(ctx.settings.opsd.tz))
        report = make_report(ctx, y, m)
        paths = write(report)
        uploaded = []
        if ctx.settings.report.s3_uri:
            from opsd.adapters import s3  # boto3: imported only to upload

            uploaded = s3.upload(ctx.settings, paths)
        summary = (f"report {report.month}: {report.verdict.statement} {len(report.actions)} action item(s); "
                   f"{len(paths)} file(s) in {paths[0].parent}" + (f", uploaded to {ctx.settings.report.s3_uri}"
                                                                  if uploaded else ""))
        return JobOutcome(Outcome.OK, summary, ReportResult(
            month=report.month, files=[str(p) for p in paths], uploaded=uploaded,
            recoverable_all_month=report.verdict.recoverable_all_month, actions=report.actions))

    return body
