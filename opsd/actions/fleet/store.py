"""The fleet's keys in etcd, typed: entries, drill hosts, claims and results read and written as the records of
``core/records/fleet.py``. A value that does not parse is named in the log and left out, never a crash."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pydantic import ValidationError

from opsd.adapters.etcd import KV, Etcd
from opsd.core.fleet.keys import Keys
from opsd.core.records.base import Part
from opsd.core.records.fleet import Claim, ClusterEntry, DrillHostEntry, DrillSummary
from opsd.log import get_logger
from opsd.settings import Settings

P = TypeVar("P", bound=Part)


def client(s: Settings) -> Etcd:
    """The etcd client of ``[fleet]``: TLS and authentication as Patroni configures them; the password from its
    file (a systemd credential ``opsd-fleet-password`` first), never from the configuration itself."""
    from opsd.adapters import secrets

    f = s.fleet
    password = secrets.secret("opsd-fleet-password", file=f.password_file, key="fleet.password_file",
                              private=True) if f.username else None
    return Etcd(f.endpoints, timeout=f.timeout.total_seconds(), cacert=f.cacert, cert=f.cert, key=f.key,
                username=f.username, password=password)


def host_name(s: Settings) -> str:
    """This host's name in the fleet: ``[fleet] host``, else its hostname."""
    return s.fleet.host or socket.gethostname()


def _parse(kv: KV, model: type[P]) -> P | None:
    try:
        return model.model_validate_json(kv.value)
    except ValidationError as e:
        get_logger().warning("fleet.unreadable_key", key=kv.key, error=str(e).splitlines()[0])
        return None


@dataclass(frozen=True)
class Held:
    """A claim this host holds: the key's create revision is the fencing token."""

    cluster: str
    revision: int
    claim: Claim


@dataclass
class FleetStore:
    etcd: Etcd
    keys: Keys

    @classmethod
    def of(cls, s: Settings) -> FleetStore:
        return cls(client(s), Keys(s.fleet.name))

    def close(self) -> None:
        self.etcd.close()

    # ------------------------------------------------------------------ reads
    def entries(self) -> list[ClusterEntry]:
        return [e for kv in self.etcd.range(self.keys.clusters) if (e := _parse(kv, ClusterEntry)) is not None]

    def entry(self, cluster: str) -> ClusterEntry | None:
        kv = self.etcd.get(self.keys.cluster(cluster))
        return None if kv is None else _parse(kv, ClusterEntry)

    def hosts(self) -> list[DrillHostEntry]:
        return [h for kv in self.etcd.range(self.keys.hosts) if (h := _parse(kv, DrillHostEntry)) is not None]

    def claims(self) -> dict[str, Claim]:
        return {c.cluster: c for kv in self.etcd.range(self.keys.claims) if (c := _parse(kv, Claim)) is not None}

    def results(self, cluster: str | None = None) -> dict[str, list[DrillSummary]]:
        out: dict[str, list[DrillSummary]] = {}
        prefix = self.keys.results_of(cluster) if cluster else self.keys.results
        for kv in self.etcd.range(prefix):
            if (d := _parse(kv, DrillSummary)) is not None:
                out.setdefault(self.keys.cluster_of_result(kv.key), []).append(d)
        return out

    # ------------------------------------------------------------------ writes
    def put_entry(self, e: ClusterEntry) -> None:
        self.etcd.put(self.keys.cluster(e.cluster), e.model_dump_json().encode())

    def put_host(self, h: DrillHostEntry, lease: int) -> None:
        self.etcd.put(self.keys.host(h.host), h.model_dump_json().encode(), lease=lease)

    def claim(self, c: Claim) -> Held | None:
        """Take the cluster's claim key if nobody holds it (a transaction on its create revision), attached to
        this host's lease; None when another host holds it."""
        rev = self.etcd.create(self.keys.claim(c.cluster), c.model_dump_json().encode(), lease=c.lease)
        return None if rev is None else Held(c.cluster, rev, c)

    def record(self, held: Held, d: DrillSummary) -> bool:
        """The drill's result, written and the claim released in one transaction, only while the claim key still
        has the revision this host created: False when the lease was lost (the result is not the claim's)."""
        key, value = self.keys.result(held.cluster, d.started_at, d.host), d.model_dump_json().encode()
        if self.etcd.put_if_held(self.keys.claim(held.cluster), held.revision, puts=[(key, value)],
                                 deletes=[self.keys.claim(held.cluster)]):
            return True
        kv = self.etcd.get(key)  # an answer lost and the request retried: the first attempt may have done it
        return kv is not None and kv.value == value

    def release(self, held: Held) -> bool:
        """Give the claim back without a result (the drill could not start)."""
        return self.etcd.put_if_held(self.keys.claim(held.cluster), held.revision,
                                     deletes=[self.keys.claim(held.cluster)])

    def prune(self, cluster: str, before: datetime) -> int:
        """Results of ``cluster`` that finished before ``before`` ([fleet] keep_results) removed."""
        old = [kv.key for kv in self.etcd.range(self.keys.results_of(cluster)) if
               (d := _parse(kv, DrillSummary)) is not None and d.finished_at < before]
        for key in old:
            self.etcd.delete(key)
        return len(old)

