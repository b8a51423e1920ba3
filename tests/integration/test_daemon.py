"""The daemon on the real stack: catch-up once at start, a 1-minute schedule that backs up without help,
SIGHUP (bad config kept out, good config swapped in), SIGTERM, and --once."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsd.adapters.stores.runs import History
from opsd_sandbox import Sandbox
from tests.conftest import REPO, opsd
from tests.integration.helpers import Cluster, wait_until
from tests.integration.helpers import events as log_events

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def dstack() -> Iterator[Sandbox]:
    """A stack of its own for the daemons of this module (the catch-up test adds a cluster with no backup)."""
    sb = Sandbox.create(prefix="opsd-test-daemon-", archiving=False)
    try:
        sb.up()
        res = opsd(sb.opsd_conf, "setup", "--restart")
        assert res.returncode == 0, res.stderr
        yield sb
    finally:
        sb.down(remove=True)


def _start(conf: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "opsd", "--config", str(conf), "--log-format", "json",
                             "--log-level", "info", "daemon"], stdout=subprocess.DEVNULL,
                            stderr=log.open("wb"), cwd=REPO)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=120)


@pytest.fixture
def fresh(dstack: Sandbox) -> Iterator[Cluster]:
    """A cluster and stanza with no backup at all, whatever the other tests of this module did before."""
    c = Cluster(dstack, "catchup")
    c.initdb()
    try:
        res = opsd(c.conf, "setup", "--restart")
        assert res.returncode == 0, res.stderr
        yield c
    finally:
        c.stop_quietly()


def test_daemon_catches_up_once_then_runs_on_schedule(fresh: Cluster, tmp_path: Path) -> None:
    conf = fresh.write_conf(tmp_path / "opsd.toml", schedule={"full": "* * * * *", "check": ""})
    log = tmp_path / "daemon.log"
    hist = History(fresh.state, "postgres")
    proc = _start(conf, log)
    try:
        def runs(trigger: str) -> list[str]:
            return [r.outcome for r in hist.runs("backup-full") if r.trigger == trigger]

        wait_until(lambda: runs("catch-up") == ["ok"], timeout=90, what="the catch-up full backup")
        wait_until(lambda: "ok" in runs("schedule"), timeout=150, what="a scheduled full backup")
        assert runs("catch-up") == ["ok"]  # exactly one catch-up

        # SIGHUP with a broken config: rejected, old schedule kept, daemon alive
        good = conf.read_text()
        conf.write_text(good.replace('full = "* * * * *"', 'full = "not a schedule"'))
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: any(e["event"] == "config.reload_rejected" for e in log_events(log)), timeout=15,
                   what="the reload to be rejected")
        assert proc.poll() is None
        rejected = next(e for e in log_events(log) if e["event"] == "config.reload_rejected")
        assert any("schedule.full" in p for p in rejected["problems"])  # type: ignore[attr-defined]

        # SIGHUP with a valid config: swapped in
        conf.write_text(good.replace('full = "* * * * *"', 'full = "0 3 * * *"'))
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: any(e["event"] == "config.reloaded" for e in log_events(log)), timeout=15,
                   what="the reload")
        reloaded = next(e for e in log_events(log) if e["event"] == "config.reloaded")
        assert "T03:00:00" in reloaded["jobs"]["backup-full"]  # type: ignore[index]
    finally:
        rc = _stop(proc)
    assert rc == 0
    events = [e["event"] for e in log_events(log)]
    assert "daemon.started" in events and events[-1] == "daemon.stopped"
    finished = [e for e in log_events(log) if e["event"] == "backup.finished"]
    ok = [e for e in finished if e["outcome"] == "ok"]
    # a minute that fires while the catch-up still runs finds the lock held: 'busy', never a second backup
    assert ok and all(e["outcome"] in ("ok", "busy") for e in finished)
    assert len(fresh.labels()) == len(ok)

    # a restart right after does not catch up again: the repository has a fresh full
    log2 = tmp_path / "daemon2.log"
    proc = _start(conf, log2)
    try:
        wait_until(lambda: any(e["event"] == "daemon.started" for e in log_events(log2)), timeout=30,
                   what="the second daemon start")
    finally:
        assert _stop(proc) == 0
    decision = next(e for e in log_events(log2) if e["event"] == "daemon.catch_up")
    assert decision["run"] is False
    assert runs_total(hist, "catch-up") == 1


def runs_total(hist: History, trigger: str) -> int:
    return sum(1 for r in hist.runs("backup-full") if r.trigger == trigger)


def test_daemon_once_runs_every_enabled_job(dstack: Sandbox, tmp_path: Path) -> None:
    conf = dstack.write_opsd_conf(tmp_path / "once.toml",
                                  schedule={"full": "", "diff": "0 13 * * *", "check": "*/30 * * * *"})
    res = opsd(conf, "daemon", "--once")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["backup-diff: ok", "check: ok"]


def test_sd_notify_and_sigterm_cancel_a_running_drill(dstack: Sandbox, tmp_path: Path) -> None:
    """A fake NOTIFY_SOCKET sees READY, STATUS, WATCHDOG and STOPPING; SIGTERM during a drill cancels it at
    once, tears the scratch instance down and records the drill as interrupted."""
    import os
    import socket
    import threading
    import time

    sb = dstack
    assert opsd(sb.opsd_conf, "backup", "--type", "full").returncode == 0  # something to drill
    sock_path = sb.root / "notify.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(sock_path))
    srv.settimeout(0.2)
    messages: list[str] = []
    done = threading.Event()

    def listen() -> None:
        while not done.is_set():
            try:
                messages.append(srv.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:  # the socket was closed at the end of the test
                return

    threading.Thread(target=listen, daemon=True).start()
    from urllib.request import urlopen

    from opsd_sandbox.procs import free_port

    port = free_port()
    conf = sb.write_opsd_conf(tmp_path / "notify.toml", schedule={"full": "", "check": "", "drill": "2s",
                                                                   "health": ""}, drill={"heartbeat_interval": "0s"},
                              extra=f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    log = tmp_path / "notify.log"
    proc = subprocess.Popen([sys.executable, "-m", "opsd", "--config", str(conf), "--log-format", "json",
                             "--log-level", "info", "daemon"], stdout=subprocess.DEVNULL, stderr=log.open("wb"),
                            cwd=REPO, env={**os.environ, "NOTIFY_SOCKET": str(sock_path)})
    scratch = sb.state_dir / "scratch"
    try:
        wait_until(lambda: any(m.startswith("READY=1") for m in messages), timeout=30, what="READY=1")
        ready = next(m for m in messages if m.startswith("READY=1"))
        assert "STATUS=scheduler running" in ready and "next drill at" in ready
        with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            metrics = resp.read().decode()
        assert 'opsd_build_info{role="primary"' in metrics
        assert 'opsd_job_last_success_timestamp_seconds{job="backup-full"}' in metrics
        wait_until(lambda: scratch.exists() and any(scratch.glob("drill-*/*")), timeout=60,
                   what="the scheduled drill to start restoring")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=90)
        stopped_in = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
        done.set()
        srv.close()
    assert rc == 0 and stopped_in < 45, stopped_in  # not the drill's full length, nor shutdown_timeout
    assert any(m == "WATCHDOG=1" for m in messages)
    assert any(m.startswith("STOPPING=1") for m in messages)
    assert list(scratch.glob("drill-*")) == []
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert str(scratch) not in ps
    events = [e["event"] for e in log_events(log)]
    assert "daemon.cancelling_drill" in events and events[-1] == "daemon.stopped"
    last = History(sb.state_dir, "postgres").last("drill")
    assert last is not None and last.outcome == "interrupted", last
