"""The README's two commands on a newcomer's machine: a fresh Debian 12 booted by its own systemd, a clean clone of
this checkout's HEAD, then ``scripts/demo`` and ``scripts/test`` (a short subset of the suite) as root, exactly as the
README's first screen says. An install step that bootstrap misses (a tool, a package, a Python version, a path) fails
here instead of on the newcomer's machine.

The machine is what every Debian 12 installer leaves: the packages of priority required and important (debootstrap's
default set: apt, systemd, iproute2, procps, less, nano, cron, ...), plus git, which cloned the repository. Nothing
that scripts/bootstrap installs is there before it runs (no python3, no PostgreSQL). Three things come from this
machine, none of them an install step: the host trusts this machine's local CAs (its network may inspect TLS, as a
company proxy does; a newcomer behind one installs its CA as the README says), /tmp is on disk as on an installed
Debian 12 (not systemd-nspawn's small tmpfs, which trips the drill's free-space floor), and caches shared between
runs (Debian's .deb archive and index, pip's cache, mypy's cache) keep a warm run short. Each boot is otherwise a new
machine: the volatile overlay forgets everything at power-off.
"""

from __future__ import annotations

import fcntl
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsd_sandbox import hosts

pytestmark = [pytest.mark.hosts, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
# Priority required comes with debootstrap's minbase; these are bookworm's priority important packages (what every
# Debian installer adds), then what a clone needs: git (ca-certificates is in every root hosts.py makes).
IMPORTANT = ("adduser", "apt-utils", "cpio", "cron", "cron-daemon-common", "debconf-i18n", "debian-archive-keyring",
             "dmidecode", "fdisk", "gpgv", "ifupdown", "init", "iproute2", "iputils-ping", "isc-dhcp-client",
             "isc-dhcp-common", "kmod", "less", "logrotate", "nano", "netbase", "nftables", "procps",
             "readline-common", "sensible-utils", "systemd", "systemd-sysv", "tasksel-data", "udev", "vim-common",
             "vim-tiny", "whiptail")
NEWCOMER_PACKAGES = ("dbus", "ca-certificates", *IMPORTANT, "git")
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
# A few unit tests and one integration test on the real stack (PostgreSQL 15, TLS S3 endpoint, pgBackRest).
SUBSET = ("tests/unit/test_pgbackrest.py", "tests/unit/test_settings.py",
          "tests/integration/test_setup.py::test_setup_configures_archiving_and_is_idempotent")
# What the demo shows, in order: its sections, and the opsd commands a DBA runs (each must exit as the demo expects,
# or the demo stops with a non-zero status).
DEMO_STEPS = ("== bringing up the sandbox", "config check", "setup --restart", "backup --type full",
              "backup --type diff", "wal find --table public.orders", "restore --table public.orders", "rehearse",
              "drill heartbeat", "drill run --target latest", "verify", "check", "status", "info", "== demo finished")


def _unreachable() -> str:
    """Why the registries a newcomer's bootstrap uses cannot be reached from here ('' when they can)."""
    for name, port in (("deb.debian.org", 80), ("pypi.org", 443), ("files.pythonhosted.org", 443)):
        try:
            socket.create_connection((name, port), timeout=15).close()
        except OSError as e:
            return f"{name}:{port}: {e}"
    return ""


@pytest.fixture
def newcomer(tmp_path: Path) -> Iterator[tuple[hosts.Host, Path]]:
    """The booted fresh machine with a clean clone of HEAD in /root/opsd, and its /tmp as seen from here."""
    if why := hosts.missing():
        pytest.skip(f"newcomer host: {why}")
    if why := _unreachable():
        pytest.skip(f"newcomer host: no package registry: {why[:200]}")
    try:
        root = hosts.root_image(NEWCOMER_PACKAGES)
    except RuntimeError as e:
        pytest.skip(f"newcomer host: no Debian 12 root: {str(e).splitlines()[-1][:200]}")
    caches = hosts.CACHE / "newcomer"
    shared = {"apt-archives": "/var/cache/apt/archives", "apt-lists": "/var/lib/apt/lists",
              "pip": "/root/.cache/pip", "mypy": "/var/cache/opsd-mypy"}
    for sub in shared:
        (caches / sub).mkdir(parents=True, exist_ok=True)
    host_tmp = tmp_path / "tmp"
    host_tmp.mkdir(mode=0o1777)
    host_tmp.chmod(0o1777)
    binds = [(REPO, "/srv/opsd-origin")] + ([(LOCAL_CAS, str(LOCAL_CAS))] if any(LOCAL_CAS.glob("*.crt")) else [])
    rw = [(caches / sub, inside) for sub, inside in shared.items()] + [(host_tmp, "/tmp")]
    with (caches / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one newcomer at a time: apt refuses a second user of its archive
        with hosts.Host.boot("opsd-newcomer", root, machine_network=True, binds=binds, rw_binds=rw,
                             console=tmp_path / "console.log") as h:
            if len(binds) > 1:  # as a newcomer behind such a proxy does first (README); bootstrap does the rest
                h.run("update-ca-certificates >/dev/null 2>&1")
            h.run("git clone -q /srv/opsd-origin /root/opsd")
            yield h, host_tmp


def _step(h: hosts.Host, host_tmp: Path, name: str, script: str, timeout: float) -> tuple[int, str, float]:
    """``script`` in /root/opsd, its output in the host's /tmp (readable from here even after a timeout)."""
    started = time.monotonic()
    res = h.run(f"cd /root/opsd && timeout -s TERM {timeout:.0f} {script} > /tmp/{name}.log 2>&1",
                check=False, timeout=timeout + 60)
    return res.returncode, (host_tmp / f"{name}.log").read_text(errors="replace"), time.monotonic() - started


def _tail(log: str) -> str:
    """The end of a step's output, from where bootstrap hands over (pip's warnings before it drown the failure)."""
    at = log.rfind("bootstrap: ready")
    return log[at if at >= 0 else 0:][-6000:]


def test_readme_commands_on_a_fresh_debian_12(newcomer: tuple[hosts.Host, Path]) -> None:
    h, host_tmp = newcomer
    head = h.run("git -C /root/opsd log --oneline -1").stdout.strip()
    assert h.run("command -v python3 || command -v psql", check=False).returncode != 0, "not a fresh machine"

    rc, demo, t_demo = _step(h, host_tmp, "demo", "scripts/demo", timeout=900)
    print(f"\nnewcomer ({head[:60]}): scripts/demo {t_demo:.0f}s", flush=True)
    assert rc == 0, f"scripts/demo exited {rc} on a fresh Debian 12:\n{_tail(demo)}"
    assert "bootstrap: ready" in demo
    lines = [line for line in demo.splitlines() if line.startswith(("$ opsd", "== "))]
    shown = iter(lines)  # in order: each step after the one before
    missing = [s for s in DEMO_STEPS if not any(line.startswith(s) or f".toml {s}" in line for line in shown)]
    assert not missing, f"the demo did not show {missing}:\n" + "\n".join(lines)

    rc, test, t_test = _step(h, host_tmp, "test", "env MYPY_CACHE_DIR=/var/cache/opsd-mypy scripts/test -q -x "
                             + " ".join(SUBSET), timeout=600)
    print(f"newcomer: scripts/test (a subset) {t_test:.0f}s", flush=True)
    assert rc == 0, f"scripts/test exited {rc} on a fresh Debian 12:\n{_tail(test)}"
    for proof in (r"All checks passed!", r"Success: no issues found", r"Contracts: \d+ kept, 0 broken\."):
        assert re.search(proof, test), f"scripts/test did not show {proof!r}:\n{_tail(test)}"
    summary = test.rstrip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
