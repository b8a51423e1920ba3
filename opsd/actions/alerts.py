"""Alerts: fire, deduplicate, resolve, deliver. State lives in the state file (adapters/stores/alerts.py), so a CLI run
and the daemon share it: an alert already sent is not sent again until ``alerts.repeat_interval``; a resolve
is sent only for an alert that was firing. Delivery failures are retried, logged and recorded (metrics count
them); a message still not delivered is kept (alert_pending) and tried again by later runs, with backoff, until
delivered or ``alerts.delivery_expiry`` old (docs/alerts.md). Without a channel configured, alerts are only
logged (``alert.raised`` / ``alert.resolved``)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import JsonValue

from opsd.adapters import alert_channels
from opsd.adapters.stores.alerts import AlertStore, Pending, WaitingDeliveries
from opsd.context import Context
from opsd.core.records.base import Record
from opsd.core.records.checks import CRITICAL
from opsd.core.records.drill import DrillResult
from opsd.core.records.jobs import CheckReport, VerifyResult
from opsd.errors import OpsdError
from opsd.log import get_logger, redact_text


def _store(ctx: Context) -> AlertStore:
    return AlertStore(ctx.history.db)


def _body(kind: str, key: str, severity: str, summary: str, *, details: dict[str, JsonValue], at: datetime
          ) -> dict[str, Any]:
    host = socket.gethostname()
    icon = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}[kind]
    return {"text": f"{icon} opsd on {host}: {'RESOLVED ' if kind == 'resolved' else ''}{summary}",
            "alert": {"status": kind, "key": key, "severity": severity, "host": host, "summary": summary,
                      "at": at.isoformat(), "details": details}}


Channel = Callable[[dict[str, Any]], None]
LEASE = timedelta(minutes=5)  # a message taken for an attempt is not taken by another process meanwhile
MAX_BACKOFF = timedelta(hours=1)


def _webhook(ctx: Context) -> str:
    """The webhook URL from the config, its file or the systemd credential ("" if none, or unreadable: said)."""
    try:
        return alert_channels.webhook_url(ctx.settings.alerts)
    except OpsdError as e:
        get_logger().error("alert.webhook_unreadable", error=str(e), hint=e.hint)
        return ""


def _channels(ctx: Context) -> dict[str, Channel]:
    """The configured channels, each a function that makes one attempt (OpsdError: it failed)."""
    a = ctx.settings.alerts
    timeout = a.timeout.total_seconds()
    url = _webhook(ctx)
    out: dict[str, Channel] = {}
    if url:
        def via_webhook(body: dict[str, Any]) -> None:
            alert_channels.webhook(url, body, timeout, alert_channels.webhook_headers(a))

        out["webhook"] = via_webhook
    if a.command.strip():
        def via_command(body: dict[str, Any]) -> None:
            alert_channels.command(ctx.runner, a.command, body, timeout)

        out["command"] = via_command
    return out


def _attempt(send: Channel, body: dict[str, Any], tries: int) -> str | None:
    """Up to ``tries`` attempts, 1 s, 2 s, 4 s... apart; the last error (secrets masked), None once delivered."""
    error = None
    for attempt in range(tries):
        try:
            send(body)
            return None
        except OpsdError as e:
            error = redact_text(str(e))
            if attempt + 1 < tries:
                time.sleep(min(2**attempt, 30))
    return error


def _backoff(attempts: int) -> timedelta:
    step: timedelta = timedelta(minutes=1) * 2 ** min(max(attempts - 1, 0), 10)
    return min(step, MAX_BACKOFF)


def _deliver(ctx: Context, key: str, kind: str, body: dict[str, Any]) -> bool:
    """Send on every channel; what fails is kept (alert_pending) for later runs. The ones waiting go first."""
    a = ctx.settings.alerts
    channels = _channels(ctx)
    deliver_waiting(ctx, channels)
    store, now, ok_all = _store(ctx), ctx.now(), True
    for name, send in channels.items():
        error = _attempt(send, body, a.retries)
        store.log_delivery(now, key, f"{kind}:{name}", error)
        try:
            if error is None:
                store.forget(key, name)  # an older message for this alert, still waiting, is superseded
                continue
            store.pend(Pending(key, name, kind, json.dumps(body, default=str), a.retries, now,
                               now + _backoff(1), error))
            kept = f"until {(now + a.delivery_expiry).isoformat()}"
        except OpsdError as e:
            kept = f"not kept: the state file failed ({e})"
        ok_all = False
        get_logger().error("alert.delivery_failed", alert=key, channel=name, attempts=a.retries, error=error,
                           retry=kept)
    return ok_all


def _expire(ctx: Context, store: AlertStore, now: datetime) -> None:
    for p in store.expired(now - ctx.settings.alerts.delivery_expiry):
        store.forget(p.key, p.channel, p.first_at)
        get_logger().error("alert.delivery_expired", alert=p.key, kind=p.kind, channel=p.channel,
                           attempts=p.attempts, waiting_since=p.first_at.isoformat(), error=p.last_error)


def deliver_waiting(ctx: Context, channels: dict[str, Channel] | None = None) -> int:
    """Try the messages due for another attempt (one each; a channel that fails is not tried again in this
    run); drop the expired ones, with a log line. Returns how many were delivered. Never raises."""
    store, now, delivered, down = _store(ctx), ctx.now(), 0, set()
    try:
        _expire(ctx, store, now)
        due = store.due(now)
        if due and channels is None:
            channels = _channels(ctx)
        for p in due:
            send = (channels or {}).get(p.channel)
            if send is None or p.channel in down or not store.claim(p, now + LEASE):
                continue
            error = _attempt(send, json.loads(p.body), 1)
            if error is None:
                store.forget(p.key, p.channel, p.first_at)
                store.log_delivery(now, p.key, f"{p.kind}:{p.channel}", None)
                get_logger().info("alert.delivered_late", alert=p.key, kind=p.kind, channel=p.channel,
                                  attempts=p.attempts + 1, waiting_since=p.first_at.isoformat())
                delivered += 1
            else:
                down.add(p.channel)
                store.retry_at(p, now + _backoff(p.attempts + 1), error)
    except (OpsdError, ValueError) as e:  # the state file or a stored body is unreadable: the run goes on
        get_logger().error("alert.pending_unreadable", error=redact_text(str(e)))
    return delivered


def waiting_deliveries(ctx: Context) -> WaitingDeliveries:
    """How many alert messages wait for delivery and since when the oldest (count 0, None: none; also when the
    state file cannot be read)."""
    try:
        return _store(ctx).waiting()
    except OpsdError:
        return WaitingDeliveries(0, None)


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
    job fires/resolves one alert per critical check (archiving failing, restorability stale, ...). Alerts that
    wait for delivery are tried first, after any run."""
    deliver_waiting(ctx)
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

