"""etcd v3 through its JSON gRPC gateway (etcd 3.4, Debian's ``etcd-server``), the way Patroni's etcd3 DCS talks to
it: keys and values are base64 on the wire, int64 fields come back as strings, and every request is a POST to one
of the endpoints (:mod:`opsd.adapters.etcd_http` tries them in turn and sorts the failures).

Bounds: every call ends within ``timeout x len(endpoints)`` seconds (:attr:`Etcd.bound`), authentication
included; each attempt on one endpoint within ``timeout``. Without quorum etcd 3.4 holds a linearizable request
~7 s before it fails, so with ``timeout`` below that the call ends at the bound, as :class:`EtcdUnavailable`.

Fencing: :meth:`Etcd.create` returns the key's create revision, a token that changes whenever the key is deleted
(or its lease expires) and created again; :meth:`Etcd.put_if_held` writes only while that token still holds.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsd.adapters.etcd_http import EndpointDown, EtcdRefused, EtcdUnavailable, Gateway, where

__all__ = ["KV", "Etcd", "EtcdRefused", "EtcdUnavailable", "MemberHealth"]


@dataclass(frozen=True)
class KV:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    lease: int


@dataclass(frozen=True)
class MemberHealth:
    """One endpoint as ``opsd fleet status`` shows it; ``error`` is '' when it answered and has a leader."""

    endpoint: str  # scheme://host:port
    reachable: bool
    leader: bool  # this member is the leader
    raft_index: int
    version: str
    error: str


def _b64(b: bytes | str) -> str:
    return base64.b64encode(b.encode() if isinstance(b, str) else b).decode()


def range_end(prefix: str) -> bytes:
    """etcd's range_end for every key starting with ``prefix``, computed on its UTF-8 bytes (etcd compares bytes):
    the last byte below 0xFF incremented, the 0xFF bytes after it dropped; b"\\0" (to the end) when none is left."""
    b = bytearray(prefix.encode())
    while b and b[-1] == 0xFF:
        b.pop()
    if not b:
        return b"\0"
    b[-1] += 1
    return bytes(b)


def _int(v: object) -> int:
    """An int64 of the gateway: a string, or absent when 0."""
    return int(str(v)) if v not in (None, "") else 0


def _kv(d: dict[str, Any]) -> KV:
    return KV(key=base64.b64decode(d.get("key", "")).decode(errors="surrogateescape"),
              value=base64.b64decode(d.get("value", "")), create_revision=_int(d.get("create_revision")),
              mod_revision=_int(d.get("mod_revision")), lease=_int(d.get("lease")))


def _revision(answer: dict[str, Any]) -> int:
    return _int(answer.get("header", {}).get("revision"))


def _put_op(key: str, value: bytes, lease: int = 0) -> dict[str, Any]:
    op: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
    if lease:
        op["lease"] = str(lease)
    return op


class Etcd:
    """A client of one etcd cluster. Raises :class:`EtcdUnavailable` (try later) or :class:`EtcdRefused` (don't)."""

    def __init__(self, endpoints: Sequence[str], *, timeout: float, cacert: Path | None = None,
                 cert: Path | None = None, key: Path | None = None, username: str | None = None,
                 password: str | None = None) -> None:
        self._gw = Gateway(list(endpoints), timeout=timeout, cacert=cacert, cert=cert, key=key, username=username,
                           password=password)

    def __repr__(self) -> str:
        return f"Etcd({', '.join(map(where, self._gw.endpoints))})"

    @property
    def bound(self) -> float:
        """The most seconds one call takes: ``timeout x len(endpoints)``."""
        return self._gw.bound

    def _call(self, path: str, body: dict[str, Any], *, missing_ok: bool = False) -> dict[str, Any]:
        return self._gw.call(path, body, missing_ok=missing_ok)[0]

    # ------------------------------------------------------------------ keys
    def get(self, key: str) -> KV | None:
        kvs = self._call("kv/range", {"key": _b64(key)}).get("kvs", [])
        return _kv(kvs[0]) if kvs else None

    def range(self, prefix: str, *, serializable: bool = False) -> list[KV]:
        """Every key starting with ``prefix``, sorted by key. ``serializable``: the answering member's own view,
        which may be stale but answers without quorum (for display only)."""
        body: dict[str, Any] = {"key": _b64(prefix or b"\0"), "range_end": _b64(range_end(prefix)),
                                "sort_order": "ASCEND", "sort_target": "KEY"}
        if serializable:
            body["serializable"] = True
        return [_kv(d) for d in self._call("kv/range", body).get("kvs", [])]

    def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        """Returns the revision of the put."""
        return _revision(self._call("kv/put", _put_op(key, value, lease)))

    def delete(self, key: str) -> None:
        self._call("kv/deleterange", {"key": _b64(key)})

    def delete_prefix(self, prefix: str) -> int:
        """Deletes every key starting with ``prefix`` (all keys when it is ''); returns how many."""
        body = {"key": _b64(prefix or b"\0"), "range_end": _b64(range_end(prefix))}
        return _int(self._call("kv/deleterange", body).get("deleted"))

    # ------------------------------------------------------------------ transactions
    def create(self, key: str, value: bytes, *, lease: int) -> int | None:
        """Put ``key`` only if it does not exist; returns its create revision (the fencing token), None if it
        existed. When an earlier attempt of this call may have reached etcd and the key now holds this value
        under this lease (non-zero), that attempt was ours: its create revision is returned."""
        k = _b64(key)
        answer, sent = self._gw.call("kv/txn", {
            "compare": [{"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            "success": [{"request_put": _put_op(key, value, lease)}],
            "failure": [{"request_range": {"key": k}}]})
        if answer.get("succeeded"):
            return _revision(answer)
        kvs = [kv for r in answer.get("responses", []) for kv in r.get("response_range", {}).get("kvs", [])]
        if sent and lease and kvs and (mine := _kv(kvs[0])).lease == lease and mine.value == value:
            return mine.create_revision
        return None

    def put_if_held(self, guard: str, create_revision: int, *, puts: Sequence[tuple[str, bytes]] = (),
                    deletes: Sequence[str] = ()) -> bool:
        """Apply ``puts`` and ``deletes`` atomically, only if ``guard`` exists with this create revision; False
        (nothing written) when the guard is gone or was created again since. A key may appear once in all."""
        ops = [{"request_put": _put_op(k, v)} for k, v in puts]
        ops += [{"request_delete_range": {"key": _b64(k)}} for k in deletes]
        answer = self._call("kv/txn", {
            "compare": [{"key": _b64(guard), "target": "CREATE", "result": "EQUAL",
                         "create_revision": str(create_revision)}],
            "success": ops})
        return bool(answer.get("succeeded"))

    # ------------------------------------------------------------------ leases
    def grant(self, ttl: int) -> int:
        """A new lease of ``ttl`` seconds; returns its id."""
        answer = self._call("lease/grant", {"TTL": str(ttl)})
        if answer.get("error"):
            raise EtcdUnavailable(f"etcd did not grant a lease: {answer['error']}")
        return _int(answer.get("ID"))

    def keepalive(self, lease: int) -> int:
        """Renew ``lease``; returns its TTL, 0 when it has expired or was revoked."""
        return _int(self._call("lease/keepalive", {"ID": str(lease)}).get("result", {}).get("TTL"))

    def revoke(self, lease: int) -> None:
        """Revoke ``lease`` (its keys go with it); a lease already gone is not an error."""
        self._call("lease/revoke", {"ID": str(lease)}, missing_ok=True)

    # ------------------------------------------------------------------ members
    def members(self) -> list[MemberHealth]:
        """Each endpoint's own status (``/v3/maintenance/status``, answered without quorum), one at a time."""
        return [self._health(i) for i in range(len(self._gw.endpoints))]

    def _health(self, i: int) -> MemberHealth:
        name = where(self._gw.endpoints[i])
        try:
            s = self._gw.one(i, "maintenance/status", {})
        except (EndpointDown, EtcdRefused) as e:
            why = e.why if isinstance(e, EndpointDown) else str(e)
            return MemberHealth(name, reachable=False, leader=False, raft_index=0, version="", error=why)
        me, leader = _int(s.get("header", {}).get("member_id")), _int(s.get("leader"))
        error = "; ".join(s.get("errors", [])) or ("" if leader else "no leader")
        return MemberHealth(name, reachable=True, leader=bool(leader) and leader == me,
                            raft_index=_int(s.get("raftIndex")), version=str(s.get("version", "")), error=error)

    def close(self) -> None:
        self._gw.close()
