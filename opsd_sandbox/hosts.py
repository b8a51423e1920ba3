"""Real hosts for the test suite: a fresh Debian 12 root made by debootstrap, booted by a real systemd.

The root is made once and cached under :data:`CACHE` (``/var/cache/opsd-sandbox/roots/<key>``), rebuilt when the
package list (or this recipe) changes; a boot never writes to it: ``--volatile=overlay`` keeps every change of a
booted host in memory, gone at shutdown, so each boot is a fresh machine. ``systemd-nspawn --register=no
--keep-unit -b`` boots it (plain ``-b`` needs a system bus this machine lacks); commands run inside through
``nsenter`` into its init's namespaces, as root, with a clean environment.

    root = root_image()                                  # cached, ~1 min the first time
    with Host.boot("db1", root, node=lan.add("db1")) as h:
        h.run("pg_lsclusters")                            # CompletedProcess; check=True raises on rc != 0
        h.journal("opsd")                                 # journalctl -u opsd, short format
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from opsd_sandbox.net import Node
from opsd_sandbox.procs import run, stop_process, uninterrupted

CACHE = Path(os.environ.get("OPSD_HOST_CACHE", "/var/cache/opsd-sandbox"))
SUITE, MIRROR = "bookworm", "http://deb.debian.org/debian"
KEEP_DAYS = 14
RECIPE = "2"  # bump when root_image's steps change: the cached root is rebuilt
# What a PostgreSQL host of our users has before opsd: Debian's PostgreSQL 15 (its package makes cluster 15/main,
# run by systemd as postgresql@15-main), pgBackRest, PgBouncer, and the operator's tools (ansible-core for the
# playbook with a local connection; Debian's, as an operator's fleet would have). python3-venv, python3-setuptools
# (Ansible's pip module imports pkg_resources) and python3-apt (its apt module) are what the playbook installs
# itself: they are here because a test host reaches no package mirror, so the playbook finds them present.
HOST_PACKAGES = ("systemd", "systemd-sysv", "dbus", "libpam-systemd", "postgresql-15", "pgbackrest", "pgbouncer",
                 "python3-venv", "python3-setuptools", "python3-apt", "ansible-core", "sudo", "ca-certificates",
                 "iproute2", "procps", "less")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def missing() -> str:
    """Why a host cannot be booted here ('' when it can): one line for a skip."""
    if os.geteuid() != 0:
        return "real hosts need root (debootstrap, systemd-nspawn)"
    tools = (("systemd-nspawn", "systemd-container"), ("debootstrap", "debootstrap"), ("nsenter", "util-linux"))
    for tool, pkg in tools:
        if shutil.which(tool) is None:
            return f"no {tool} (apt-get install {pkg})"
    return ""


def root_key(packages: Sequence[str] = HOST_PACKAGES) -> str:
    text = "\n".join([RECIPE, SUITE, MIRROR, *sorted(packages)])
    return f"{SUITE}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def root_image(packages: Sequence[str] = HOST_PACKAGES) -> Path:
    """The cached Debian 12 root with ``packages`` (made now if missing; roots of this cache unused for
    :data:`KEEP_DAYS` are removed)."""
    roots = CACHE / "roots"
    roots.mkdir(parents=True, exist_ok=True)
    target = roots / root_key(packages)
    with (roots / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once: one builds, the other waits and reuses
        if (target / ".opsd-root").exists():
            return target
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        _make_root(tmp, packages)
        for old in roots.iterdir():  # another package list's root, not booted for a while
            if old.is_dir() and old.name != tmp.name and time.time() - old.stat().st_atime > KEEP_DAYS * 86400:
                shutil.rmtree(old, ignore_errors=True)
        tmp.rename(target)
    os.utime(target)  # "used now", for the clean-up above
    return target


def _make_root(root: Path, packages: Sequence[str]) -> None:
    """debootstrap a minimal base that boots, then apt installs the rest inside it (debootstrap's own resolver
    cannot pick a provider of a virtual package: python3-cryptography's cffi ABI). Package scripts may not start
    services meanwhile (policy-rc.d); what makes it a fresh machine at each boot: no hostname, an empty machine id
    (nspawn -M and systemd set them), no apt cache."""
    base = ["systemd", "systemd-sysv", "dbus", "ca-certificates"]
    _run_tail(["debootstrap", "--variant=minbase", f"--include={','.join(base)}", SUITE, str(root), MIRROR])
    policy = root / "usr" / "sbin" / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    rest = [p for p in packages if p not in base]
    _run_tail(["systemd-nspawn", "-q", "-D", str(root), "--register=no", "--keep-unit", "--pipe",
               "env", "DEBIAN_FRONTEND=noninteractive", "sh", "-c",
               "apt-get update -q && apt-get install -y -q --no-install-recommends " + " ".join(rest)
               + " && apt-get clean && rm -rf /var/lib/apt/lists/*"])
    policy.unlink()
    (root / "etc" / "hostname").unlink(missing_ok=True)
    (root / "etc" / "machine-id").write_text("")
    (root / ".opsd-root").write_text(root_key(packages) + "\n")


def _run_tail(argv: list[str]) -> None:
    """Run a long build step; on failure the error names the step and its last lines only."""
    res = run(argv, check=False, timeout=1200)
    if res.returncode != 0:
        tail = " | ".join((res.stderr.strip() or res.stdout.strip()).splitlines()[-5:])
        raise RuntimeError(f"{argv[0]} failed (rc {res.returncode}): {tail}")


@dataclass
class Host:
    """A booted root: its systemd is PID 1 of its own namespaces."""

    name: str
    proc: subprocess.Popen[bytes]
    init_pid: int
    node: Node | None = None
    console: Path = field(default_factory=lambda: Path("/dev/null"))

    @classmethod
    @contextlib.contextmanager
    def boot(cls, name: str, root: Path, *, node: Node | None = None, binds: Sequence[tuple[Path, str]] = (),
             hosts: dict[str, str] | None = None, console: Path | None = None,
             machine_network: bool = False, rw_binds: Sequence[tuple[Path, str]] = ()) -> Iterator[Host]:
        """Boot ``root`` as ``name`` (on ``node``'s network; with ``machine_network`` on this machine's own, which
        reaches the package registries; else none but its loopback), with ``binds`` (host path, path inside;
        read-only) and ``rw_binds`` (writable: caches shared between boots), and extra /etc/hosts names; shut down
        and gone on exit."""
        argv = ["systemd-nspawn", "-D", str(root), "--register=no", "--keep-unit", "-b", "--volatile=overlay",
                "-M", name, "--console=passive", "--timezone=off",
                f"--resolv-conf={'copy-host' if machine_network else 'off'}"]
        if node:
            argv.append(f"--network-namespace-path={node.netns_path}")
        elif not machine_network:
            argv.append("--private-network")
        argv += [f"--bind-ro={src}:{dst}" for src, dst in binds] + [f"--bind={src}:{dst}" for src, dst in rw_binds]
        _power_off_leftover(name)
        log = console or Path("/dev/null")
        with uninterrupted():
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                                    start_new_session=True)
        host: Host | None = None
        try:
            host = cls(name, proc, _init_pid(proc), node, log)
            host.wait_booted()
            if hosts:
                host.run("cat >> /etc/hosts", input="".join(f"{ip} {n}\n" for n, ip in hosts.items()))
            yield host
        finally:
            (host or cls(name, proc, 0)).shutdown()

    def run(self, script: str, *, check: bool = True, timeout: float = 300, input: str | None = None,
            user: str = "root") -> subprocess.CompletedProcess[str]:
        """``bash -c script`` inside, as ``user`` (root: a login-less shell; else runuser), clean environment."""
        inner = ["bash", "-c", script] if user == "root" else ["runuser", "-u", user, "--", "bash", "-c", script]
        argv = ["nsenter", "-t", str(self.init_pid), "-a", "-r", "-w",
                "env", "-i", f"PATH={PATH}", "HOME=/root", "LANG=C.UTF-8", "TERM=dumb", *inner]
        res = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        if check and res.returncode != 0:
            raise RuntimeError(f"[{self.name}] {script!r} failed (rc {res.returncode}): "
                               f"{(res.stderr.strip() or res.stdout.strip())[-2000:]}")
        return res

    def journal(self, unit: str | None = None, *, since: str = "", output: str = "short") -> str:
        argv = "journalctl --no-pager -o " + output + (f" -u {unit}" if unit else "") + (f" --since '{since}'"
                                                                                            if since else "")
        return self.run(argv, check=False).stdout

    def unit(self, name: str, *props: str) -> dict[str, str]:
        """``systemctl show`` properties of a unit."""
        out = self.run(f"systemctl show {name} -p {','.join(props)}").stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_booted(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"[{self.name}] systemd-nspawn exited {self.proc.returncode} during boot "
                                   f"(console: {self.console})")
            res = self.run("systemctl is-system-running --wait", check=False, timeout=timeout)
            state = res.stdout.strip()
            if state in ("running", "degraded"):
                return state
            if time.monotonic() > deadline:
                raise RuntimeError(f"[{self.name}] not booted after {timeout:.0f}s: {state or res.stderr.strip()}")
            time.sleep(0.5)

    @uninterrupted()
    def shutdown(self, timeout: float = 60) -> None:
        """Power off (systemd stops every unit, as on a real host), or kill it after ``timeout``."""
        if self.proc.poll() is None:
            self.proc.terminate()  # nspawn asks the container's systemd to power off
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                stop_process(self.proc)


def _power_off_leftover(name: str, timeout: float = 60) -> None:
    """A host of this name left booted by a run that was killed: powered off before a new one boots."""
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"systemd-nspawn") and b"-M" in argv and argv[argv.index(b"-M") + 1:][:1] == [
                name.encode()]:
            pid = int(proc.name)
            os.kill(pid, 15)
            deadline = time.monotonic() + timeout
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, 9)


def _init_pid(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """The booted root's PID 1, as seen from here: systemd-nspawn's child."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"systemd-nspawn exited {proc.returncode} before the container started")
        kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        pids = kids.read_text().split() if kids.exists() else []
        for pid in pids:
            try:  # a child of nspawn's may exit between the listing and this look (seen in CI: FileNotFoundError)
                exe = Path(f"/proc/{pid}/exe").resolve()
            except OSError:
                continue
            if exe.name == "systemd":
                return int(pid)
        time.sleep(0.1)
    raise RuntimeError("the container's systemd did not start")


def wheelhouse(checkout: Path, into: Path) -> Path:
    """A directory of wheels that installs opsd from ``checkout`` with no package index: opsd's own wheel, built
    now, beside its dependencies' (cached under :data:`CACHE` by the dependency list of pyproject.toml)."""
    deps_key = hashlib.sha256((checkout / "pyproject.toml").read_bytes()).hexdigest()[:12]
    deps = CACHE / "wheels" / deps_key
    py = [str(checkout / ".venv" / "bin" / "python"), "-m", "pip", "-q", "--disable-pip-version-check"]
    with (CACHE / ".wheels.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (deps / ".complete").exists():
            shutil.rmtree(deps, ignore_errors=True)
            _run_tail([*py, "wheel", "--wheel-dir", str(deps), str(checkout)])
            for own in deps.glob("opsd-*.whl"):
                own.unlink()
            (deps / ".complete").write_text(deps_key + "\n")
    into.mkdir(parents=True, exist_ok=True)
    _run_tail([*py, "wheel", "--no-deps", "--wheel-dir", str(into), str(checkout)])
    for whl in deps.glob("*.whl"):
        target = into / whl.name
        if not target.exists():
            os.link(whl, target)
    return into
