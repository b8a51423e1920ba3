"""postgres.privileges on the real cluster: the postgres superuser is a warning; a pg_monitor + pg_read_all_data
role is not called a superuser, and what it lacks is named, and is what really fails when opsd runs those jobs
as it; docs/install.md's least-privilege role, run as written, makes the check ok and those jobs work."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import mkdir_pg
from tests.conftest import REPO, opsd

pytestmark = pytest.mark.integration

ROLE = "opsd"  # the name docs/install.md's recipe uses


def _results(conf: Path) -> dict[str, dict[str, Any]]:
    res = opsd(conf, "check", "--json")
    assert res.stdout.lstrip().startswith("{"), res.stderr
    return {r["name"]: r for r in json.loads(res.stdout)["results"]}


def _recipe() -> str:
    """The SQL block of docs/install.md's 'A least-privilege role', as a DBA would paste it."""
    text = (REPO / "docs" / "install.md").read_text()
    section = text.split("### A least-privilege role", 1)[1]
    m = re.search(r"```sql\n(.*?)```", section, re.S)
    assert m, "no SQL block in docs/install.md's least-privilege role"
    return m[1]


def _drop_role(stack: Sandbox) -> None:
    stack.psql(f"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN "
               f"DROP OWNED BY {ROLE}; DROP ROLE {ROLE}; END IF; END $$")


@pytest.fixture
def role_conf(ready_stack: Sandbox, tmp_path: Path) -> Iterator[Path]:
    """A copy of the test config that connects as ROLE, with a state directory of its own (the shared history
    keeps no trace of these runs)."""
    _drop_role(ready_stack)
    conf = ready_stack.write_opsd_conf(tmp_path / "role.toml", state_dir=mkdir_pg(tmp_path / "state", 0o750))
    conf.write_text(conf.read_text().replace('user = "postgres"', f'user = "{ROLE}"'))
    assert f'user = "{ROLE}"' in conf.read_text()
    try:
        yield conf
    finally:
        _drop_role(ready_stack)


def test_connecting_as_the_postgres_superuser_is_a_warning(ready_stack: Sandbox) -> None:
    p = _results(ready_stack.opsd_conf)["postgres.privileges"]
    assert p["status"] == "warning", p
    assert p["message"].startswith("opsd connects as superuser postgres: a table owner's code run by opsd"), p
    assert "pg_monitor + pg_read_all_data" in p["message"]
    assert p["details"]["superuser"] is True and all(j["missing"] == [] for j in p["details"]["jobs"])


def test_a_monitor_and_reader_role_is_told_what_it_lacks_and_the_recipe_gives_it(ready_stack: Sandbox,
                                                                                   role_conf: Path) -> None:
    ready_stack.psql(f"CREATE ROLE {ROLE} LOGIN IN ROLE pg_monitor, pg_read_all_data")
    results = _results(role_conf)
    p = results["postgres.privileges"]
    assert p["status"] == "warning" and p["details"]["superuser"] is False, p
    assert p["message"].startswith(f"opsd connects as {ROLE} (not a superuser); jobs opsd runs by itself lack"), p
    # opsd.heartbeat exists (setup ran as postgres): found through the catalog although schema opsd grants
    # nothing to PUBLIC; what the heartbeat lacks is the right to write it
    assert "heartbeat lacks INSERT and DELETE on opsd.heartbeat" in p["message"], p["message"]
    assert "opsd.heartbeat to exist" not in p["message"]
    assert "setup would lack ALTER SYSTEM on archive_command, archive_mode, wal_level" in p["message"]
    assert "check lacks EXECUTE on pg_show_all_file_settings()" in p["message"]
    jobs = {j["job"]: j for j in p["details"]["jobs"]}
    assert jobs["health"]["missing"] == [] and jobs["compare"]["missing"] == []
    assert p["details"]["member_of"] == ["pg_monitor", "pg_read_all_data"]

    # what the check says is lacking is what fails when opsd runs those jobs as this role; health works
    settings = results["archive.settings"]
    assert settings["status"] == "critical" and "pg_show_all_file_settings" in settings["message"], settings
    beat = opsd(role_conf, "drill", "heartbeat")
    assert beat.returncode == 1 and "permission denied for table heartbeat" in beat.stderr, beat.stderr
    setup = opsd(role_conf, "setup")
    assert setup.returncode == 1 and "permission denied" in setup.stderr, setup.stderr
    point = opsd(role_conf, "restore-point", "create", "privileges-test")
    assert point.returncode == 1 and "permission denied for function pg_create_restore_point" in point.stderr, \
        point.stderr
    health = opsd(role_conf, "health", "--json")
    assert health.returncode == 0, health.stderr

    # docs/install.md's role, statement for statement
    _drop_role(ready_stack)
    ready_stack.psql(_recipe())
    results = _results(role_conf)
    p = results["postgres.privileges"]
    assert p["status"] == "ok", p
    assert p["message"].startswith(f"opsd connects as {ROLE} (not a superuser); the jobs it runs by itself"), p
    assert "on demand: setup would lack" in p["message"] and "restore-point create" not in p["message"], p
    assert results["archive.settings"]["status"] == "ok", results["archive.settings"]
    beat = opsd(role_conf, "drill", "heartbeat")
    assert beat.returncode == 0, beat.stderr
