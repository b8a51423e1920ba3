"""Processes by what they touch: stop a postmaster from its pid file, find strays that name a directory.

Used to tear down scratch instances without the runner (it refuses new commands once the daemon is shutting
down, which is exactly when a drill must still be torn down).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (PID 1 may reap late: a dead postmaster can stay a zombie with its
    postmaster.pid in place, and that is not a live server)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if alive(p)]
    return left


def pid_in_file(data_dir: Path) -> int | None:
    """The pid on the first line of ``<data_dir>/postmaster.pid``, if the file is there."""
    try:
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0].strip())
    except (OSError, ValueError, IndexError):
        return None


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid in ``postmaster.pid`` if that process is alive and is a postgres for this directory."""
    pid = pid_in_file(data_dir)
    if pid is None:
        return None
    return pid if alive(pid) and "postgres" in _cmdline(pid) else None


def _serves(pid: int, data_dir: Path) -> bool:
    """The postmaster ``pid`` runs in ``data_dir`` (a postmaster's working directory is its data directory): a
    postmaster.pid planted in a scratch directory cannot aim a signal at another cluster."""
    try:
        return os.readlink(f"/proc/{pid}/cwd") == os.path.realpath(data_dir)
    except OSError:
        return False


def stop_postmaster(data_dir: Path, timeout: float = 30) -> bool:
    """Immediate shutdown (SIGQUIT), then SIGKILL, of the postmaster of ``data_dir`` (never of a process that
    merely has its pid written there). True if a server was running."""
    if data_dir.is_symlink():
        return False
    pid = postmaster_pid(data_dir)
    if pid is None or not _serves(pid, data_dir):
        return False
    for sig, wait in ((signal.SIGQUIT, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        if not _wait_gone([pid], wait):
            return True
    return True


def kill_mentioning(text: str, timeout: float = 10) -> list[int]:
    """SIGKILL every process whose command line contains ``text`` (e.g. an orphaned restore into a scratch
    directory). Returns their pids."""
    me = os.getpid()
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me and text in _cmdline(int(p))]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
    _wait_gone(pids, timeout)
    return pids


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (field 22 of /proc/PID/stat): with the pid, it
    names one process for good (a pid reused by another process has another start time)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[-1].split()[19])
    except (IndexError, ValueError):
        return None


def same_process(pid: int, ticks: int | None) -> bool:
    """``pid`` is alive and is the process that had started at ``ticks`` (unknown ticks: alive is enough)."""
    return alive(pid) and (ticks is None or start_ticks(pid) == ticks)
