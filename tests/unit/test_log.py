from __future__ import annotations

import json

import pytest
import structlog

from opsd import log


def test_redaction_by_key_by_pattern_and_by_value(capsys: pytest.CaptureFixture[str]) -> None:
    log.register_secret("s3cr3t-value-xyz")
    log.configure("info", json=True)
    structlog.get_logger().info(
        "x.done", password="pw-should-vanish", line="repo1-s3-key-secret=abc123 and PGPASSWORD=zzz999",
        other="contains s3cr3t-value-xyz inside", nested={"cipher_pass": "p4ss", "ok": "fine"},
    )
    err = capsys.readouterr().err
    event = json.loads(err.strip().splitlines()[-1])
    assert event["password"] == log.MASK
    assert "abc123" not in err and "zzz999" not in err and "s3cr3t-value-xyz" not in err and "p4ss" not in err
    assert event["nested"]["ok"] == "fine"
    assert event["event"] == "x.done"


def test_env_secrets_are_registered() -> None:
    log.register_env_secrets({"PGBACKREST_REPO1_S3_KEY_SECRET": "from-env-secret", "HOME": "/root"})
    assert log.redact_text("x from-env-secret y") == f"x {log.MASK} y"
    assert log.redact_text("/root") == "/root"
