"""Alerts: deduplication, repeat, resolve, delivery to a real local webhook and a real command, retries and
their count, and what a finished job fires or resolves."""

from __future__ import annotations

import base64
import json
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from opsd import log
from opsd.actions import alerts
from opsd.actions.jobs import JobOutcome, run_job
from opsd.adapters.runner import ProcessRunner
from opsd_sandbox import records
from tests.unit.receiver import free_port, receiver

T0 = datetime(2026, 11, 25, 12, tzinfo=UTC)


def _ctx(fake_ctx, **alerts_cfg: object):  # type: ignore[no-untyped-def]
    ctx = fake_ctx(alerts={"retries": 2, **alerts_cfg})
    clock = {"now": T0}
    ctx.now = lambda: clock["now"]
    return ctx, clock


def test_fire_is_deduplicated_repeated_and_resolved_once(fake_ctx, hook) -> None:  # type: ignore[no-untyped-def]
    url, got = hook
    ctx, clock = _ctx(fake_ctx, webhook_url=url, repeat_interval="4h")
    assert alerts.fire(ctx, "job.backup-full", "backup-full failed: [49 host-connect]")
    assert not alerts.fire(ctx, "job.backup-full", "backup-full failed again")  # deduplicated
    clock["now"] = T0 + timedelta(hours=5)
    assert alerts.fire(ctx, "job.backup-full", "backup-full still failing")  # repeated after repeat_interval
    assert alerts.resolve(ctx, "job.backup-full")
    assert not alerts.resolve(ctx, "job.backup-full")  # only a firing alert resolves
    assert [g["alert"]["status"] for g in got] == ["firing", "firing", "resolved"]
    first = got[0]
    assert first["text"].startswith(":rotating_light: opsd on ") and "backup-full failed" in first["text"]
    assert first["alert"]["key"] == "job.backup-full" and first["alert"]["severity"] == "critical"
    assert alerts.firing(ctx) == [] and alerts.delivery_failures(ctx) == 0


def test_command_channel_gets_the_alert_on_stdin(fake_ctx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "alert.json"
    script = tmp_path / "hook.py"
    script.write_text(f"import sys\nopen({str(out)!r}, 'w').write(sys.stdin.read())\n")
    ctx, _ = _ctx(fake_ctx, command=f"{sys.executable} {script}")
    ctx.runner = ProcessRunner()  # the real runner: stdin written from a thread, as opsd's own user
    alerts.fire(ctx, "check.restorability", "restorability stale", details={"age": 9})
    data = json.loads(out.read_text())
    assert data["alert"]["key"] == "check.restorability" and data["alert"]["details"] == {"age": 9}


def test_failed_delivery_is_retried_logged_and_counted(fake_ctx, capsys) -> None:  # type: ignore[no-untyped-def]
    log.configure("info", json=True)  # bound to this test's captured stderr
    ctx, _ = _ctx(fake_ctx, webhook_url="http://127.0.0.1:9/hooks/T0KEN-secret", timeout="1s")
    alerts.fire(ctx, "job.drill.main", "drill failed")
    assert alerts.delivery_failures(ctx) == 1 and alerts.firing(ctx) == ["job.drill.main"]
    err = capsys.readouterr().err
    assert "alert.delivery_failed" in err and "127.0.0.1:9" in err and "T0KEN-secret" not in err


def test_a_job_fires_on_failure_and_resolves_on_success(fake_ctx, hook) -> None:  # type: ignore[no-untyped-def]
    url, got = hook
    ctx, _ = _ctx(fake_ctx, webhook_url=url)

    def bad() -> JobOutcome:
        raise alerts.OpsdError("S3 unreachable")

    with pytest.raises(alerts.OpsdError):
        run_job(ctx, "verify", "schedule", bad)
    run_job(ctx, "verify", "schedule", lambda: JobOutcome("ok", "fine", records.verify_ok("main")))
    assert [(g["alert"]["key"], g["alert"]["status"]) for g in got] == [("job.verify", "firing")]
    # a verify of stanza main succeeding resolves job.verify.main, not job.verify: still firing
    assert "job.verify" in alerts.firing(ctx)
    run_job(ctx, "check", "schedule", lambda: JobOutcome("ok", "checks", records.archiver_check(1200.0, 3)))
    assert ("check.archive.archiver", "firing") in [(g["alert"]["key"], g["alert"]["status"]) for g in got]
    run_job(ctx, "check", "schedule", lambda: JobOutcome("ok", "checks", records.archiver_check(0.0, 3)))
    assert got[-1]["alert"]["key"] == "check.archive.archiver" and got[-1]["alert"]["status"] == "resolved"


def test_the_webhook_url_is_masked_in_config_show(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    from opsd.settings_check import to_display

    ctx, _ = _ctx(fake_ctx, webhook_url="https://hooks.example/services/T0KEN-secret")
    shown = to_display(ctx.settings)["alerts"]
    assert shown["webhook_url"] == "********" and "T0KEN" not in str(to_display(ctx.settings))
    assert ctx.settings.alerts.webhook.endswith("T0KEN-secret")


@pytest.fixture
def flaky_hook() -> Any:
    """A webhook that answers 503 to its first ``fail[0]`` requests, then 204; every request is counted."""
    attempts: list[int] = []
    fail = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            attempts.append(1)
            self.send_response(503 if len(attempts) <= fail[0] else 204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}/hooks/x", attempts, fail
    srv.shutdown()


def test_delivery_is_attempted_exactly_retries_times(fake_ctx, flaky_hook, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url, attempts, fail = flaky_hook
    monkeypatch.setattr(alerts.time, "sleep", lambda _s: None)
    ctx, clock = _ctx(fake_ctx, webhook_url=url, retries=3)
    fail[0] = 2  # two failures, then the third attempt gets through
    alerts.fire(ctx, "job.backup-full", "backup failed")
    assert len(attempts) == 3 and alerts.delivery_failures(ctx) == 0
    attempts.clear()
    fail[0] = 99  # never gets through: exactly 3 attempts, then one recorded failure
    clock["now"] = T0 + timedelta(hours=5)
    alerts.fire(ctx, "job.backup-full", "backup still failing")
    assert len(attempts) == 3 and alerts.delivery_failures(ctx) == 1


BAD_URLS = ["https://hooks.example/T0KEN secret", "https://hooks.example/\tT0KEN", "ftp://hooks.example/T0KEN",
            "https:///T0KEN-no-host", "http://hooks.example:99999/T0KEN", "hooks.example/T0KEN"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_an_unusable_webhook_url_is_a_config_error_that_does_not_repeat_it(url: str) -> None:
    from opsd import settings as settings_mod
    from opsd.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        settings_mod.parse({"alerts": {"webhook_url": url}})
    text = str(e.value) + " ".join(getattr(e.value, "problems", []))
    assert "alerts.webhook_url" in text and "not a usable webhook URL" in text and "T0KEN" not in text


def test_user_info_and_path_tokens_never_reach_errors_or_the_delivery_table(fake_ctx, capsys) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    log.configure("info", json=True)
    ctx, _ = _ctx(fake_ctx, webhook_url="http://alice:S3cretPw@127.0.0.1:9/services/T0KENabcdef123456?sig=XyZ",
                  timeout="1s")
    alerts.fire(ctx, "job.backup-full", "backup failed")
    err = capsys.readouterr().err
    with sqlite3.connect(ctx.history.path) as c:
        stored = " ".join(str(r) for r in c.execute("SELECT * FROM alert_deliveries"))
    for secret in ("S3cretPw", "alice", "T0KENabcdef123456", "XyZ", "services"):
        assert secret not in err and secret not in stored, secret
    assert "webhook at http://127.0.0.1:9 unreachable" in stored


# --------------------------------------------------------------------------- authentication (issue 33, section 3)
def test_user_info_is_sent_as_basic_authentication(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    """Before: urllib handed 'opsd:TOKEN@127.0.0.1' to http.client as the host (InvalidURL): never delivered."""
    port = free_port()
    with receiver(port, "Authorization", "Basic " + base64.b64encode(b"opsd:TO@KEN").decode()) as got:
        ctx, _ = _ctx(fake_ctx, webhook_url=f"http://opsd:TO%40KEN@127.0.0.1:{port}/hook?team=db", retries=1)
        assert alerts.fire(ctx, "job.backup-full", "backup failed")
    assert [g["alert"]["key"] for g in got.accepted] == ["job.backup-full"] and got.refused == 0
    assert got.seen[0][0] == "/hook?team=db"  # the path and query kept, the user info gone from the URL
    assert alerts.delivery_failures(ctx) == 0 and alerts.waiting_deliveries(ctx).count == 0


def test_without_the_credentials_the_receiver_refuses_and_says_so(fake_ctx, capsys) -> None:  # type: ignore[no-untyped-def]
    log.configure("info", json=True)
    port = free_port()
    with receiver(port, "Authorization", "Bearer right") as got:
        ctx, _ = _ctx(fake_ctx, webhook_url=f"http://opsd:wrong@127.0.0.1:{port}/hook", retries=1)
        alerts.fire(ctx, "job.backup-full", "backup failed")
    assert got.refused == 1 and got.accepted == []
    assert f"webhook at http://127.0.0.1:{port} answered 401 (authentication refused" in capsys.readouterr().err


def _headers_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    f = tmp_path / "webhook-headers"
    f.write_text(text)
    f.chmod(mode)
    return f


def test_a_bearer_token_comes_from_the_headers_file_or_the_credential(fake_ctx, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    with receiver(port, "Authorization", "Bearer gw-t0ken") as got:
        f = _headers_file(tmp_path, "# the gateway's token\nAuthorization: Bearer gw-t0ken\nX-Team: dba\n")
        ctx, _ = _ctx(fake_ctx, webhook_url=url, webhook_headers_file=str(f), retries=1)
        assert alerts.fire(ctx, "job.verify", "verify failed")
        creds = tmp_path / "creds"
        creds.mkdir()
        (creds / "webhook-headers").write_text("Authorization: Bearer gw-t0ken\n")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
        ctx, _ = _ctx(fake_ctx, webhook_url=url, retries=1)  # no file key: the systemd credential
        assert alerts.fire(ctx, "job.drill", "drill failed")
    assert [g["alert"]["key"] for g in got.accepted] == ["job.verify", "job.drill"] and got.refused == 0


def test_a_world_readable_headers_file_is_refused_not_sent(fake_ctx, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    log.configure("info", json=True)
    port = free_port()
    with receiver(port, "Authorization", "Bearer gw-t0ken") as got:
        f = _headers_file(tmp_path, "Authorization: Bearer gw-t0ken\n", 0o644)
        ctx, _ = _ctx(fake_ctx, webhook_url=f"http://127.0.0.1:{port}/hook", webhook_headers_file=str(f), retries=1)
        alerts.fire(ctx, "job.verify", "verify failed")
    err = capsys.readouterr().err
    assert got.seen == [] and "is readable by every local user: refused" in err and "gw-t0ken" not in err
    assert alerts.waiting_deliveries(ctx).count == 1  # kept: fixing the mode lets a later run deliver it


# tokens of every shape: a short all-letters path token, user info, a query, a fragment, a bearer header
TOKENS = ("qwertyuiopas", "Zx", "PwLetters", "sigvalue9", "fragtok", "gw-hdr-t0ken")


def test_no_token_of_any_shape_reaches_logs_errors_metrics_or_the_store(fake_ctx, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from opsd import metrics

    log.configure("info", json=True)
    port = free_port()  # nothing listens: every delivery fails
    f = _headers_file(tmp_path, "X-Api-Key: gw-hdr-t0ken\n")
    ctx, _ = _ctx(fake_ctx, webhook_url=f"http://Zx:PwLetters@127.0.0.1:{port}/h/qwertyuiopas?s=sigvalue9#fragtok",
                  webhook_headers_file=str(f), retries=1, timeout="1s")
    alerts.fire(ctx, "job.backup-full", "backup failed")
    err = capsys.readouterr().err
    with sqlite3.connect(ctx.history.path) as c:
        tables = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        stored = " ".join(str(r) for t in tables for r in c.execute(f"SELECT * FROM {t}"))
    scraped = metrics.text(ctx)
    assert f"webhook at http://127.0.0.1:{port} unreachable" in err and "opsd_alert_deliveries_waiting 1.0" in scraped
    for secret in TOKENS:
        assert secret not in err and secret not in stored and secret not in scraped, secret


def test_status_says_how_many_alerts_wait_and_since_when() -> None:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from opsd.report.console import waiting_alerts

    now = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    assert waiting_alerts(0, None, now, ZoneInfo("UTC")).strip() == "alerts waiting for delivery: none"
    line = waiting_alerts(3, now - timedelta(hours=2), now, ZoneInfo("UTC"))
    assert "alerts waiting for delivery: 3, oldest since 2026-12-07 04:00" in line and "2h" in line
