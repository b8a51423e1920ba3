"""Small process helpers for the sandbox (it runs as root and starts servers as ``postgres``), and its stop
signals: :func:`stop_on_signals` turns SIGTERM, SIGINT and SIGHUP into :class:`Stopped`, raised where the
main thread is, so the ``finally`` that tears the sandbox down runs; :func:`uninterrupted` holds a stop back
until a server just spawned is recorded (or a teardown has run to its end)."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

PG_USER = "postgres"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Stopped(SystemExit):
    """A stop signal: unwinds like an exit (code 128 + the signal), through every ``finally`` on the way."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


@dataclass
class _Stop:
    """Signal dispositions belong to the process, and so does this: the stop signal received (the first; later
    ones are ignored so that a teardown runs whole), whether it was raised, and how deep in
    :func:`uninterrupted` blocks the main thread is."""

    signum: int | None = None
    raised: bool = False
    depth: int = 0

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is not None:
            return
        self.signum = signum
        if self.depth == 0:
            self.raise_it()

    def raise_it(self) -> None:
        assert self.signum is not None
        self.raised = True
        raise Stopped(self.signum)


_STOP = _Stop()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within: the first SIGTERM, SIGINT or SIGHUP raises :class:`Stopped` in the main thread (at once, or at the
    end of the :func:`uninterrupted` block it arrived in); later ones are ignored."""
    _STOP.signum, _STOP.raised = None, False
    previous = {sig: signal.signal(sig, _STOP.on_signal) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """A stop signal that arrives within is acted on at the block's end: a server spawned here is recorded
    before the teardown looks for it, a command run here is not cut off (``runuser`` cannot pass a SIGKILL on
    to the command it started), and a teardown in here runs whole."""
    _STOP.depth += 1
    try:
        yield
    finally:
        _STOP.depth -= 1
        if _STOP.depth == 0 and _STOP.signum is not None and not _STOP.raised:
            _STOP.raise_it()


def as_pg(argv: Sequence[str]) -> list[str]:
    """Prefix argv so it runs as ``postgres`` when we are root."""
    return ["runuser", "-u", PG_USER, "--", *argv] if os.geteuid() == 0 else list(argv)


def run(argv: Sequence[str], *, env: dict[str, str] | None = None, check: bool = True,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a short command to its end (a stop signal meanwhile waits for it: :func:`uninterrupted`)."""
    with uninterrupted():
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


def pg_gid() -> int:
    return pwd.getpwnam(PG_USER).pw_gid


def toml_value(v: object) -> str:
    """A TOML value for the few kinds the sandbox writes (strings, numbers, booleans, lists of them)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v)


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


def under(root: Path) -> list[int]:
    """Processes (but this one) whose command line names a path in ``root`` or whose working directory is in it:
    a sandbox's servers, and what opsd started in it (pgBackRest, a drill's scratch PostgreSQL)."""
    if not root.is_absolute() or len(root.parts) < 3:  # a sandbox folder, never / or /tmp
        raise ValueError(f"not a sandbox folder: {root}")
    mark, found = str(root), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            cwd = os.readlink(entry / "cwd")
        except OSError:  # gone meanwhile, or a kernel thread
            continue
        if any(a == mark or mark + "/" in a for a in args) or cwd == mark or cwd.startswith(mark + "/"):
            found.append(int(entry.name))
    return found


def stop_strays(root: Path, timeout: float = 10) -> list[int]:
    """SIGTERM to every process :func:`under` ``root``, SIGKILL to those still there after ``timeout``: what a
    teardown left behind (a server whose start was cut off, a drill's scratch copy of a killed opsd)."""
    strays = under(root)
    left = strays
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while (left := [p for p in left if alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not left:
            break
    return strays


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat.rsplit(") ", 1)[-1].startswith("Z")


def nofile(connections: int) -> list[str]:
    """An argv prefix that lets the command hold ``connections`` sockets and some files: 1000 clients need more
    than the usual soft limit of 1024 descriptors (util-linux's prlimit; the sandbox runs as root)."""
    want = max(connections + 256, 1024)
    return ["prlimit", f"--nofile={want}:{want}", "--"]


def as_pg_with_files(argv: Sequence[str], connections: int) -> list[str]:
    """:func:`as_pg` with room for ``connections`` sockets. runuser opens a PAM session whose pam_limits puts the
    soft limit back to 1024 (the hard one stays): the limit is raised before the switch (hard) and again after it
    (soft), else a PgBouncer with 1000 clients runs out of descriptors and stops accepting logins for a while."""
    return [*nofile(connections), *as_pg([*nofile(connections), *argv])]


FD_LINE = re.compile(r"kernel file descriptor limit: (\d+) .*max expected fd use: (\d+)")


def pgbouncer_fd_short(log: str) -> str | None:
    """What PgBouncer said at its last start when its descriptor limit is below what its max_client_conn may use
    (it then refuses logins under load, the admin console's first), else None."""
    found = list(FD_LINE.finditer(log))
    m = found[-1] if found else None
    return m.group(0) if m and int(m.group(1)) < int(m.group(2)) else None
