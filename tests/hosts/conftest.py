"""The real-host tier: a fresh Debian 12 root (debootstrap, cached under /var/cache/opsd-sandbox) booted by its own
systemd (systemd-nspawn), test hosts in network namespaces of their own, and a real Docker engine.

Each fixture that cannot work on this machine skips with one line saying why; on the CI machine all of them run.
The root is built once per package list and reused by every boot (each boot is fresh: a volatile overlay)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsd_sandbox import hosts, net

_LAN_NUMBERS = itertools.count(201)  # 198.18.201.0/24 and up: one LAN per fixture use, never reused in a run


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
    if why := net.missing():
        pytest.skip(f"test network: {why}")
    return net.Lan.create(next(_LAN_NUMBERS))


@pytest.fixture
def lan() -> Iterator[net.Lan]:
    """A LAN of its own for one test (198.18.<n>.0/24; this machine is .1)."""
    lan = new_lan()
    try:
        yield lan
    finally:
        lan.close()
