from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from opsd import settings as s
from opsd.errors import ConfigError, ExitCode
from opsd.settings_check import to_display

REPO = Path(__file__).resolve().parents[2]


def test_example_config_loads_and_equals_the_defaults() -> None:
    loaded = s.load(str(REPO / "config" / "opsd.example.toml"))
    assert loaded.pgbackrest.stanza == "main"
    assert loaded.schedule.full == "0 1 * * *"
    assert loaded.pgbackrest.backup_timeout == timedelta(hours=12)
    # the example documents the defaults: every value in it equals the built-in default
    assert loaded.model_dump(exclude={"source"}) == s.Settings().model_dump(exclude={"source"})


def test_every_problem_is_reported_at_once_with_its_key_path() -> None:
    with pytest.raises(ConfigError) as ei:
        s.parse({
            "opsd": {"timezone": "Mars/Olympus", "run_as": "no-such-user-xyz", "state_dir": "relative"},
            "schedule": {"full": "every night", "diff": "61 * * * *"},
            "postgres": {"port": 70000},
            "pgbackrest": {"backup_timeout": "soon", "stanza": "bad stanza"},
            "typo_section": {},
        })
    problems = ei.value.problems
    keys = sorted(p.split(":")[0] for p in problems)
    assert keys == sorted([
        "opsd.timezone", "opsd.run_as", "opsd.state_dir", "schedule.full", "schedule.diff", "postgres.port",
        "pgbackrest.backup_timeout", "pgbackrest.stanza", "typo_section",
    ])
    assert ei.value.exit_code == ExitCode.CONFIG
    assert any("unknown key" in p for p in problems)


def test_missing_file_and_toml_syntax_errors_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        s.load(str(tmp_path / "absent.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[opsd\nstate_dir = 1\n")
    with pytest.raises(ConfigError, match="TOML syntax error"):
        s.load(str(bad))


def test_lookup_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSD_CONFIG", raising=False)
    assert s.resolve_path(None) == "/etc/opsd/opsd.toml"
    monkeypatch.setenv("OPSD_CONFIG", "/from/env.toml")
    assert s.resolve_path(None) == "/from/env.toml"
    assert s.resolve_path("/from/cli.toml") == "/from/cli.toml"


def test_settings_are_frozen() -> None:
    conf = s.Settings()
    with pytest.raises(Exception, match="frozen"):
        conf.opsd.timezone = "Europe/Berlin"  # type: ignore[misc]


def test_display_formats_durations_and_masks_secrets() -> None:
    shown = to_display(s.Settings())
    assert shown["pgbackrest"]["backup_timeout"] == "12h"
    assert shown["schedule"]["check"] == "*/30 * * * *"
    assert "source" not in shown
