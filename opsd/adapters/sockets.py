"""Sockets: is a PostgreSQL port taken (a socket file in the directory, or anything answering on TCP)."""

from __future__ import annotations

import socket
from pathlib import Path


def port_in_use(port: int, socket_dir: Path | None) -> bool:
    if socket_dir is not None and (socket_dir / f".s.PGSQL.{port}").exists():
        return True
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
