from __future__ import annotations

import json
import os
from pathlib import Path

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


def test_journal_lines_are_one_readable_line_with_a_priority(capsys: pytest.CaptureFixture[str]) -> None:
    """Under systemd (stderr is $JOURNAL_STREAM) each event is one line journald reads: its priority prefix, the
    event name first, then key=value; no JSON braces, no timestamp of ours (the journal has its own), secrets
    still redacted, newlines inside a value escaped."""
    log.configure("info", fmt="journal")
    log.get_logger().warning("backup.failed", stanza="main", error="S3 down\nretry later", password="hunter22")
    log.get_logger().info("job.done", took=1.5, ok=True, jobs=["full", "diff"], hint=None)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == '<4>backup.failed stanza=main error="S3 down\\nretry later" password=' + log.MASK
    assert lines[1] == '<6>job.done took=1.5 ok=true jobs=["full","diff"]'


def test_journal_stream_is_recognised_by_device_and_inode(tmp_path: Path) -> None:
    with (tmp_path / "f").open("w") as f:
        st = os.fstat(f.fileno())
        assert log.on_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, f.fileno())
        assert not log.on_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, f.fileno())
        assert not log.on_journal({}, f.fileno())
