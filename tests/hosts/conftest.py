"""The real-host tier: a fresh Debian 12 root (debootstrap, cached under /var/cache/opsd-sandbox) booted by its own
systemd (systemd-nspawn), test hosts in network namespaces of their own, and a real Docker engine.

Each fixture that cannot work on this machine skips with one line saying why; on the CI machine all of them run.
The root is built once per package list and reused by every boot (each boot is fresh: a volatile overlay)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsd_sandbox import hosts, net

LAN_LOCK = Path("/run/opsd-test-lans.lock")


@pytest.fixture(scope="session")
def host_root() -> Path:
    """The cached Debian 12 root with PostgreSQL 15, pgBackRest, PgBouncer, ansible-core (built if missing)."""
    if why := hosts.missing():
        pytest.skip(f"real hosts: {why}")
    try:
        return hosts.root_image()
    except RuntimeError as e:  # debootstrap could not reach Debian's package registry
        pytest.skip(f"real hosts: no Debian 12 root: {str(e).splitlines()[-1][:200]}")


def new_lan() -> net.Lan:
    """A LAN whose number no live LAN of this machine has (another test run may be making its own meanwhile: the
    choice and the creation happen under one lock)."""
    if why := net.missing():
        pytest.skip(f"test network: {why}")
    with LAN_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        taken = {p.name for p in Path("/sys/class/net").iterdir()}
        number = next(n for n in range(201, 255) if f"opsd-br{n}" not in taken)
        return net.Lan.create(number)


@pytest.fixture
def lan() -> Iterator[net.Lan]:
    """A LAN of its own for one test (198.18.<n>.0/24; this machine is .1)."""
    lan = new_lan()
    try:
        yield lan
    finally:
        lan.close()
