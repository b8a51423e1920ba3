"""The one seam through which opsd starts processes (plumbum underneath).

Every command has a timeout, runs as the configured OS user (wrapped in ``runuser`` when opsd is
root), streams its output into structured log events, can be cancelled (SIGTERM to its process
group, then SIGKILL), and logs one ``command.finished`` event with argv (redacted), rc and duration.
The lines of its stderr that quote PostgreSQL's data (DETAIL, CONTEXT, ``Failing row contains``...) are dropped
as they are read: neither the log nor ``Completed``/``CommandError`` ever holds them.
Non-zero exits are returned, not raised: callers (e.g. the pgBackRest adapter) map them to typed errors.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import pwd
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

from opsd.adapters.systemd import SERVICE_ONLY, child_environ
from opsd.core.pgtext import Scrubber
from opsd.errors import CommandCancelled, CommandError, CommandTimeout
from opsd.log import get_logger, redact_text

KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Runner(Protocol):
    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        as_user: bool = True,
        on_line: Callable[[str, str], None] | None = None,
        log_output: bool = True,
        stdin: str | None = None,
        keep_stdout: bool = True,
    ) -> Completed: ...

    def cancel_all(self) -> None: ...

    def stop_running(self, last_arg: str) -> int: ...


def user_prefix(run_as: str | None, euid: int | None = None) -> list[str]:
    """``runuser -u USER --`` when we are root and must act as another user, else nothing."""
    euid = os.geteuid() if euid is None else euid
    if not run_as or euid != 0 or run_as == "root":
        return []
    return ["runuser", "-u", run_as, "--"]


def redact_argv(argv: Sequence[str]) -> list[str]:
    return [redact_text(a) for a in argv]


@dataclass
class ProcessRunner:
    """Runs real processes. ``run_as``: the OS user for commands when opsd runs as root."""

    run_as: str | None = None
    _procs: set[subprocess.Popen[bytes]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cancelled: threading.Event = field(default_factory=threading.Event)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        as_user: bool = True,
        on_line: Callable[[str, str], None] | None = None,
        log_output: bool = True,
        stdin: str | None = None,
        keep_stdout: bool = True,
    ) -> Completed:
        """``keep_stdout=False``: stdout goes only to ``on_line`` (a stream too large to hold, such as pg_waldump's
        over gigabytes of WAL); ``Completed.stdout`` is then empty."""
        full = [*(user_prefix(self.run_as) if as_user else []), *argv]
        shown = redact_argv(argv)
        log = get_logger(cmd=shown[0] if shown else "?")
        log.debug("command.started", argv=shown, timeout=timeout)
        if self._cancelled.is_set():
            raise CommandCancelled("cancelled before start (opsd is shutting down)", argv=shown)
        started = time.monotonic()
        proc = self._spawn(full, shown, env, stdin)
        out, err = list[str](), list[str]()
        scrubber = Scrubber()  # stderr only: stdout is the command's data (pg_waldump, JSON), parsed, never an error

        def emit(name: str, raw: str) -> None:
            text = raw if name == "stdout" else scrubber.feed(raw)
            if text is None:
                return
            if name != "stdout" or keep_stdout:
                (out if name == "stdout" else err).append(text + "\n")
            if log_output and text:
                log.info("command.output", stream=name, line=text)
            if on_line is not None:
                on_line(name, text)

        timed_out = self._supervise(proc, emit, started + timeout)
        duration = time.monotonic() - started
        rc = proc.returncode
        result = Completed(tuple(shown), rc, "".join(out), "".join(err), duration)
        log.info("command.finished", argv=shown, rc=rc, duration=round(duration, 3),
                 outcome="timeout" if timed_out else ("ok" if rc == 0 else "failed"))
        if timed_out:
            raise CommandTimeout(
                f"{shown[0]} timed out after {timeout:.0f}s and was killed", argv=shown, returncode=rc,
                stderr=result.stderr,
            )
        if self._cancelled.is_set() and rc != 0:
            raise CommandCancelled(f"{shown[0]} was cancelled (opsd is shutting down)", argv=shown, returncode=rc)
        return result

    def _supervise(self, proc: subprocess.Popen[bytes], emit: Callable[[str, str], None], deadline: float) -> bool:
        """Pump the output until the process exits (True: the deadline passed first, and it was killed)."""
        try:
            timed_out = _pump(proc, emit, deadline)
            if timed_out:
                self._kill(proc)
            return timed_out
        except BaseException:  # interrupted (a signal turned into SystemExit): never leave the child behind
            self._kill(proc)
            raise
        finally:
            with self._lock:
                self._procs.discard(proc)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()

    def _spawn(self, full: list[str], shown: list[str], env: Mapping[str, str] | None,
               stdin: str | None = None) -> subprocess.Popen[bytes]:
        """Start the command in a session of its own (so a timeout can kill its whole group) and track it;
        ``stdin`` is written to it from a thread (a child that never reads cannot block us)."""
        try:
            from plumbum import local  # imported at the first command: 'opsd status' runs none

            for name in SERVICE_ONLY:  # plumbum adds its own copy of the environment to the one given
                local.env.pop(name, "")
            proc = cast("subprocess.Popen[bytes]", local[full[0]][full[1:]].popen(
                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env={**child_environ(os.environ), **(env or {})}, start_new_session=True,
            ))
        except Exception as e:  # plumbum CommandNotFound, OSError
            raise CommandError(f"cannot start {shown[0]}: {e}", argv=shown) from None
        with self._lock:
            self._procs.add(proc)
        if stdin is not None:
            threading.Thread(target=_feed, args=(proc, stdin.encode()), daemon=True, name="stdin").start()
        return proc

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM (with SIGCONT, so a stopped process can act on it) to the whole process group, a grace period,
        then SIGKILL to whatever is left of the group: nothing the command started survives it."""
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            os.killpg(proc.pid, signal.SIGCONT)
        except ProcessLookupError:
            return
        except PermissionError:  # runuser child under another uid: signal our direct child
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=KILL_GRACE)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            if proc.poll() is None:
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=KILL_GRACE)

    def cancel_all(self) -> None:
        """Kill every running command (used on daemon shutdown); later runs are refused."""
        self._cancelled.set()
        with self._lock:
            procs = list(self._procs)
        for p in procs:
            self._kill(p)


    def stop_running(self, last_arg: str) -> int:
        """Stop the running commands whose last argument is ``last_arg`` (``backup``: pgBackRest's backup), and
        only them; later runs are not refused. How many."""
        with self._lock:
            procs = [p for p in self._procs if isinstance(p.args, list | tuple) and p.args and
                     str(p.args[-1]) == last_arg]
        for p in procs:
            self._kill(p)
        return len(procs)


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(OSError):  # the child exited or closed its stdin without reading it all
        proc.stdin.write(data)
    with contextlib.suppress(OSError):
        proc.stdin.close()


def _pump(proc: subprocess.Popen[bytes], emit: Callable[[str, str], None], deadline: float) -> bool:
    """Read both pipes line by line in this thread until the process exits; True if the deadline passed.

    Once the process has exited we drain what is already in the pipes and stop: a daemonised grandchild
    (a postmaster started by pg_ctl) may keep the pipes open forever, so EOF is not awaited.
    """
    sel = selectors.DefaultSelector()
    bufs: dict[int, tuple[str, codecs.IncrementalDecoder, list[str]]] = {}
    for name, stream in (("stdout", proc.stdout), ("stderr", proc.stderr)):
        assert stream is not None
        fd = stream.fileno()
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
        bufs[fd] = (name, codecs.getincrementaldecoder("utf-8")(errors="replace"), [""])

    def feed(fd: int, data: bytes, final: bool = False) -> None:
        name, dec, pending = bufs[fd]
        pending[0] += dec.decode(data, final=final)
        *lines, pending[0] = pending[0].split("\n")
        for line in lines:
            emit(name, line.rstrip("\r"))
        if final and pending[0]:
            emit(name, pending[0])
            pending[0] = ""

    exited_at: float | None = None
    with sel:
        while sel.get_map():
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > 0.2:
                break  # exited; what is left in the pipes was drained below
            if exited_at is None and now > deadline:
                return True
            for key, _ in sel.select(timeout=0.05 if exited_at else 0.2):
                fd = int(key.fd)
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if data:
                    feed(fd, data)
                else:
                    sel.unregister(fd)
    for fd in bufs:
        feed(fd, b"", final=True)
    if proc.poll() is None:
        proc.wait()
    return False


def current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name
