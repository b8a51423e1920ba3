"""A local webhook receiver that REQUIRES authentication (401 without the expected header), like the alert
gateways that document ``https://user:token@host/hook`` or a bearer token. It can be started on a port chosen
before (down first, up later) and records every body it accepted and every Authorization header it saw."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    seen: list[tuple[str, str]] = field(default_factory=list)  # (path, Authorization header) of every request


@contextmanager
def receiver(port: int, header: str, value: str) -> Iterator[Received]:
    """Accept a POST only when ``header`` equals ``value`` (204), else 401."""
    got = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.seen.append((self.path, self.headers.get("Authorization", "")))
            if self.headers.get(header) == value:
                got.accepted.append(json.loads(body))
                self.send_response(204)
            else:
                got.refused += 1
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="alerts"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield got
    finally:
        srv.shutdown()
        srv.server_close()
