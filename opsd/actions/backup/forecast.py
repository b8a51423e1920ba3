"""The backup window, judged: the next full backup's forecast end against ``[schedule] backup_window``, and the
last full backup against the window it ran in. Warnings, never failures: the backup still runs, the DBA decides
(a bigger process-max, a diff on weeknights, a wider window)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import JsonValue

from opsd.adapters.pgbackrest import BackupInfo
from opsd.core.backup_window import BackupWindow, Done, Forecast, forecast
from opsd.core.records.checks import OK, WARNING, CheckResult
from opsd.core.records.jobs import BackupForecast
from opsd.core.schedule import Schedule
from opsd.core.timeparse import show
from opsd.core.units import format_duration, human_bytes
from opsd.settings import Settings


def done(backups: Sequence[BackupInfo]) -> list[Done]:
    return [Done(b.type, b.start, b.stop, b.size) for b in backups if not b.error]


def next_full(sched: Schedule, settings: Settings, now: datetime) -> datetime | None:
    nxt = sched.trigger(settings.opsd.tz).get_next_fire_time(None, now)
    return nxt if isinstance(nxt, datetime) else None


def record(f: Forecast, window: BackupWindow | None, window_end: datetime | None) -> BackupForecast:
    return BackupForecast(start=f.start.timestamp(), end=f.end.timestamp(), seconds=round(f.seconds, 1),
                          size=f.size, rate=round(f.rate), growth_per_day=round(f.growth_per_day), fulls=f.fulls,
                          window=window.text if window else None,
                          window_end=window_end.timestamp() if window_end else None)


def judge_forecast(f: Forecast, window: BackupWindow, settings: Settings) -> CheckResult:
    tz = settings.opsd.tz
    ws, we = window.next_after(f.start, tz)
    basis = (f"about {human_bytes(f.size)} at {human_bytes(int(f.rate))}/s (median of {f.fulls} full backup(s)), "
             f"growing {human_bytes(int(f.growth_per_day))}/day")
    details = record(f, window, we).model_dump()
    if f.start < ws:
        return CheckResult("backup.window.forecast", WARNING, (
            f"the next full backup starts at {show(f.start.astimezone(tz))}, outside the backup window "
            f"{window.text}"), details)
    if f.end > we:
        return CheckResult("backup.window.forecast", WARNING, (
            f"the next full backup (starting {show(f.start.astimezone(tz))}) is forecast to end at "
            f"{show(f.end.astimezone(tz))}, {format_duration(f.end - we)} after the backup window {window.text} "
            f"closes: {basis}"), details)
    return CheckResult("backup.window.forecast", OK, (
        f"the next full backup is forecast to end at {show(f.end.astimezone(tz))}, "
        f"{format_duration(we - f.end)} before the backup window {window.text} closes: {basis}"), details)


def judge_last(last: Done, window: BackupWindow, settings: Settings) -> CheckResult:
    tz = settings.opsd.tz
    occ = window.around(last.start, tz)
    details: dict[str, JsonValue] = {"start": last.start.timestamp(), "stop": last.stop.timestamp(),
                                      "window": window.text}
    if occ is None:
        return CheckResult("backup.window.last", WARNING, f"the last full backup started at "
                                                          f"{show(last.start.astimezone(tz))}, outside the backup "
                                                          f"window {window.text}", details)
    if last.stop > occ[1]:
        return CheckResult("backup.window.last", WARNING, (
            f"the last full backup ended at {show(last.stop.astimezone(tz))}, {format_duration(last.stop - occ[1])} "
            f"after the backup window {window.text} closed (it took {format_duration(last.seconds)})"), details)
    return CheckResult("backup.window.last", OK, f"the last full backup ended {format_duration(occ[1] - last.stop)} "
                                                 f"before the backup window {window.text} closed", details)


def window_results(settings: Settings, backups: Sequence[BackupInfo], now: datetime
                   ) -> tuple[list[CheckResult], BackupForecast | None]:
    """The check results (none without a full schedule) and the forecast for the check's record (also without
    a window: the metric still says when the next full will end)."""
    sched = settings.schedule.parsed("full")
    window = settings.schedule.window
    start = next_full(sched, settings, now) if sched is not None else None
    history = done(backups)
    f = forecast(history, start, now) if start is not None else None
    out: list[CheckResult] = []
    if window is not None and f is not None:
        out.append(judge_forecast(f, window, settings))
    fulls = [d for d in history if d.type == "full"]
    if window is not None and fulls:
        out.append(judge_last(max(fulls, key=lambda d: d.stop), window, settings))
    we = window.next_after(f.start, settings.opsd.tz)[1] if (window and f) else None
    return out, (record(f, window, we) if f is not None else None)
