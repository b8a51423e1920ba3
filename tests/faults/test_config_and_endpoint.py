"""Bad input and faults give one clear line and a documented exit code, never a traceback:
an unreachable S3 endpoint, a bad config, and a standby (backups skipped, not failed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, chown_pg, free_port, mkdir_pg, run
from tests.conftest import opsd
from tests.integration.helpers import PG_BIN, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("opsd:")]


@pytest.fixture
def dead_endpoint(ready_stack: Sandbox, tmp_path: Path) -> tuple[Path, int]:
    sb = ready_stack
    port = free_port()
    conf = sb.write_pgbackrest_conf(endpoint_port=port, path=sb.root / "pgbackrest-dead.conf")
    toml = sb.write_opsd_conf(tmp_path / "opsd.toml", pgbackrest_conf=conf)
    toml.write_text(toml.read_text().replace('probe_io_timeout = "2s"', 'probe_io_timeout = "1s"'))
    return toml, port


@pytest.mark.parametrize("command", [["info"], ["backup", "--type", "full"]])
def test_unreachable_s3_is_one_line_naming_the_endpoint(dead_endpoint: tuple[Path, int], command: list[str]) -> None:
    toml, port = dead_endpoint
    res = opsd(toml, *command, timeout=120)
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    [line] = _error_lines(res.stderr)
    assert f"localhost:{port}" in line and "Connection refused" in line


def test_unreachable_s3_makes_check_critical(dead_endpoint: tuple[Path, int]) -> None:
    toml, port = dead_endpoint
    res = opsd(toml, "check", timeout=180)
    assert res.returncode == 1
    repo_line = next(line for line in res.stdout.splitlines() if line.startswith("repository"))
    assert "CRIT" in repo_line and f"localhost:{port}" in repo_line
    assert "postgres" in res.stdout and "Traceback" not in res.stderr


def test_bad_config_through_the_console_script(tmp_path: Path) -> None:
    bad = tmp_path / "opsd.toml"
    bad.write_text('[opsd]\nrun_as = "nobody-here"\n[schedule]\nfull = "25 * * * *"\ndiff = "yearly"\n'
                   "[pgbackrest]\nbackup_timeout = -5\n")
    res = opsd(bad, "config", "check")
    assert res.returncode == 3
    assert "3 problem(s)" in res.stderr
    for key in ("opsd.run_as", "schedule.diff", "pgbackrest.backup_timeout"):
        assert key in res.stderr
    res = opsd(bad, "daemon")
    assert res.returncode == 3 and len(_error_lines(res.stderr)) == 1


@pytest.fixture
def standby(ready_stack: Sandbox) -> Iterator[tuple[Sandbox, int]]:
    sb = ready_stack
    data = mkdir_pg(sb.root / "standby", 0o700)
    port = free_port()
    run(as_pg([str(PG_BIN / "pg_basebackup"), "-h", str(sb.socket_dir), "-p", str(sb.pg_port), "-U", "postgres",
               "-D", str(data), "-R", "-X", "stream", "-c", "fast"]))
    chown_pg(data, mode=0o700)
    pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(sb.root / "pglog" / "standby.log"), "-w"]
    run(as_pg([*pg_ctl, "-o", f"-c port={port}", "start"]))
    try:
        yield sb, port
    finally:
        run(as_pg([*pg_ctl, "-m", "immediate", "stop"]), check=False)


def test_on_a_standby_backups_are_skipped_not_failed(standby: tuple[Sandbox, int], tmp_path: Path) -> None:
    sb, port = standby
    toml = sb.write_opsd_conf(tmp_path / "standby.toml", schedule={"full": "0 1 * * *", "check": ""})
    toml.write_text(toml.read_text().replace(f"port = {sb.pg_port}", f"port = {port}")
                    .replace(f'state_dir = "{sb.state_dir}"', f'state_dir = "{sb.root / "standby-state"}"'))
    wait_until(lambda: run(as_pg([str(PG_BIN / "psql"), "-h", str(sb.socket_dir), "-p", str(port), "-XAtc",
                                  "select pg_is_in_recovery()"]), check=False).stdout.strip() == "t",
               timeout=30, what="the standby")
    once = opsd(toml, "daemon", "--once")
    assert once.returncode == 0, once.stderr
    assert once.stdout.strip() == "backup-full: skipped"
    assert "skipped: this node is a standby" in once.stderr
    by_hand = opsd(toml, "backup")  # by hand too: a skip that says why, exit 0 (issue 15), no error line
    assert by_hand.returncode == 0 and "skipped: this node is a standby" in by_hand.stdout, by_hand.stderr
    assert _error_lines(by_hand.stderr) == []
