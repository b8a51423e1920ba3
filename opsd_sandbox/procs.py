"""Small process helpers for the sandbox (it runs as root and starts servers as ``postgres``)."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

PG_USER = "postgres"


def as_pg(argv: Sequence[str]) -> list[str]:
    """Prefix argv so it runs as ``postgres`` when we are root."""
    return ["runuser", "-u", PG_USER, "--", *argv] if os.geteuid() == 0 else list(argv)


def run(argv: Sequence[str], *, env: dict[str, str] | None = None, check: bool = True,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(list(argv), capture_output=True, text=True, env={**os.environ, **(env or {})},
                         timeout=timeout, check=False)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed (rc {res.returncode}): {res.stderr.strip() or res.stdout.strip()}")
    return res


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(pred: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def chown_pg(*paths: Path, mode: int | None = None) -> None:
    pw = pwd.getpwnam(PG_USER)
    for p in paths:
        if os.geteuid() == 0:
            os.chown(p, pw.pw_uid, pw.pw_gid)
        if mode is not None:
            p.chmod(mode)


def mkdir_pg(path: Path, mode: int = 0o750) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    chown_pg(path, mode=mode)
    return path


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)



def nofile(connections: int) -> list[str]:
    """An argv prefix that lets the command hold ``connections`` sockets and some files: 1000 clients need more
    than the usual soft limit of 1024 descriptors (util-linux's prlimit; the sandbox runs as root)."""
    want = max(connections + 256, 1024)
    return ["prlimit", f"--nofile={want}:{want}", "--"]
