"""Where the nodes of the cluster are, for the query-statistics snapshots: the Patroni members with the address
their PostgreSQL listens on (``GET /cluster``: host, port), and this host's name when there is no Patroni."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from opsd.adapters.patroni import Deadline, _get, _members, where
from opsd.errors import OpsdError


@dataclass(frozen=True)
class MemberAddress:
    name: str
    role: str  # leader, replica, sync_standby, standby_leader...
    state: str  # running, streaming, stopped...
    host: str
    port: int


def members(url: str, timeout: float, ca_file: Path | None = None) -> list[MemberAddress]:
    """The cluster's members as Patroni's DCS knows them; raises OpsdError when Patroni does not answer."""
    status, data = _get(url, "/cluster", Deadline(timeout), ca_file)
    if status != 200 or not isinstance(data, dict):
        raise OpsdError(f"Patroni at {where(url)} answered /cluster with HTTP {status}")
    out = []
    for m in _members(data):
        port = m.get("port")
        out.append(MemberAddress(str(m.get("name", "?")), str(m.get("role", "?")), str(m.get("state", "?")),
                                 str(m.get("host") or ""), port if isinstance(port, int) else 5432))
    return out


def host_name() -> str:
    return socket.gethostname()
