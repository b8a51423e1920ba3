"""A drill host's presence, on a fake etcd: a lease that cannot be confirmed for its TTL is lost (the drill stops,
a loss is counted) even while etcd does not answer; a claim its drill could not give back is given back at a
later beat; a lease etcd does not confirm is no lease. And the rules around it: a repository of another bucket
is never drilled, the fleet's per-cluster alerts resolve, the password never crosses the network in clear."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from opsd.actions.fleet import presence as presence_mod
from opsd.actions.fleet.presence import FleetUnavailable, Presence
from opsd.actions.fleet.store import FleetStore, Held
from opsd.adapters.etcd import EtcdUnavailable
from opsd.core.fleet.keys import Keys
from opsd.core.fleet.pick import pick
from opsd.core.records.fleet import Capacity, Claim, ClusterEntry, Repository
from opsd.errors import ConfigError

T0 = datetime(2026, 12, 1, tzinfo=UTC)
FLEET = {"endpoints": ["http://127.0.0.1:2379"], "name": "t", "ttl": "10s", "timeout": "2s",
         "repositories": {"default": "/etc/pgbackrest/pgbackrest.conf"}}


class FakeEtcd:
    def __init__(self) -> None:
        self.down = False
        self.alive: set[int] = set()
        self.keys: dict[str, bytes] = {}
        self.next = 100

    def _check(self) -> None:
        if self.down:
            raise EtcdUnavailable("etcd unavailable (test): no answer")

    def grant(self, ttl: int) -> int:
        self._check()
        self.next += 1
        self.alive.add(self.next)
        return self.next

    def keepalive(self, lease: int) -> int:
        self._check()
        return 10 if lease in self.alive else 0

    def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        self._check()
        self.keys[key] = value
        return 1

    def put_if_held(self, guard: str, create_revision: int, *, puts: Any = (), deletes: Any = ()) -> bool:
        self._check()
        held = guard in self.keys
        for k in deletes:
            self.keys.pop(k, None)
        return held

    def revoke(self, lease: int) -> None:
        self.alive.discard(lease)

    def close(self) -> None:
        pass


@pytest.fixture
def drill_host(fake_ctx: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Presence, FakeEtcd, list[float]]:
    ctx = fake_ctx(opsd={"role": "drill"}, fleet=FLEET)
    etcd, clock = FakeEtcd(), [1000.0]
    monkeypatch.setattr(presence_mod.time, "monotonic", lambda: clock[0])
    p = Presence(ctx, store=FleetStore(etcd, Keys("t")))  # type: ignore[arg-type]
    return p, etcd, clock


def test_cut_off_past_its_ttl_the_drill_stops_while_etcd_still_does_not_answer(drill_host: Any) -> None:
    p, etcd, clock = drill_host
    stopped: list[str] = []
    assert p.lease() == 101
    p.begin("orders", lambda: stopped.append("orders"))
    etcd.down = True
    clock[0] += 7  # under ttl less one timeout (10 - 2): still ours
    p.beat()
    assert stopped == [] and p.lease_id == 101
    clock[0] += 2  # past it: etcd may have given the claim to another host
    p.beat()
    assert stopped == ["orders"] and p.lease_id is None and p.losses == 1
    assert p.end("orders") is True
    with pytest.raises(FleetUnavailable, match="no drill starts without a claim"):
        p.lease()


def test_a_lease_etcd_cannot_confirm_is_no_lease(drill_host: Any) -> None:
    p, etcd, _clock = drill_host
    p.lease()
    etcd.down = True
    with pytest.raises(FleetUnavailable, match="no answer"):
        p.lease()
    etcd.down = False
    assert p.lease() == 101  # the same lease, confirmed again: nothing was lost


def test_a_claim_its_drill_could_not_give_back_is_given_back_at_a_later_beat(drill_host: Any) -> None:
    p, etcd, _clock = drill_host
    lease = p.lease()
    key = Keys("t").claim("orders")
    etcd.keys[key] = b"{}"
    held = Held("orders", 5, Claim(cluster="orders", host="d1", pid=1, lease=lease, started_at=T0))
    etcd.down = True
    p.give_back(held)  # etcd down: kept for later, never raised
    assert key in etcd.keys
    etcd.down = False
    p.beat()
    assert key not in etcd.keys


def entry(name: str, location: str) -> ClusterEntry:
    return ClusterEntry(cluster=name, stanza=name, repository=Repository(name="default", location=location),
                        host="h", registered_at=T0, updated_at=T0)


def test_a_cluster_whose_repository_here_is_another_is_passed_over_with_why() -> None:
    a, b = entry("a", "eu:/repo"), entry("b", "us:/repo")
    got = pick([a, b], {}, {}, capacity=Capacity(scratch_bytes=10**12, cores=2), repositories=["default"],
               now=T0, min_gap=T0 - T0, refused={"a": "repository 'default' is s3 us:/repo on this host"})
    assert got.cluster == b and got.passed_over[0].reason.startswith("repository 'default' is s3 us:/repo")


def test_a_password_over_plain_http_is_refused(settings_factory: Any) -> None:
    with pytest.raises(ConfigError, match="password would cross the network in clear"):
        settings_factory(fleet={**FLEET, "username": "opsd", "password_file": "/etc/opsd/etcd"})
