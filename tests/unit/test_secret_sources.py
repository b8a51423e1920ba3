"""Secrets come from a systemd credential ($CREDENTIALS_DIRECTORY/NAME), a *_file key or the environment, in
that order, never from opsd.toml's text (issue 14, item 2); a file that cannot be read is one line naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opsd.adapters import alert_channels, pgbouncer, secrets
from opsd.errors import OpsdError
from opsd.settings import AlertsSection, PgBouncerSection


def test_the_credential_wins_over_the_file_and_the_environment(tmp_path: Path, monkeypatch: Any) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "pgbouncer-password").write_text("from-credential\n")
    pw_file = tmp_path / "pw"
    pw_file.write_text("from-file\n")
    monkeypatch.setenv("PGBOUNCER_PASSWORD", "from-env")
    s = PgBouncerSection(host="127.0.0.1", password_file=pw_file)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert pgbouncer.password(s) == "from-credential"
    (creds / "pgbouncer-password").unlink()
    assert pgbouncer.password(s) == "from-file"
    assert pgbouncer.password(PgBouncerSection(host="127.0.0.1")) == "from-env"
    monkeypatch.delenv("PGBOUNCER_PASSWORD")
    assert pgbouncer.password(PgBouncerSection(host="127.0.0.1")) is None


def test_the_webhook_url_from_a_file_or_a_credential(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    url_file = tmp_path / "hook"
    url_file.write_text("https://hooks.example/services/T0KEN123456\n")
    a = AlertsSection(webhook_url_file=url_file)
    assert alert_channels.webhook_url(a) == "https://hooks.example/services/T0KEN123456"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / secrets.WEBHOOK_URL).write_text("https://other.example/x\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert alert_channels.webhook_url(AlertsSection()) == "https://other.example/x"
    assert alert_channels.webhook_url(AlertsSection(webhook_url="https://inline.example/")) == "https://inline.example/"


def test_an_unreadable_secret_file_is_one_line_naming_it(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    missing = tmp_path / "nope"
    with pytest.raises(OpsdError, match=rf"cannot read pgbouncer.password_file \({missing}\)"):
        pgbouncer.password(PgBouncerSection(host="h", password_file=missing))
