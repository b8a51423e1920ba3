"""Alerts that arrive (issue 33, section 3): an alert that cannot be delivered is kept in the state file
(alert_pending), shown by the metrics, and delivered once by a later run when the receiver is back; one that
stays undeliverable past alerts.delivery_expiry is dropped with a log line. Real state file, real receiver that
requires HTTP Basic authentication, jobs run the way the CLI and the daemon run them (run_job); no stack needed."""

from __future__ import annotations

import base64
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opsd import log, metrics
from opsd.actions import alerts
from opsd.actions.jobs import JobOutcome, run_job
from opsd_sandbox import records
from tests.unit.receiver import free_port, receiver

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)
BASIC = "Basic " + base64.b64encode(b"opsd:hunter2token").decode()


def _ctx(fake_ctx: Any, port: int, **cfg: object) -> tuple[Any, dict[str, datetime]]:
    ctx = fake_ctx(alerts={"webhook_url": f"http://opsd:hunter2token@127.0.0.1:{port}/hook", "retries": 2,
                           "timeout": "2s", **cfg})
    clock = {"now": T0}
    ctx.now = lambda: clock["now"]
    return ctx, clock


def _pending(ctx: Any) -> list[tuple[str, str, int, str]]:
    with sqlite3.connect(ctx.history.path) as c:
        return list(c.execute("SELECT key, kind, attempts, last_error FROM alert_pending"))


def _fail() -> JobOutcome:
    raise alerts.OpsdError("S3 unreachable")


def test_an_alert_waits_while_the_receiver_is_down_and_arrives_once_when_it_is_back(  # type: ignore[no-untyped-def]
        fake_ctx, monkeypatch, capsys) -> None:
    monkeypatch.setattr(alerts.time, "sleep", lambda _s: None)
    log.configure("info", json=True)
    port = free_port()
    ctx, clock = _ctx(fake_ctx, port)
    with pytest.raises(alerts.OpsdError):
        run_job(ctx, "verify", "schedule", _fail)  # receiver down: two attempts fail, the message is kept
    [(key, kind, attempts, error)] = _pending(ctx)
    assert (key, kind, attempts) == ("job.verify", "firing", 2)
    assert error.startswith(f"webhook at http://127.0.0.1:{port} unreachable") and "hunter2token" not in error
    clock["now"] = T0 + timedelta(minutes=10)
    scraped = metrics.text(ctx)
    assert "opsd_alert_deliveries_waiting 1.0" in scraped
    assert "opsd_alert_delivery_oldest_waiting_seconds 600.0" in scraped
    assert alerts.waiting_deliveries(ctx) == alerts.WaitingDeliveries(1, T0)
    assert '"retry": "until 2026-11-26T12:00:00+00:00"' in capsys.readouterr().err

    with receiver(port, "Authorization", BASIC) as got:
        ok = JobOutcome("ok", "fine", records.verify_ok("main"))
        run_job(ctx, "verify", "schedule", lambda: ok)  # the next run: the waiting one goes first
        run_job(ctx, "verify", "schedule", lambda: ok)  # and a run after it: nothing is sent twice
        clock["now"] += timedelta(hours=2)
        assert alerts.deliver_waiting(ctx) == 0
    assert [(g["alert"]["key"], g["alert"]["status"], g["alert"]["at"]) for g in got.accepted] == [
        ("job.verify", "firing", T0.isoformat())]  # the body as raised, once
    assert got.refused == 0 and _pending(ctx) == [] and alerts.waiting_deliveries(ctx).count == 0
    assert "alert.delivered_late" in capsys.readouterr().err
    assert "opsd_alert_deliveries_waiting 0.0" in metrics.text(ctx)


def test_the_retries_back_off_and_an_expired_alert_is_dropped_with_a_log_line(  # type: ignore[no-untyped-def]
        fake_ctx, monkeypatch, capsys) -> None:
    monkeypatch.setattr(alerts.time, "sleep", lambda _s: None)
    log.configure("info", json=True)
    port = free_port()
    ctx, clock = _ctx(fake_ctx, port, delivery_expiry="3h", retries=1)
    alerts.fire(ctx, "check.archive.archiver", "archiving failing")
    tries = []
    for minutes in (0.5, 1, 2, 3, 4, 7, 8, 15, 16):  # due after 1, then 2, then 4, then 8 minutes
        clock["now"] = T0 + timedelta(minutes=minutes)
        alerts.deliver_waiting(ctx)
        tries.append(_pending(ctx)[0][2])
    assert tries == [1, 2, 2, 3, 3, 4, 4, 5, 5]
    clock["now"] = T0 + timedelta(hours=3, seconds=1)
    with receiver(port, "Authorization", BASIC) as got:
        assert alerts.deliver_waiting(ctx) == 0
    assert got.accepted == [] and _pending(ctx) == []
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    [expired] = [e for e in events if e["event"] == "alert.delivery_expired"]
    assert expired["alert"] == "check.archive.archiver" and expired["attempts"] == 5
    assert expired["waiting_since"] == T0.isoformat() and "hunter2token" not in json.dumps(events)


def test_a_newer_message_for_the_same_alert_replaces_the_waiting_one(fake_ctx, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A firing alert still waiting is not sent after its resolve: the resolve supersedes it."""
    monkeypatch.setattr(alerts.time, "sleep", lambda _s: None)
    port = free_port()
    ctx, clock = _ctx(fake_ctx, port, retries=1)
    alerts.fire(ctx, "job.verify", "verify failed")
    with receiver(port, "Authorization", BASIC) as got:
        clock["now"] = T0 + timedelta(seconds=30)  # the firing one is not due yet
        alerts.resolve(ctx, "job.verify")
        clock["now"] = T0 + timedelta(hours=1)
        alerts.deliver_waiting(ctx)
    assert [g["alert"]["status"] for g in got.accepted] == ["resolved"] and _pending(ctx) == []
