"""sd_notify over $NOTIFY_SOCKET (no dependency): READY=1, STATUS=..., STOPPING=1, WATCHDOG=1."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

# What systemd hands the service itself, never its children: a scratch PostgreSQL (built with systemd support)
# would send its own READY=1/STOPPING=1 to opsd's notify socket ("Got notification message from PID ..., but
# reception only permitted for main PID"), and would claim opsd's watchdog or sockets.
SERVICE_ONLY = ("NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def child_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without what belongs to the service alone."""
    return {k: v for k, v in environ.items() if k not in SERVICE_ONLY}


def notify(message: str) -> bool:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(message.encode())
        return True
    except OSError:
        return False
