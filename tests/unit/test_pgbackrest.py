"""pgBackRest adapter: argv builders by equality, parsers on real 2.45 output, exit-code mapping."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from opsd.adapters import pgbackrest as pb
from opsd.adapters.pgbackrest_errors import parse_error, to_error
from opsd.errors import BusyError, ExitCode, PgBackRestError, PgBackRestLockError, RepositoryError
from tests.fakes import FakeRunner

DATA = Path(__file__).resolve().parents[1] / "data"
BASE = pb.Base(bin="pgbackrest", config="/etc/pgbackrest/pgbackrest.conf", stanza="main")
PREFIX = ["pgbackrest", "--config=/etc/pgbackrest/pgbackrest.conf", "--stanza=main"]


def test_backup_argv() -> None:
    assert pb.backup_cmd(BASE, "diff") == [*PREFIX, "--log-level-console=info", "--type=diff", "--start-fast", "backup"]
    assert pb.backup_cmd(BASE, "full", start_fast=False) == [*PREFIX, "--log-level-console=info", "--type=full",
                                                             "backup"]


def test_backup_type_is_validated_in_the_builder() -> None:
    with pytest.raises(ValueError, match="full, diff, incr"):
        pb.backup_cmd(BASE, "differential")


def test_probe_argv_carry_a_short_io_timeout() -> None:
    assert pb.info_cmd(BASE, io_timeout=2) == [*PREFIX, "--output=json", "--log-level-console=warn",
                                                "--io-timeout=2", "info"]
    assert pb.check_cmd(BASE, io_timeout=5, archive_timeout=30) == [
        *PREFIX, "--log-level-console=info", "--io-timeout=5", "--archive-timeout=30", "check"]
    assert pb.stanza_create_cmd(BASE) == [*PREFIX, "--log-level-console=info", "stanza-create"]
    assert pb.expire_cmd(BASE) == [*PREFIX, "--log-level-console=info", "expire"]


def test_archive_command() -> None:
    assert pb.archive_push_command(BASE) == (
        "pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=main archive-push %p")


def test_parse_info_real_output() -> None:
    [st] = pb.parse_info((DATA / "info_three_backups.json").read_text())
    assert st.name == "demo" and st.ok and not st.lock_held
    assert [b.type for b in st.backups] == ["full", "diff", "incr"]
    full, diff, incr = st.backups
    assert full.label == "20261125-173332F"
    assert full.start == datetime.fromtimestamp(1795628012, UTC)
    assert full.duration == 18
    assert full.size == 807270225 and full.repo_delta == 45570924
    assert diff.reference == ("20261125-173332F",)
    assert incr.wal_start == "000000010000000000000042"
    assert st.archives[0].min == "000000010000000000000031"
    assert st.newest(("full",)) == full
    assert st.newest(("full", "diff")) == diff


@pytest.mark.parametrize(("code", "usable"), [(0, True), (2, True), (1, False), (99, False)])
def test_info_status_codes(code: int, usable: bool) -> None:
    text = ('[{"archive":[],"backup":[],"name":"demo","repo":[{"key":1,"status":{"code":%d,"message":"m"}}],'
            '"status":{"code":%d,"lock":{"backup":{"held":false}},"message":"m"}}]') % (code, code)
    [st] = pb.parse_info(text)
    assert st.ok is usable


def test_parse_info_rejects_non_json() -> None:
    with pytest.raises(ValueError, match="JSON"):
        pb.parse_info("ERROR: nope")


UNREACHABLE = (
    "ERROR: [103]: unable to find a valid repository:\n"
    "       repo1: [HostConnectError] unable to load info file '/repo/archive/demo/archive.info' or "
    "'/repo/archive/demo/archive.info.copy':\n"
    "       HostConnectError: unable to connect to 'localhost:9443': [111] Connection refused\n"
)


def test_parse_error_keeps_the_cause_naming_the_endpoint() -> None:
    code, msg = parse_error("", UNREACHABLE)
    assert code == 103
    assert "unable to connect to 'localhost:9443'" in msg
    assert "\n" not in msg


def test_lock_held_maps_to_busy_exit_4() -> None:
    err = to_error(50, "", "ERROR: [050]: unable to acquire lock on file '/tmp/lock/demo-backup.lock': "
                   "Resource temporarily unavailable\n       HINT: is another pgBackRest process running?",
                   ["pgbackrest", "backup"], "backup")
    assert isinstance(err, PgBackRestLockError) and isinstance(err, BusyError)
    assert err.exit_code == ExitCode.BUSY
    assert err.name == "lock-acquire"


@pytest.mark.parametrize(("code", "name"), [
    (82, "archive-timeout"), (62, "stop"), (75, "backup-set-invalid"), (45, "archive-duplicate"), (95, "crypto"),
])
def test_exit_codes_dba_understands(code: int, name: str) -> None:
    err = to_error(code, "", f"ERROR: [{code:03d}]: something\n", [], "backup")
    assert err.name == name and err.code == code and err.hint
    assert err.exit_code == ExitCode.FAILED
    assert f"[{code} {name}]" in str(err)


def test_error_without_error_line_uses_exit_code_and_last_line() -> None:
    err = to_error(63, "", "killed\n", [], "backup")
    assert err.code == 63 and err.name == "term" and "killed" in str(err)


def _executor(runner: FakeRunner) -> pb.PgBackRest:
    return pb.PgBackRest(base=BASE, runner=runner, backup_timeout=60, command_timeout=10, probe_io_timeout=2)


def test_executor_info_raises_repository_error_when_unreachable() -> None:
    text = ('[{"archive":[],"backup":[],"name":"main","repo":[{"key":1,"status":{"code":99,"message":'
            '"[HostConnectError] unable to connect to \'localhost:9999\': [111] Connection refused"}}],'
            '"status":{"code":99,"lock":{"backup":{"held":false}},"message":"other"}}]')
    runner = FakeRunner(answers={"info": (0, text, "")})
    with pytest.raises(RepositoryError, match="localhost:9999"):
        _executor(runner).info()


def test_executor_maps_failures() -> None:
    runner = FakeRunner(answers={"check": (82, "", "ERROR: [082]: WAL segment was not archived before the 60000ms "
                                                   "timeout\n")})
    with pytest.raises(PgBackRestError, match="archive-timeout") as ei:
        _executor(runner).check()
    assert ei.value.argv == [*PREFIX, "--log-level-console=info", "--io-timeout=2", "check"]


@pytest.mark.parametrize(("stderr", "expect", "wrong"), [
    ("P00  ERROR: [101]: unable to get backup stop: NULL result required to complete request",
     "PostgreSQL went away", "S3 service"),
    ("P00  ERROR: [057]: unable to execute query: server closed the connection unexpectedly",
     "PostgreSQL went away", "a query pgBackRest ran"),
    ("P00  ERROR: [058]: WAL timeline 2 does not match pg_control timeline 1",
     "has not checkpointed on its new timeline", "pg1-path or port"),
])
def test_the_hint_names_the_real_cause_not_the_code_s_usual_one(stderr: str, expect: str, wrong: str) -> None:
    from opsd.adapters.pgbackrest_errors import to_error

    err = to_error(1, "", stderr, ["pgbackrest", "backup"], "backup")
    assert expect in (err.hint or "") and wrong not in (err.hint or ""), err.hint
