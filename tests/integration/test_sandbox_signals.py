"""``python -m opsd_sandbox up`` stops what it started on SIGTERM, on Ctrl-C (SIGINT to its whole process group,
as a terminal sends it) and on SIGHUP, as it does on a normal exit, also when the signal comes during start-up:
afterwards no process runs in its folder, none it started is alive, its ports are free."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from opsd_sandbox.procs import port_open
from tests.conftest import REPO

pytestmark = pytest.mark.integration

FIRST = re.compile(r"bringing up a sandbox in (\S+): PostgreSQL on port (\d+), S3 endpoint https://localhost:(\d+) "
                   r"\(moto on port (\d+)\)")
READY = "sandbox up in "


@dataclass
class Up:
    """A running ``python -m opsd_sandbox up`` in a session of its own (its process group: the terminal's)."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    root: Path | None = None
    ports: tuple[int, ...] = ()
    seen: dict[int, str] = field(default_factory=dict)  # the processes it had started when the signal came

    @classmethod
    def start(cls) -> Up:
        proc = subprocess.Popen([sys.executable, "-m", "opsd_sandbox", "up"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, cwd=REPO, start_new_session=True)
        up = cls(proc)
        threading.Thread(target=up._read, daemon=True).start()
        return up

    def started(self) -> Path:
        """Where it runs and on which ports, from its first line."""
        m = FIRST.search(self.wait_line("bringing up a sandbox in ", 30))
        assert m, self.output
        self.root, self.ports = Path(m[1]), (int(m[2]), int(m[3]), int(m[4]))
        return self.root

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_line(self, start: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in list(self.lines) if line.startswith(start)), None)
            if found:
                return found
            if self.proc.poll() is not None and not any(line.startswith(start) for line in self.lines):
                break
            time.sleep(0.05)
        raise AssertionError(f"no line {start!r} within {timeout:.0f}s (exit {self.proc.poll()}): {self.output}")


def _in_folder(root: Path) -> dict[int, str]:
    """Every process whose command line names a path in ``root`` or whose working directory is in it (the
    postmaster and its children, nginx's master, initdb, pg_ctl)."""
    assert str(root).startswith("/tmp/opsd-sandbox-"), root  # never a broad match
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
            if f"{root}/" in args or f"{root} " in args or cwd.startswith(f"{root}/") or cwd == str(root):
                found[int(entry.name)] = args.strip()
    return found


def _descendants(pid: int) -> dict[int, str]:
    """The processes below ``pid`` now (moto and nginx, in sessions of their own, are still its children)."""
    parent, args = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                parent[int(entry.name)] = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
                args[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        for child, pp in parent.items():
            if pp == p and child not in out:
                out[child] = args.get(child, "")
                todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        return not Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].startswith("Z")
    except OSError:
        return False


@pytest.fixture
def sandbox_up() -> Iterator[list[Up]]:
    """Started sandboxes; whatever a failing test leaves is killed and removed."""
    started: list[Up] = []
    yield started
    for up in started:
        if up.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(up.proc.pid, signal.SIGKILL)
            up.proc.wait(10)
        if up.root is None:
            continue
        for pid in {*_in_folder(up.root), *(p for p in up.seen if _alive(p))}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(up.root, ignore_errors=True)


def _send(up: Up, sig: signal.Signals, *, group: bool) -> None:
    if group:  # Ctrl-C in a terminal: the whole foreground process group (initdb or pg_ctl under way too)
        os.killpg(up.proc.pid, sig)
    else:  # kill, systemd's main process, a CI runner's timeout
        up.proc.send_signal(sig)


def _assert_all_gone(up: Up, sig: signal.Signals) -> None:
    assert up.root is not None
    try:
        rc = up.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running 60s after {sig.name}: {up.output}") from None
    assert rc == 128 + sig, (rc, up.output)
    assert f"stopped by {sig.name}" in up.output, up.output
    alive = {pid: args for pid, args in up.seen.items() if _alive(pid)}
    assert not alive, f"left running after {sig.name}: {alive}"
    assert not _in_folder(up.root), f"left running in {up.root}: {_in_folder(up.root)}"
    held = [port for port in up.ports if port_open(port)]
    assert not held, f"ports still held after {sig.name}: {held} of {up.ports}"
    assert not (up.root / "pgdata" / "postmaster.pid").exists()


@pytest.mark.parametrize(("sig", "group"), [(signal.SIGTERM, False), (signal.SIGINT, True), (signal.SIGHUP, False)])
def test_a_running_sandbox_stops_everything_on_a_signal(sandbox_up: list[Up], sig: signal.Signals,
                                                        group: bool) -> None:
    up = Up.start()
    sandbox_up.append(up)
    root = up.started()
    up.wait_line(READY, 90)
    up.seen = _descendants(up.proc.pid)
    postmaster = int((root / "pgdata" / "postmaster.pid").read_text().split()[0])
    up.seen[postmaster] = "postmaster"
    # what the assertions below must find stopped is running now, and seen: PostgreSQL, moto, nginx
    assert _alive(postmaster) and any("moto.server" in a for a in up.seen.values()), up.seen
    assert any(a.startswith("nginx") for a in up.seen.values()), up.seen
    assert all(port_open(port) for port in up.ports), up.ports
    _send(up, sig, group=group)
    _assert_all_gone(up, sig)


@pytest.mark.parametrize(("sig", "group"), [(signal.SIGTERM, False), (signal.SIGINT, True)])
def test_a_signal_during_start_up_stops_what_was_started_so_far(sandbox_up: list[Up], sig: signal.Signals,
                                                                group: bool) -> None:
    """The signal comes once moto and nginx run and the cluster is being made (initdb, then pg_ctl start)."""
    up = Up.start()
    sandbox_up.append(up)
    root = up.started()
    deadline = time.monotonic() + 60
    while not (root / "pgdata").exists() and up.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    up.seen = _descendants(up.proc.pid)
    assert any("moto.server" in a for a in up.seen.values()), (up.seen, up.output)
    assert any(a.startswith("nginx") for a in up.seen.values()), (up.seen, up.output)
    _send(up, sig, group=group)
    _assert_all_gone(up, sig)
    assert READY not in up.output, "the signal came too late to test a start-up: " + up.output
