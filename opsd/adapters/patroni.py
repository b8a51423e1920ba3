"""Patroni's REST API, read only: ``GET /patroni`` (this node), ``GET /cluster`` (the DCS's view: who holds the
leader key) and ``GET /patroni`` of the other members (a second primary in maintenance mode).

Every read of one role decision shares ONE deadline (:class:`Deadline`, from ``[patroni] timeout``): connect, TLS
handshake, each read of the answer. A plain socket, not urllib, whose timeout is per read: an API that drips a byte
a second would hold the decision for minutes. URLs are named by scheme, host and port only."""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.parse
from pathlib import Path

from opsd.core.role import PATRONI_LEADERS, DcsView, Member, PatroniState
from opsd.errors import OpsdError

MAX_BODY = 1_000_000


class Deadline:
    """A point in (monotonic) time that every read of one decision must finish by."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return self.at - time.monotonic()


def where(url: str) -> str:
    """scheme://host:port of ``url``: never its path, query or user info."""
    p = urllib.parse.urlsplit(url)
    return f"{p.scheme}://{p.hostname or '?'}" + (f":{p.port}" if p.port else "")


def _recv_all(sock: socket.socket, deadline: Deadline, name: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_BODY:
        left = deadline.left()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise OpsdError(f"Patroni at {name} answered more than {MAX_BODY} bytes")


def _get(url: str, path: str, deadline: Deadline, ca_file: Path | None) -> tuple[int, object]:
    """(HTTP status, JSON body) of GET ``path``, within ``deadline``. Raises OpsdError naming scheme://host:port."""
    p = urllib.parse.urlsplit(url)
    name = where(url)
    port = p.port or (443 if p.scheme == "https" else 80)
    host = p.hostname or ""
    try:
        if deadline.left() <= 0:
            raise TimeoutError
        raw = socket.create_connection((host, port), timeout=deadline.left())
        sock: socket.socket = raw
        try:
            if p.scheme == "https":
                context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
                raw.settimeout(max(deadline.left(), 0.001))
                sock = context.wrap_socket(raw, server_hostname=host)
            base = p.path.rstrip("/")
            sock.sendall(f"GET {base}{path} HTTP/1.0\r\nHost: {host}:{port}\r\nAccept: application/json\r\n"
                         f"Connection: close\r\n\r\n".encode())
            answer = _recv_all(sock, deadline, name)
        finally:
            sock.close()
    except TimeoutError:
        raise OpsdError(f"Patroni at {name} did not answer within {deadline.seconds:.1f}s") from None
    except OSError as e:
        raise OpsdError(f"Patroni at {name} did not answer: {e.strerror or type(e).__name__}") from None
    return _parse(answer, name)


def _parse(answer: bytes, name: str) -> tuple[int, object]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise OpsdError(f"Patroni at {name} did not answer HTTP")
    try:
        return int(status_line[1]), json.loads(body) if body.strip() else None
    except ValueError:
        return int(status_line[1]), None


def _deadline(d: Deadline | float) -> Deadline:
    return d if isinstance(d, Deadline) else Deadline(d)


def node_state(url: str, deadline: Deadline | float, ca_file: Path | None = None) -> PatroniState:
    """This node as Patroni sees it (200 when Patroni runs; 503 while it cannot decide, with the same body)."""
    status, data = _get(url, "/patroni", _deadline(deadline), ca_file)
    if not isinstance(data, dict):
        if status != 200:
            raise OpsdError(f"Patroni at {where(url)} answered HTTP {status}")
        raise OpsdError(f"Patroni at {where(url)} answered something that is not its status")
    timeline = data.get("timeline")
    me = data.get("patroni")
    return PatroniState(role=str(data.get("role") or "unknown"), state=str(data.get("state") or "unknown"),
                        paused=bool(data.get("pause")), timeline=timeline if isinstance(timeline, int) else None,
                        name=str(me.get("name") or "") if isinstance(me, dict) else "")


def _members(data: object) -> list[dict[str, object]]:
    raw = data.get("members") if isinstance(data, dict) else None
    return [m for m in (raw if isinstance(raw, list) else []) if isinstance(m, dict)]


def cluster(url: str, deadline: Deadline | float, ca_file: Path | None = None) -> list[Member] | None:
    """The cluster's members as Patroni's DCS knows them (``GET /cluster``); None when Patroni does not answer."""
    try:
        _, data = _get(url, "/cluster", _deadline(deadline), ca_file)
    except OpsdError:
        return None
    return [Member(str(m.get("name", "?")), str(m.get("role", "?")), str(m.get("state", "?")))
            for m in _members(data)]


def dcs_view(url: str, me: str, deadline: Deadline, ca_file: Path | None = None) -> DcsView:
    """Who holds the leader key (``GET /cluster``; Patroni answers it from the DCS, and with no leader when the
    DCS is lost), and which other members' Patroni says their PostgreSQL is a primary."""
    try:
        status, data = _get(url, "/cluster", deadline, ca_file)
    except OpsdError as e:
        return DcsView(None, error=str(e))
    if status != 200 or not isinstance(data, dict):
        return DcsView(None, error=f"Patroni at {where(url)} answered /cluster with HTTP {status}")
    members = _members(data)
    leaders = [str(m.get("name")) for m in members if m.get("role") in ("leader", "standby_leader")]
    others = []
    for m in members:
        api = m.get("api_url")
        if str(m.get("name")) == me or not isinstance(api, str) or not api.startswith(("http://", "https://")):
            continue
        try:
            if node_state(api.removesuffix("/patroni"), deadline, ca_file).role in PATRONI_LEADERS:
                others.append(str(m.get("name")))
        except OpsdError:
            continue  # a member that does not answer is not a second primary we can see
    return DcsView(leaders[0] if leaders else None, tuple(others))
