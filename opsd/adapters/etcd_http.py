"""The wire under :mod:`opsd.adapters.etcd`: one JSON POST to etcd's v3 gRPC gateway (etcd 3.4: ``/v3/...``),
tried on each endpoint in turn from the last one that answered, within one deadline for the whole call, with the
authentication token of the member it goes to, and every failure sorted into "another member or a later try may
answer" (:class:`EtcdUnavailable`) or "asking again won't help" (:class:`EtcdRefused`).

What the gateway answers when it fails (3.4.23, seen in tests/integration/test_etcd.py):
``{"error": "etcdserver: request timed out", "message": ..., "code": 14}`` (HTTP 503), the same nested under
``{"error": {"grpc_code": .., "message": ..}}`` on the streaming keepalive, or plain text (HTTP 400: a client
certificate with a CommonName while authentication is on). Without quorum a linearizable request hangs ~7 s (5 s
+ 2 election timeouts) before "request timed out" (writes, reads) or "context deadline exceeded" (code 2, leases).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, SSLError, TimeoutError

from opsd.errors import OpsdError

# gRPC codes that mean the request itself is refused (bad argument, not found, exists, permission, precondition,
# compacted, unimplemented): asking another member gives the same answer
REFUSED_CODES = frozenset({3, 5, 6, 7, 9, 11, 12})
NOT_FOUND = 5
UNAUTHENTICATED = 16
# the token is no good any more (simple tokens expire and are only known to the member that issued them)
REAUTH = ("invalid auth token", "revision of auth store is old")


class EtcdUnavailable(OpsdError):
    """Every endpoint failed, timed out, or the cluster has no quorum (no leader): a later try may work."""


class EtcdRefused(OpsdError):
    """Authentication failed, permission denied, bad request: asking again won't help."""


class EndpointDown(Exception):
    """This endpoint did not answer usefully; ``sent``: the request may have reached etcd (its effect unknown)."""

    def __init__(self, why: str, *, sent: bool) -> None:
        super().__init__(why)
        self.why = why
        self.sent = sent


class _BadToken(Exception):
    pass


def where(url: str) -> str:
    """scheme://host:port of an endpoint: never a path or user info."""
    p = urllib.parse.urlsplit(url)
    return f"{p.scheme}://{p.hostname or '?'}" + (f":{p.port}" if p.port else "")


def _why(e: Exception, timeout: float) -> tuple[str, bool]:
    """(one-line reason, whether the request may have reached etcd) of a transport failure."""
    if isinstance(e, NewConnectionError):
        return f"cannot connect ({str(e).rsplit(': ', 1)[-1]})", False
    if isinstance(e, TimeoutError):
        return f"no answer within {timeout:.1f}s", True
    if isinstance(e, SSLError):
        return f"TLS: {str(e).splitlines()[0][:200]}", False
    return f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}", True


def _error_of(status: int, raw: bytes) -> tuple[int | None, str] | None:
    """(gRPC code or None, message) when the answer is an error, else None."""
    try:
        data = json.loads(raw.split(b"\n", 1)[0] or b"{}")
    except ValueError:
        data = None
    if isinstance(data, dict) and "error" in data:
        err = data["error"]
        if isinstance(err, dict):  # the streaming shape
            return int(err.get("grpc_code", 2)), str(err.get("message", ""))
        return int(data.get("code", 2)), str(data.get("message") or err)
    if status >= 300 or not isinstance(data, dict):
        return None, raw.decode(errors="replace").strip().splitlines()[0][:200] if raw.strip() else f"HTTP {status}"
    return None


class Gateway:
    """The endpoints, their connection pool, the current endpoint and the token. Thread-safe."""

    def __init__(self, endpoints: list[str], *, timeout: float, cacert: Path | None, cert: Path | None,
                 key: Path | None, username: str | None, password: str | None) -> None:
        if not endpoints:
            raise EtcdRefused("no etcd endpoint configured")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.timeout = timeout
        self._username, self._password = username, password
        self._lock = threading.Lock()
        self._current = 0
        self._token: tuple[int, str] | None = None  # (endpoint index, token): simple tokens are per member
        tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED"}
        if cacert:
            tls["ca_certs"] = str(cacert)
        if cert:
            tls["cert_file"], tls["key_file"] = str(cert), str(key) if key else None
        self._http = urllib3.PoolManager(num_pools=len(self.endpoints) + 1, maxsize=4, retries=False, **tls)

    def __repr__(self) -> str:
        return f"Gateway({', '.join(map(where, self.endpoints))})"

    @property
    def bound(self) -> float:
        return self.timeout * len(self.endpoints)

    def close(self) -> None:
        self._http.clear()

    # ------------------------------------------------------------------ one call
    def one(self, i: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /v3/``path`` to endpoint ``i`` only, once, without a token (status, not data)."""
        return self._post(i, path, body, {}, time.monotonic() + self.timeout)

    def call(self, path: str, body: dict[str, Any], *, missing_ok: bool = False) -> tuple[dict[str, Any], bool]:
        """(answer, whether an earlier attempt may have reached etcd) of POST /v3/``path``.

        One round over the endpoints from the last one that answered; the whole call ends within
        ``timeout x len(endpoints)`` seconds (the deadline also cuts the last attempts short)."""
        deadline = time.monotonic() + self.bound
        with self._lock:
            start = self._current
        failures: list[str] = []
        sent = False
        for n in range(len(self.endpoints)):
            i = (start + n) % len(self.endpoints)
            if deadline - time.monotonic() <= 0:
                failures.append(f"{where(self.endpoints[i])}: not tried (out of time)")
                continue
            try:
                answer = self._attempt(i, path, body, deadline, missing_ok)
            except EndpointDown as e:
                failures.append(f"{where(self.endpoints[i])}: {e.why}")
                sent = sent or e.sent
                continue
            with self._lock:
                self._current = i
            return answer, sent
        raise EtcdUnavailable(f"etcd unavailable ({path}, {self.bound:.1f}s at most): " + "; ".join(failures))

    def _attempt(self, i: int, path: str, body: dict[str, Any], deadline: float,
                 missing_ok: bool) -> dict[str, Any]:
        if self._username is None:
            return self._post(i, path, body, {}, deadline, missing_ok=missing_ok)
        for again in (False, True):
            try:
                return self._post(i, path, body, {"Authorization": self._token_for(i, deadline)}, deadline,
                                  missing_ok=missing_ok)
            except _BadToken:
                with self._lock:
                    self._token = None
                if again:
                    break
        raise EtcdRefused(f"etcd at {where(self.endpoints[i])} refused a fresh authentication token of user "
                          f"{self._username!r}")

    def _token_for(self, i: int, deadline: float) -> str:
        with self._lock:
            if self._token is not None and self._token[0] == i:
                return self._token[1]
        try:
            answer = self._post(i, "auth/authenticate", {"name": self._username, "password": self._password}, {},
                                deadline)
        except _BadToken as e:
            raise EtcdRefused(f"etcd at {where(self.endpoints[i])}: authentication of {self._username!r} "
                              "failed") from e
        token = str(answer.get("token", ""))
        with self._lock:
            self._token = (i, token)
        return token

    def _post(self, i: int, path: str, body: dict[str, Any], headers: dict[str, str], deadline: float, *,
              missing_ok: bool = False) -> dict[str, Any]:
        left = min(self.timeout, deadline - time.monotonic())
        if left <= 0:  # the call's bound spent (by authentication, say): urllib3 refuses a timeout of 0
            raise EndpointDown("not tried (out of time)", sent=False)
        try:
            r = self._http.request("POST", f"{self.endpoints[i]}/v3/{path}", body=json.dumps(body).encode(),
                                   headers={"Content-Type": "application/json", **headers},
                                   timeout=urllib3.Timeout(connect=left, read=left), redirect=False)
        except (HTTPError, OSError) as e:
            why, sent = _why(e, left)
            raise EndpointDown(why, sent=sent) from None
        return self._judge(i, path, r.status, r.data, missing_ok)

    def _judge(self, i: int, path: str, status: int, raw: bytes, missing_ok: bool) -> dict[str, Any]:
        err = _error_of(status, raw)
        if err is None:
            return dict(json.loads(raw.split(b"\n", 1)[0]))
        code, msg = err
        if code == UNAUTHENTICATED or any(m in msg for m in REAUTH):
            raise _BadToken(msg)
        if code == NOT_FOUND and missing_ok:
            return {}
        if code in REFUSED_CODES or (code is None and 400 <= status < 500):
            raise EtcdRefused(f"etcd at {where(self.endpoints[i])} refused {path}: {msg}")
        raise EndpointDown(msg + (f" (code {code})" if code is not None else ""), sent=True)
