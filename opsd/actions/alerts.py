"""Alerts: fire, deduplicate, resolve, deliver. State lives in the state file (adapters/stores/alerts.py), so a CLI run
and the daemon share it: an alert already sent is not sent again until ``alerts.repeat_interval``; a resolve
is sent only for an alert that was firing. Delivery failures are retried, logged and recorded (metrics count
them). Without a channel configured, alerts are only logged (``alert.raised`` / ``alert.resolved``)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import JsonValue

from opsd.adapters import alert_channels
from opsd.adapters.stores.alerts import AlertStore
from opsd.context import Context
from opsd.core.records.base import Record
from opsd.core.records.checks import CRITICAL
from opsd.core.records.drill import DrillResult
from opsd.core.records.jobs import CheckReport, VerifyResult
from opsd.errors import OpsdError
from opsd.log import get_logger


def _store(ctx: Context) -> AlertStore:
    return AlertStore(ctx.history.db)


def _body(kind: str, key: str, severity: str, summary: str, *, details: dict[str, JsonValue], at: datetime
          ) -> dict[str, Any]:
    host = socket.gethostname()
    icon = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}[kind]
    return {"text": f"{icon} opsd on {host}: {'RESOLVED ' if kind == 'resolved' else ''}{summary}",
            "alert": {"status": kind, "key": key, "severity": severity, "host": host, "summary": summary,
                      "at": at.isoformat(), "details": details}}


def _webhook(ctx: Context) -> str:
    """The webhook URL from the config, its file or the systemd credential ("" if none, or unreadable: said)."""
    try:
        return alert_channels.webhook_url(ctx.settings.alerts)
    except OpsdError as e:
        get_logger().error("alert.webhook_unreadable", error=str(e), hint=e.hint)
        return ""


def _deliver(ctx: Context, key: str, kind: str, body: dict[str, Any]) -> bool:
    a = ctx.settings.alerts
    timeout = a.timeout.total_seconds()
    url = _webhook(ctx)

    def via_webhook() -> None:
        alert_channels.webhook(url, body, timeout)

    def via_command() -> None:
        alert_channels.command(ctx.runner, a.command, body, timeout)

    channels: list[tuple[str, Callable[[], None]]] = []
    if url:
        channels.append(("webhook", via_webhook))
    if a.command.strip():
        channels.append(("command", via_command))
    ok_all = True
    for name, send in channels:
        error = None
        for attempt in range(a.retries):
            try:
                send()
                error = None
                break
            except OpsdError as e:
                error = str(e)
                if attempt + 1 < a.retries:
                    time.sleep(min(2**attempt, 30))
        _store(ctx).log_delivery(ctx.now(), key, f"{kind}:{name}", error)
        if error is not None:
            ok_all = False
            get_logger().error("alert.delivery_failed", alert=key, channel=name, attempts=a.retries, error=error)
    return ok_all


def fire(ctx: Context, key: str, summary: str, *, severity: str = "critical",
         details: dict[str, JsonValue] | None = None) -> bool:
    """Raise ``key``; True if it was sent now (new, or repeated after repeat_interval)."""
    now = ctx.now()
    get_logger().error("alert.raised", alert=key, severity=severity, message=summary)
    store = _store(ctx)
    row = store.get(key)
    if row is not None and row.firing and row.last_sent and (
            now - row.last_sent < ctx.settings.alerts.repeat_interval):
        return False
    store.set_firing(key, severity, summary, row.first_at if row is not None and row.firing else now, now)
    _deliver(ctx, key, "firing", _body("firing", key, severity, summary, details=details or {}, at=now))
    return True


def resolve(ctx: Context, key: str, summary: str = "", *, fired_elsewhere: bool = False) -> bool:
    """Clear ``key``; True if it was firing (a resolve message was sent). ``fired_elsewhere``: the alert was
    raised where its state could not be saved (another process, a broken state file): resolve it anyway."""
    now = ctx.now()
    store = _store(ctx)
    row = store.get(key)
    if (row is None or not row.firing) and not fired_elsewhere:
        return False
    store.set_resolved(key, now)
    text = summary or (f"{row.summary} (cleared)" if row else f"{key} cleared")
    get_logger().info("alert.resolved", alert=key, message=text)
    _deliver(ctx, key, "resolved", _body("resolved", key, row.severity if row else "critical", text, details={},
                                     at=now))
    return True


def firing(ctx: Context) -> list[str]:
    return _store(ctx).firing()


def delivery_failures(ctx: Context) -> int:
    return _store(ctx).delivery_failures()


def after_job(ctx: Context, job: str, outcome: str, error: str | None, details: Record) -> None:
    """What a finished job means for alerts: a failure fires ``job.<job>``, a success resolves it; the check
    job fires/resolves one alert per critical check (archiving failing, restorability stale, ...)."""
    if outcome in ("busy", "skipped", "interrupted", "running"):
        return
    stanza = details.stanza if isinstance(details, DrillResult | VerifyResult) else None
    key = f"job.{job}" + (f".{stanza}" if stanza else "")
    if outcome == "failed":
        fire(ctx, key, f"{job} failed: {error}", details=details.model_dump(mode="json", exclude={"results"}))
    else:
        resolve(ctx, key, f"{job} succeeded again")
    if isinstance(details, CheckReport):
        for r in details.results:
            ck = f"check.{r.name}"
            if r.status == CRITICAL:
                fire(ctx, ck, f"{r.name}: {r.message}", details=dict(r.details))
            else:
                resolve(ctx, ck, f"{r.name}: {r.message}")

