"""Killing the CLI kills its work: SIGTERM, SIGINT or SIGHUP (an ssh session or an Ansible connection that drops)
during backup, restore, setup or drill stops the child pgBackRest/PostgreSQL process group before opsd exits, and
the lock is usable right afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import free_port
from tests.conftest import REPO, opsd
from tests.integration.helpers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.slow]


def _procs(*tokens: str) -> list[int]:
    """Processes whose argv has every token (a token ending in '*' matches as a prefix)."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            argv = Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace").split("\0")
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if state == "Z" or argv[0] == "runuser":
            continue
        if all(any(a == t or (t.endswith("*") and a.startswith(t[:-1])) for a in argv) for t in tokens):
            found.append(int(p))
    return found


@pytest.fixture(scope="module")
def sb(ready_stack: Sandbox) -> Iterator[Sandbox]:
    """Enough data that a backup, a restore and a drill each take a few seconds; dropped at the module's end, so
    the session's primary does not carry its 130 MB into every later module's backups, restores and drills."""
    ready_stack.psql("create table if not exists fault_bulk(id int, pad text)")
    if int(ready_stack.psql("select count(*) from fault_bulk")) == 0:
        ready_stack.psql("insert into fault_bulk select g, md5(g::text) || repeat(md5((g * 7)::text), 8) "
                         "from generate_series(1, 400000) g")
    yield ready_stack
    ready_stack.psql("drop table if exists fault_bulk")


def _interrupt(args: list[str], conf: Path, sig: signal.Signals, *child: str) -> subprocess.CompletedProcess[str]:
    """Start opsd, wait until its child with ``child`` tokens runs, send ``sig`` to opsd, wait for it to exit;
    then no such child may be left."""
    proc = subprocess.Popen([sys.executable, "-m", "opsd", "--config", str(conf), *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: _procs(*child) or proc.poll() is not None, timeout=120, interval=0.02,
                   what=f"opsd {args[0]} to start {' '.join(child)}")
        early = proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
        assert proc.poll() is None, f"opsd {args[0]} ended before the signal: {early}"
        os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err[-2000:]
    assert f"interrupted by {sig.name}" in err and "Traceback" not in err
    left = _procs(*child)
    assert left == [], f"left running after opsd exited: {left}"
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def test_sigterm_during_a_backup(sb: Sandbox) -> None:
    _interrupt(["backup", "--type", "full"], sb.opsd_conf, signal.SIGTERM, f"--config={sb.pgbackrest_conf}",
               "backup*")
    res = opsd(sb.opsd_conf, "backup", "--type", "full")  # opsd's lock and pgBackRest's are both free
    assert res.returncode == 0, res.stderr


def test_sighup_during_a_restore(sb: Sandbox) -> None:
    dest = sb.root / "signal-restore"
    _interrupt(["restore", "--type", "immediate", "--target-dir", str(dest), "--port", str(free_port())],
               sb.opsd_conf, signal.SIGHUP, f"--pg1-path={dest}", "restore*")
    again = sb.root / "signal-restore-2"
    res = opsd(sb.opsd_conf, "restore", "--type", "immediate", "--target-dir", str(again), "--port",
               str(free_port()))
    assert res.returncode == 0, res.stderr


def test_sigint_during_setup(sb: Sandbox) -> None:
    sb.stop_s3()  # stanza-create then retries for a long while: a window to interrupt it
    try:
        _interrupt(["setup"], sb.opsd_conf, signal.SIGINT, f"--config={sb.pgbackrest_conf}", "stanza-create")
    finally:
        sb.start_s3()
    res = opsd(sb.opsd_conf, "setup")
    assert res.returncode == 0, res.stderr


def test_sighup_during_a_drill_tears_it_down(sb: Sandbox) -> None:
    scratch = sb.state_dir / "scratch"
    res = _interrupt(["drill", "run", "--target", "latest"], sb.opsd_conf, signal.SIGHUP,
                     f"--config={sb.pgbackrest_conf}", f"--pg1-path={scratch}/drill-*", "restore*")
    assert not list(scratch.glob("drill-*")), res.stderr[-2000:]
    assert _procs("postgres*", "-D", f"{scratch}/drill-*") == []
    time.sleep(0.1)
    rc = opsd(sb.opsd_conf, "drill", "run", "--target", "latest", timeout=600).returncode
    assert rc in (0, 1)  # the lock is free: the drill ran (its verdict is another test's business)
