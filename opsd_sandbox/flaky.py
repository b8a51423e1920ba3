"""A flaky S3 front for fault tests: TLS (nginx) -> a fault-injecting proxy -> moto.

The proxy answers a configurable share of requests with ``503 SlowDown`` (what AWS S3 sends when it throttles)
and delays every request by a fixed latency; the rest pass through to moto unchanged. The share and the latency
can change while pgBackRest is working (:meth:`FlakyS3.set`); the counters tell how many requests were seen and
refused. It runs in threads of the calling process, so a test reads its counters directly.
"""

from __future__ import annotations

import http.client
import random
import socket
import subprocess
import textwrap
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opsd_sandbox.procs import free_port, port_open, stop_process, wait_for

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
             b"<Message>Please reduce your request rate.</Message></Error>")


def ipv6_loopback() -> bool:
    """Whether ::1 can be listened on here."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def nginx_conf(d: Path, *, listen: int, upstream: int, tls: Path, also: Sequence[str] = ()) -> str:
    """nginx terminating TLS on 127.0.0.1:``listen`` (and on each address in ``also``, e.g. a test LAN's) in front
    of plain HTTP on 127.0.0.1:``upstream``; it keeps client connections alive (2 TLS sessions for a whole backup
    instead of ~1000) and never buffers bodies."""
    # [::1] too where the machine has it: clients reach us as "localhost", which a stock Debian 12 maps to ::1
    # first, and pgBackRest 2.45 tries only the first address ("[111] Connection refused" on localhost)
    addresses = (["[::1]"] if ipv6_loopback() else []) + list(also)
    more = "".join(f"\n            listen {a}:{listen} ssl;" for a in addresses)
    return textwrap.dedent(f"""\
        daemon off;
        worker_processes 1;
        pid {d}/nginx.pid;
        error_log {d}/logs/error.log warn;
        events {{ worker_connections 256; }}
        http {{
          access_log off;
          client_body_temp_path {d}/tmp/body; proxy_temp_path {d}/tmp/proxy;
          fastcgi_temp_path {d}/tmp/fcgi; uwsgi_temp_path {d}/tmp/uwsgi; scgi_temp_path {d}/tmp/scgi;
          upstream s3 {{ server 127.0.0.1:{upstream}; keepalive 16; }}
          server {{
            listen 127.0.0.1:{listen} ssl;{more}
            ssl_certificate     {tls}/server.crt;
            ssl_certificate_key {tls}/server.key;
            client_max_body_size 0;
            proxy_request_buffering off;
            proxy_buffering off;
            keepalive_requests 10000;
            location / {{
              proxy_pass http://s3; proxy_http_version 1.1;
              proxy_set_header Connection ""; proxy_set_header Host $http_host;
            }}
          }}
        }}
        """)


def start_nginx(d: Path, *, listen: int, upstream: int, tls: Path, also: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    for sub in ("logs", "tmp"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "nginx.conf").write_text(nginx_conf(d, listen=listen, upstream=upstream, tls=tls, also=also))
    proc = subprocess.Popen(["nginx", "-c", str(d / "nginx.conf"), "-p", str(d)],
                            stdout=(d / "logs" / "nginx.out").open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    wait_for(lambda: port_open(listen), timeout=15, what=f"nginx TLS on port {listen}")
    return proc


@dataclass
class Faults:
    share: float = 0.0  # of requests answered 503
    delay: float = 0.0  # seconds added to every request
    requests: int = 0
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self) -> tuple[bool, float]:
        with self.lock:
            self.requests += 1
            refuse = random.random() < self.share
            self.refused += refuse
            return refuse, self.delay


def _handler(faults: Faults, upstream: int) -> type[BaseHTTPRequestHandler]:
    local = threading.local()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = bytearray()
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    out += self.rfile.read(size)
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _forward(self, body: bytes) -> None:
            conn: http.client.HTTPConnection | None = getattr(local, "conn", None)
            for attempt in (1, 2):  # a kept-alive upstream connection may have been closed meanwhile
                if conn is None:
                    conn = local.conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    headers["Content-Length"] = str(len(body))
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    break
                except (http.client.HTTPException, OSError):
                    conn.close()
                    conn = local.conn = None
                    if attempt == 2:
                        raise
            out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}]
            length = resp.getheader("Content-Length") if self.command == "HEAD" else None
            out.append(("Content-Length", length or str(len(data))))
            self._send(resp.status, out, data)

        def _any(self) -> None:
            body = self._body()
            refuse, delay = faults.decide()
            if delay:
                time.sleep(delay)
            if refuse:
                self._send(503, [("Content-Type", "application/xml"), ("Content-Length", str(len(SLOW_DOWN)))],
                           SLOW_DOWN)
                return
            self._forward(body)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _any

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class FlakyS3:
    """Another TLS endpoint for the sandbox's moto, through the fault proxy; ``port`` goes into
    pgbackrest.conf's ``repo1-storage-port``."""

    def __init__(self, root: Path, *, tls: Path, moto_port: int) -> None:
        self.faults = Faults()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.faults, moto_port))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.port = free_port()
        self._nginx = start_nginx(root, listen=self.port, upstream=self._server.server_port, tls=tls)

    def set(self, *, share: float, delay: float = 0.0) -> None:
        with self.faults.lock:
            self.faults.share, self.faults.delay = share, delay

    def counts(self) -> tuple[int, int]:
        """(requests seen, requests refused with 503) so far."""
        with self.faults.lock:
            return self.faults.requests, self.faults.refused

    def close(self) -> None:
        stop_process(self._nginx)
        self._server.shutdown()
        self._server.server_close()
