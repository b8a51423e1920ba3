"""An upgrade as an operator makes one: the previous release installed by the playbook on a fresh Debian 12 host,
left to record its runs under systemd, then this build installed by the same playbook: the daemon restarts on
the new code, the state file migrates forward, and every run recorded before reads back."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from opsd_sandbox import dbhost, hosts
from opsd_sandbox.stack import S3_NAME, Sandbox
from tests.hosts.conftest import new_lan

pytestmark = [pytest.mark.hosts, pytest.mark.slow]

# The previous release: main before the state file's step 4 (alert_pending), so the upgrade migrates it.
PREVIOUS, PREVIOUS_VERSION, PREVIOUS_SCHEMA = "1256f95", "0.0.9", 3
RUNS = ("import sqlite3; c = sqlite3.connect('/var/lib/opsd/history.sqlite3'); "
        "print(c.execute('pragma user_version').fetchone()[0]); "
        "[print(*r, sep='|') for r in c.execute('select id, job, outcome from runs order by id')]")


def _installed(host: hosts.Host) -> str:
    """The installed distribution's version (what pip upgrades by)."""
    return host.run("/opt/opsd/bin/python -c 'import importlib.metadata as m; print(m.version(\"opsd\"))'"
                    ).stdout.strip()


def _state(host: hosts.Host) -> tuple[int, list[tuple[str, str, str]]]:
    out = host.run(f'runuser -u postgres -- python3 -c "{RUNS}"').stdout.split()
    return int(out[0]), [tuple(line.split("|")) for line in out[1:]]  # type: ignore[misc]


def _wait_for_backup(host: hosts.Host, timeout: float = 180) -> list[tuple[str, str, str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _state(host)[1] if host.run("test -f /var/lib/opsd/history.sqlite3", check=False).returncode == 0 \
            else []
        if any(job == "backup-full" and outcome == "ok" for _, job, outcome in runs):
            return runs
        time.sleep(2)
    raise AssertionError(f"no full backup recorded by the previous release: {host.journal('opsd')[-3000:]}")


def test_an_upgrade_by_the_playbook_restarts_the_daemon_migrates_the_state_and_keeps_history(
        host_root: Path, tmp_path: Path) -> None:
    lan = new_lan()
    sb = Sandbox.create(prefix="opsd-test-upgrade-", s3_also_listen=(lan.gateway,))
    try:
        sb.up()
        handoff = dbhost.handoff(tmp_path / "handoff", sb, stanza="upgrade")
        old = dbhost.release_wheel(PREVIOUS, PREVIOUS_VERSION, handoff / "wheels")
        with hosts.Host.boot("db2", host_root, node=lan.add("db2"), binds=dbhost.binds(handoff),
                             hosts={S3_NAME: lan.gateway}) as host:
            dbhost.install_with(host, handoff, "previous.yml", opsd_package=f"{dbhost.HANDOFF}/wheels/{old.name}")
            assert _installed(host) == PREVIOUS_VERSION
            before = _wait_for_backup(host)
            assert _state(host)[0] == PREVIOUS_SCHEMA
            pid = host.unit("opsd", "MainPID")["MainPID"]

            recap = dbhost.install(host)  # this build: vars.yml names its wheel

            assert "Install opsd into its virtualenv" in recap.changed_tasks(), recap.output[-3000:]
            assert "Restart opsd" in recap.changed_tasks()
            new = next(p for p in (handoff / "wheels").glob("opsd-*.whl") if p != old)
            assert _installed(host) == new.name.split("-")[1] != PREVIOUS_VERSION
            props = host.unit("opsd", "MainPID", "ActiveState")
            assert props["ActiveState"] == "active" and props["MainPID"] != pid
            schema, after = _state(host)
            assert schema > PREVIOUS_SCHEMA  # migrated forward by the new daemon at its start
            assert after[:len(before)] == before  # every run of the previous release, as it was
            status = host.run("opsd status --json", check=False)  # exit 1: a fresh host's weekly jobs are due
            rows = {r["job"]: r for r in json.loads(status.stdout)}
            last = rows["backup-full"]["last"]
            assert last["outcome"] == "ok" and str(last["id"]) in {i for i, j, _ in before if j == "backup-full"}
            assert dbhost.install(host).changed == 0  # and the upgraded host is settled
    finally:
        sb.down(remove=True)
        lan.close()
