"""A drill whose restore failed because the repository could not be reached (a cut link: issue 26) does not go on
to verify the backup set over the same dead link (up to [pgbackrest] backup_timeout, 12 h by default, before the
copy is torn down and the failure alerted); a restore that failed for another reason still names the damage."""

from __future__ import annotations

from typing import Any

import pytest

from opsd.actions.drill.job import _name_damage
from opsd.adapters.pgbackrest_errors import to_error, unreachable
from opsd.core.records.checks import CRITICAL, CheckResult
from opsd.core.records.drill import DrillResult
from tests.fakes import FakeRunner

CUT = [  # what pgBackRest 2.45 said when the S3 endpoint's link was cut (tests/hosts/test_network.py)
    "ERROR: [049]: raised from local-2 protocol: timeout connecting to 'opsd-s3:9443'",
    "ERROR: [103]: unable to find a valid repository:\n       repo1: [HostConnectError] unable to load info file "
    "'/repo/archive/net/archive.info':\n       HostConnectError: unable to connect to 'opsd-s3:9443': [113] No route "
    "to host",
    "ERROR: [039]: raised from local-1 protocol: timeout after 2000ms waiting for read from 'opsd-s3:9443'",
]
NOT_CUT = [
    "ERROR: [026]: raised from local-1 protocol: error restoring 'base/5/16384': actual checksum 'ab' does not "
    "match expected checksum 'cd'",
    "ERROR: [064]: unable to write '/scratch/base/5/16384': [28] No space left on device",
]


@pytest.mark.parametrize("stderr", CUT)
def test_a_host_not_reached_is_a_network_fault(stderr: str) -> None:
    err = to_error(int(stderr[8:11]), "", stderr, ["pgbackrest", "restore"], "restore")
    assert unreachable(str(err)) and unreachable(stderr)


@pytest.mark.parametrize("stderr", NOT_CUT)
def test_damage_and_a_full_disk_are_not(stderr: str) -> None:
    assert not unreachable(str(to_error(int(stderr[8:11]), "", stderr, ["pgbackrest", "restore"], "restore")))


def _result(message: str) -> DrillResult:
    result = DrillResult(stanza="main", target_mode="latest")
    result.checks.append(CheckResult("restore", CRITICAL, message + " (the partial restore is left in /x)"))
    return result


def test_restore_cut_off_from_the_repository_skips_the_verify(fake_ctx: Any) -> None:
    runner = FakeRunner()  # no command scripted: a verify would fail the test
    ctx = fake_ctx(runner)
    err = to_error(49, "", CUT[0], ["pgbackrest", "restore"], "restore")
    result = _result(str(err))
    _name_damage(ctx, result, "20261207-101922F", lambda _m: None)
    assert runner.calls == []
    check = result.checks[-1]
    assert check.status == CRITICAL and "opsd-s3:9443" in check.message
    assert "could not be reached (a network fault, not damage): the set was not verified" in check.message


def test_restore_with_damage_still_verifies_the_set(fake_ctx: Any) -> None:
    verify = ("status: error\n  backup: 20261207-101922F, status: invalid, total files checked: 10, total valid "
              "files: 9\n    checksum invalid: 1\n")
    runner = FakeRunner({"verify": (0, verify, "P01 INFO: invalid checksum 'pg_data/base/5/16384'\n")})
    ctx = fake_ctx(runner)
    err = to_error(26, "", NOT_CUT[0], ["pgbackrest", "restore"], "restore")
    result = _result(str(err))
    _name_damage(ctx, result, "20261207-101922F", lambda _m: None)
    assert [c[-1] for c in runner.calls] == ["verify"]
    assert "not verified" not in result.checks[-1].message
