"""opsd's container image for the tests: a Docker engine, a base imported from the cached Debian 12 root, a build.

No image can be pulled here, so the base is this suite's own debootstrapped root (:func:`opsd_sandbox.hosts.root_image`)
imported once per root key (``opsd-base:<key>``, reused while present; bases of older roots are removed). The
build is the repository's Dockerfile with ``--build-arg BASE=`` that base, on the host's network (its
``apt-get update`` and pip reach the package registries), with Docker's layer cache: only the layers after
``COPY opsd`` are rebuilt when just the source changed. The result is one tag, :data:`IMAGE`, replaced by each
build (the replaced one is pruned).

An engine that already runs is used as it is. Else :meth:`Engine.running` starts Debian's ``dockerd`` (there is no
systemd to start it) without a bridge, iptables rules or IP forwarding (the tests only use ``--network host``),
waits for its socket and stops it at the end.

    with Engine.running(log) as engine:                 # started here only if none answers
        base = import_base(root_image(), root_key())  # 'opsd-base:bookworm-...', ~15 s the first time
        build(REPO, base)                             # 'opsd:test'
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from opsd_sandbox.procs import uninterrupted

SOCKET = Path("/var/run/docker.sock")
BASE_REPO = "opsd-base"
IMAGE = "opsd:test"
LABEL = "opsd.sandbox=test"  # on every image built here: what prune may remove, and nothing else
# The build machine's CA bundle, handed to the build as a secret for pip (a TLS-inspecting proxy's CA is in it)
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Debian's CLI first: it drives BuildKit (RUN --mount) without the buildx plugin
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
ENGINE_FLAGS = ("--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false")


def missing() -> str:
    """Why no Docker engine can be used here ('' when one can): one line for a skip."""
    if os.geteuid() != 0:
        return "the image tests need root (they start dockerd and bind-mount the sandbox)"
    if shutil.which("dockerd") is None or shutil.which(DOCKER) is None:
        return "no Docker engine (apt-get install docker.io)"
    return ""


def docker(*args: str, timeout: float = 120, stdin: int | None = None,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    """``docker ARGS`` to its end; on failure the error names the command and the last lines it printed."""
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    with uninterrupted():
        res = subprocess.run([DOCKER, *args], stdin=stdin, capture_output=True, text=True, env=env,
                             timeout=timeout, check=False)
    if check and res.returncode != 0:
        tail = " | ".join((res.stderr.strip() or res.stdout.strip()).splitlines()[-8:])
        raise RuntimeError(f"docker {' '.join(args[:2])} failed (rc {res.returncode}): {tail}")
    return res


def answers() -> bool:
    """Does an engine answer on the client's socket (DOCKER_HOST, else the default)?"""
    try:
        return docker("version", "--format", "{{.Server.Version}}", timeout=15, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@dataclass
class Engine:
    """A Docker engine the tests can use; ``proc`` is the dockerd started here (None: one that already ran)."""

    proc: subprocess.Popen[bytes] | None
    log: Path

    @classmethod
    @contextlib.contextmanager
    def running(cls, log: Path, timeout: float = 60) -> Iterator[Engine]:
        if answers():
            yield cls(None, log)
            return
        if os.environ.get("DOCKER_HOST", f"unix://{SOCKET}") != f"unix://{SOCKET}":
            raise RuntimeError(f"DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer (and is not ours to start)")
        engine = cls(_start_dockerd(log), log)
        try:
            engine.wait(timeout)
            yield engine
        finally:
            engine.stop()

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not answers():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited {self.proc.returncode} at start: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not answer within {timeout:.0f}s: {self.log_tail()}")
            time.sleep(0.3)

    @uninterrupted()
    def stop(self, timeout: float = 30) -> None:
        """Stop the dockerd started here (it stops its containers and its containerd); else nothing."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def log_tail(self, lines: int = 5) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return " | ".join(text.strip().splitlines()[-lines:])


def _start_dockerd(log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with uninterrupted():  # its own session: a Ctrl-C of the tests reaches it only through Engine.stop
        return subprocess.Popen(["dockerd", f"--host=unix://{SOCKET}", *ENGINE_FLAGS], stdin=subprocess.DEVNULL,
                                stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def image_exists(ref: str) -> bool:
    return docker("image", "inspect", "--format", "{{.Id}}", ref, check=False).returncode == 0


def import_base(root: Path, key: str) -> str:
    """``opsd-base:<key>``: ``root`` (a Debian 12 root) imported as an image, once per key; older bases removed."""
    tag = f"{BASE_REPO}:{key}"
    if not image_exists(tag):
        _import(root, tag)
    for old in docker("images", BASE_REPO, "--format", "{{.Repository}}:{{.Tag}}").stdout.split():
        if old != tag:
            docker("rmi", old, check=False)
    return tag


def _import(root: Path, tag: str) -> None:
    """``tar -C root -c . | docker import - tag``, without the contents of the kernel's and runtime's folders."""
    skip = [f"--exclude=./{d}/*" for d in ("dev", "proc", "sys", "run", "tmp")]
    argv = ["tar", "-C", str(root), "--numeric-owner", *skip, "-c", "."]
    with uninterrupted():
        tar = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert tar.stdout is not None
        docker("import", "-", tag, stdin=tar.stdout.fileno(), timeout=600)
    finally:
        if tar.stdout is not None:
            tar.stdout.close()
        rc = tar.wait(timeout=60)
    if rc != 0:
        docker("rmi", tag, check=False)
        raise RuntimeError(f"tar of {root} failed (rc {rc})")


def build_args(base: str, user: str = "postgres") -> list[str]:
    """``docker build`` options: the base, the host's ``user`` ids for the image's postgres, the host's CA."""
    pw = pwd.getpwnam(user)
    argv = ["--network", "host", "--label", LABEL, "--build-arg", f"BASE={base}",
            "--build-arg", f"PG_UID={pw.pw_uid}", "--build-arg", f"PG_GID={pw.pw_gid}"]
    if CA_BUNDLE.exists():
        argv += ["--secret", f"id=pip-ca,src={CA_BUNDLE}"]
    return argv


def build(context: Path, base: str, tag: str = IMAGE, extra: Sequence[str] = ()) -> str:
    """Build ``context``'s Dockerfile on ``base`` as ``tag``; the image id. The image it replaces is pruned."""
    docker("build", "--progress=plain", *build_args(base), *extra, "-t", tag, str(context), timeout=1200)
    docker("image", "prune", "--force", "--filter", f"label={LABEL}", check=False)
    return docker("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
