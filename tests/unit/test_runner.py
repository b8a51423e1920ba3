"""The runner, on real (tiny) processes: timeouts kill the process group, output is streamed, daemonised
grandchildren do not hang it, cancel works, argv is redacted."""

from __future__ import annotations

import os
import threading
import time

import pytest

from opsd.adapters.runner import ProcessRunner, user_prefix
from opsd.errors import CommandCancelled, CommandError, CommandTimeout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_output_is_streamed_line_by_line() -> None:
    seen: list[tuple[str, str]] = []
    res = ProcessRunner().run(["sh", "-c", "echo one; echo two >&2; printf 'three'"], timeout=10,
                              on_line=lambda s, line: seen.append((s, line)))
    assert res.ok and res.stdout == "one\nthree\n" and res.stderr == "two\n"
    assert ("stdout", "one") in seen and ("stderr", "two") in seen and ("stdout", "three") in seen


def test_a_stream_too_large_to_hold_goes_only_to_on_line() -> None:
    got: list[tuple[str, str]] = []
    res = ProcessRunner().run(["sh", "-c", "seq 1 50000; echo oops >&2"], timeout=10, keep_stdout=False,
                              on_line=lambda s, line: got.append((s, line)), log_output=False)
    assert res.stdout == "" and "oops" in res.stderr
    assert [line for s, line in got if s == "stdout"] == [str(i) for i in range(1, 50001)]


def test_nonzero_exit_is_returned_not_raised() -> None:
    res = ProcessRunner().run(["sh", "-c", "exit 7"], timeout=10)
    assert res.returncode == 7 and not res.ok


def test_timeout_kills_the_whole_process_group(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match="timed out after 1s"):
        ProcessRunner().run(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"], timeout=1)
    assert time.monotonic() - started < 10
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the grandchild survived the timeout"


def test_a_daemonised_grandchild_holding_the_pipe_does_not_hang_the_runner() -> None:
    started = time.monotonic()
    res = ProcessRunner().run(["sh", "-c", "(sleep 30 &) ; echo started"], timeout=20)
    assert res.ok and "started" in res.stdout
    assert time.monotonic() - started < 5


def test_cancel_all_kills_running_commands_and_refuses_new_ones() -> None:
    runner = ProcessRunner()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            runner.run(["sleep", "60"], timeout=120)
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=target)
    t.start()
    time.sleep(0.5)
    runner.cancel_all()
    t.join(timeout=15)
    assert not t.is_alive()
    assert errors and isinstance(errors[0], CommandCancelled)
    with pytest.raises(CommandCancelled):
        runner.run(["true"], timeout=5)


def test_missing_binary_is_a_command_error() -> None:
    with pytest.raises(CommandError, match="cannot start"):
        ProcessRunner().run(["/nonexistent/pgbackrest", "info"], timeout=5)


def test_secrets_are_redacted_from_the_recorded_argv() -> None:
    res = ProcessRunner().run(["echo", "--repo1-s3-key-secret=hunter2hunter2"], timeout=5, log_output=False)
    assert res.argv == ("echo", "--repo1-s3-key-secret=********")


def test_user_prefix_only_when_root_and_another_user() -> None:
    assert user_prefix("postgres", euid=0) == ["runuser", "-u", "postgres", "--"]
    assert user_prefix("postgres", euid=1000) == []
    assert user_prefix("root", euid=0) == []
    assert user_prefix(None, euid=0) == []


def test_the_fake_runner_fails_on_a_command_it_was_not_told_about() -> None:
    from tests.fakes import FakeRunner, UnscriptedCommand

    runner = FakeRunner(answers={"info": (0, "[]", "")})
    assert runner.run(["pgbackrest", "info"], timeout=1).stdout == "[]"
    with pytest.raises(UnscriptedCommand, match="unscripted command: pgbackrest backup"):
        runner.run(["pgbackrest", "backup"], timeout=1)


def test_children_never_get_the_services_notify_socket_or_watchdog() -> None:
    """Under systemd, a child that speaks sd_notify (a drill's PostgreSQL) must not talk to opsd's unit. In a
    process of its own: the variables are there before opsd (and plumbum, which keeps its own copy) is imported."""
    import subprocess
    import sys

    env = {**os.environ, "NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1",
           "LISTEN_FDS": "1", "OPSD_KEEP_ME": "yes"}
    code = "from opsd.adapters.runner import ProcessRunner; print(ProcessRunner().run(['env'], timeout=10).stdout)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert "OPSD_KEEP_ME=yes" in out
    assert not [line for line in out.splitlines() if line.split("=")[0] in (
        "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS")]
