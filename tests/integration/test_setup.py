"""opsd setup on a fresh cluster with archiving off: changes, restart needed, restart, idempotent rerun."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from opsd_sandbox import Sandbox
from tests.conftest import opsd
from tests.integration.helpers import Cluster

pytestmark = pytest.mark.integration
_N = itertools.count()


@pytest.fixture
def fresh(stack: Sandbox) -> Iterator[Cluster]:
    """A cluster as initdb leaves it (archiving off), with a stanza, state directory and opsd.toml of its own, on
    the session's stack (a whole stack of its own took 10 s more to start and stop)."""
    c = Cluster(stack, f"setup{next(_N)}")
    c.initdb()
    try:
        yield c
    finally:
        c.stop_quietly()


def test_setup_configures_archiving_and_is_idempotent(fresh: Cluster) -> None:
    first = opsd(fresh.conf, "setup")
    assert first.returncode == 6, first.stderr  # restart needed: not a failure (1)
    assert "archive_mode" in first.stdout and "'off' -> 'on'" in first.stdout
    assert "restart PostgreSQL" in first.stdout and "setup NOT complete" in first.stdout
    assert fresh.psql("show archive_mode") == "off"  # opsd did not restart on its own

    second = opsd(fresh.conf, "setup", "--restart")
    assert second.returncode == 0, second.stderr
    assert "PostgreSQL restarted" in second.stdout and "pgbackrest check passed" in second.stdout
    assert fresh.psql("show archive_mode") == "on"
    assert "archive-push" in fresh.psql("show archive_command")

    third = opsd(fresh.conf, "setup")
    assert third.returncode == 0, third.stderr
    assert "already right" in third.stdout and "already exists" in third.stdout
    assert "CHANGED" not in third.stdout


def test_setup_refuses_to_replace_a_foreign_archive_command(fresh: Cluster) -> None:
    fresh.psql("alter system set archive_command = 'cp %p /somewhere/%f'")
    fresh.psql("select pg_reload_conf()")
    res = opsd(fresh.conf, "setup")
    assert res.returncode == 1
    assert "does not push to pgBackRest stanza" in res.stderr and "--replace-archive-command" in res.stderr
    assert "Traceback" not in res.stderr
    assert fresh.psql("select setting from pg_file_settings where name = 'archive_command' "
                      "order by seqno desc limit 1") == "cp %p /somewhere/%f"  # untouched
