"""The job wrapper records every run; the CLI boundary turns errors into one line and an exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsd.actions.jobs import JobOutcome, run_job
from opsd.cli import main
from opsd.errors import BusyError, OpsdError
from opsd_sandbox import records


def test_run_job_records_outcomes_and_one_summary_event(fake_ctx, capsys) -> None:  # type: ignore[no-untyped-def]
    from opsd import log

    log.configure("info", json=True)  # bind to capsys' stderr
    ctx = fake_ctx()
    run_job(ctx, "backup-full", "cli", lambda: JobOutcome("ok", "done", records.backup(10, 5.0, label="X")))
    with pytest.raises(BusyError):
        run_job(ctx, "backup-full", "schedule", _raise(BusyError("held by pid 1")))
    with pytest.raises(OpsdError):
        run_job(ctx, "check", "schedule", _raise(OpsdError("nope", hint="do this")))
    outcomes = [(r.job, r.outcome, r.error) for r in ctx.history.runs()]
    assert outcomes == [("check", "failed", "nope"), ("backup-full", "busy", "held by pid 1"),
                        ("backup-full", "ok", None)]
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finished = [e for e in events if e["event"].endswith(".finished")]
    assert [(e["event"], e["outcome"]) for e in finished] == [
        ("backup.finished", "ok"), ("backup.finished", "busy"), ("check.finished", "failed")]
    assert finished[0]["detail_duration"] == 5.0 and "duration" in finished[0]
    assert [e["level"] for e in finished] == ["info", "warning", "error"]


def _raise(e: Exception):  # type: ignore[no-untyped-def]
    def body() -> JobOutcome:
        raise e

    return body


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ei:
        main(argv)
    out, err = capsys.readouterr()
    return int(ei.value.code or 0), out, err


def test_config_check_lists_every_problem_and_exits_3(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "opsd.toml"
    bad.write_text('[opsd]\ntimezone = "Nowhere/Land"\n[schedule]\nfull = "sometimes"\n[postgres]\nport = 0\n')
    code, _out, err = _cli(["--config", str(bad), "config", "check"], capsys)
    assert code == 3
    assert "3 problem(s)" in err
    for key in ("opsd.timezone", "schedule.full", "postgres.port"):
        assert key in err
    assert "Traceback" not in err


def test_any_command_with_a_bad_config_is_one_line_exit_3(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "opsd.toml"
    bad.write_text("[opsd]\nstate_dir = 5\nbogus = 1\n")
    code, _out, err = _cli(["--config", str(bad), "backup"], capsys)
    assert code == 3
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("opsd: error: config ") and "and 1 more" in lines[0]


def test_usage_errors_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    code, _out, err = _cli(["backup", "--type", "weekly"], capsys)
    assert code == 2 and "Invalid value for '--type'" in err and "Traceback" not in err
    code, _out, err = _cli(["no-such-command"], capsys)
    assert code == 2


def test_config_show_prints_effective_config(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "opsd.toml"
    conf.write_text(f'[opsd]\nstate_dir = "{tmp_path}"\n[pgbackrest]\nstanza = "orders"\n')
    code, out, _err = _cli(["--config", str(conf), "config", "show"], capsys)
    assert code == 0 and 'stanza = "orders"' in out and 'backup_timeout = "12h"' in out
    code, out, _err = _cli(["--config", str(conf), "config", "show", "--json"], capsys)
    assert json.loads(out)["pgbackrest"]["stanza"] == "orders"


def test_help_documents_exit_codes(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _err = _cli(["--help"], capsys)
    assert code == 0
    for line in ("0  ok", "2  usage error", "3  configuration invalid", "4  busy"):
        assert line in out


def test_a_stop_after_a_reload_cancels_the_job_started_before_it(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    """The backup started on the old context's runner; the reload made a new one; SIGTERM must reach both."""
    from dataclasses import replace

    from opsd.daemon.service import Daemon
    from tests.fakes import FakeRunner

    before, after = FakeRunner(), FakeRunner()
    ctx = fake_ctx(before)
    d = Daemon(ctx, lambda: ctx.settings, lambda s: replace(ctx, runner=after), shutdown_timeout=0)
    d._schedule_jobs = lambda: None  # type: ignore[method-assign]  # no scheduler in a unit test
    d.next_runs = dict  # type: ignore[assignment, method-assign]
    assert d.reload()
    d._running = 1  # the backup still running on ``before``

    def cancelled() -> None:
        before.cancelled = True
        d._running = 0

    before.cancel_all = cancelled  # type: ignore[method-assign]
    d.shutdown()
    assert before.cancelled and after.cancelled


def test_config_check_reads_the_webhook_secrets_and_names_what_cannot_work(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """A webhook URL or headers file that would fail every delivery is found by 'opsd config check', in one line
    that never shows the value."""
    import os

    from tests.conftest import _me

    state = tmp_path / "state"
    url_file, headers = tmp_path / "webhook.url", tmp_path / "webhook.headers"
    url_file.write_text("https://opsd:S3CRETTOKEN@alerts.example.org/hook?x=1#frag with space\n")
    headers.write_text("Authorization: Bearer S3CRETBEARER\n")
    os.chmod(url_file, 0o600)
    os.chmod(headers, 0o644)  # readable by every local user
    conf = tmp_path / "opsd.toml"
    conf.write_text(f'[opsd]\nstate_dir = "{state}"\nrun_as = "{_me()}"\n[alerts]\n'
                    f'webhook_url_file = "{url_file}"\nwebhook_headers_file = "{headers}"\n')
    code, _out, err = _cli(["--config", str(conf), "config", "check"], capsys)
    assert code == 3 and "alerts.webhook_headers_file" in err, err
    assert "S3CRET" not in err
    os.chmod(headers, 0o600)
    code, _out, err = _cli(["--config", str(conf), "config", "check"], capsys)
    assert code == 3 and "not a usable webhook URL" in err and "S3CRET" not in err, err
    url_file.write_text("https://opsd:S3CRETTOKEN@alerts.example.org/hook\n")
    code, _out, err = _cli(["--config", str(conf), "config", "check"], capsys)
    assert code == 3 and "keep one of them" in err and "S3CRET" not in err, err
    headers.write_text("X-Gateway-Key: S3CRETKEY\n")
    code, out, err = _cli(["--config", str(conf), "config", "check"], capsys)
    assert code == 0 and "ok" in out, err
