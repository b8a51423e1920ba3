"""The etcd adapter against a real three-member etcd 3.4 (Debian's etcd-server): exclusive creates and fencing by
create revision, leases, a lost member, lost quorum and its return, and TLS with authentication on one member.

Every test leaves the cluster whole (all members up) whatever the order the tests run in."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsd.adapters.etcd import Etcd, EtcdRefused, EtcdUnavailable
from opsd_sandbox.etcd import EtcdCluster, available, make_tls
from opsd_sandbox.procs import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.skipif(bool(available()), reason=f"etcd: {available()}")]

TIMEOUT = 1.0  # each attempt; a call's bound is TIMEOUT x 3 endpoints


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    c = EtcdCluster(tmp_path_factory.mktemp("etcd"), 3)
    try:
        c.start()
        yield c
    finally:
        c.down()


@pytest.fixture
def etcd(cluster: EtcdCluster) -> Iterator[Etcd]:
    e = Etcd(cluster.endpoints, timeout=TIMEOUT)
    yield e
    e.close()


def whole(cluster: EtcdCluster) -> None:
    """Every member up again and the cluster writable (a test's cleanup)."""
    for i in range(len(cluster.members)):
        cluster.start_member(i)
    wait_for(cluster.writable, timeout=30, what="the etcd cluster to be writable again")


def test_create_is_exclusive_and_put_if_held_fences_an_expired_holder(etcd: Etcd,
                                                                      request: pytest.FixtureRequest) -> None:
    claim, result = f"/t/{request.node.name}/claim", f"/t/{request.node.name}/result"
    first, second = etcd.grant(2), etcd.grant(30)
    rev1 = etcd.create(claim, b"host-a", lease=first)
    assert rev1 is not None and rev1 > 0
    assert etcd.create(claim, b"host-b", lease=second) is None
    kv = etcd.get(claim)
    assert kv is not None and (kv.value, kv.lease, kv.create_revision) == (b"host-a", first, rev1)

    wait_for(lambda: etcd.get(claim) is None, timeout=10, what="the first lease to expire")
    assert etcd.keepalive(first) == 0
    rev2 = etcd.create(claim, b"host-b", lease=second)
    assert rev2 is not None and rev2 > rev1

    assert etcd.put_if_held(claim, rev1, puts=[(result, b"stale")]) is False
    assert etcd.get(result) is None
    assert etcd.put_if_held(claim, rev2, puts=[(result, b"fresh")], deletes=[claim]) is True
    got = etcd.get(result)
    assert got is not None and got.value == b"fresh"
    assert etcd.get(claim) is None
    etcd.revoke(second)


def test_keepalive_while_alive_then_zero_after_revoke(etcd: Etcd) -> None:
    lease = etcd.grant(10)
    assert 0 < etcd.keepalive(lease) <= 10
    etcd.revoke(lease)
    assert etcd.keepalive(lease) == 0
    etcd.revoke(lease)  # already gone: not an error


def test_keys_values_and_prefixes(etcd: Etcd, request: pytest.FixtureRequest) -> None:
    p = f"/t/{request.node.name}/"
    raw = bytes(range(256))
    rev = etcd.put(f"{p}b", raw)
    etcd.put(f"{p}a", b"")
    etcd.put(f"{p[:-1]}0", b"outside the prefix")  # the byte after '/' in the key: range_end must exclude it
    got = etcd.range(p)
    assert [(kv.key, kv.value) for kv in got] == [(f"{p}a", b""), (f"{p}b", raw)]
    assert got[1].mod_revision == rev and got[1].create_revision == rev
    assert [kv.key for kv in etcd.range(p, serializable=True)] == [f"{p}a", f"{p}b"]
    assert etcd.delete_prefix(p) == 2
    assert etcd.range(p) == []
    assert etcd.get(f"{p[:-1]}0") is not None
    etcd.delete(f"{p[:-1]}0")
    assert etcd.get(f"{p[:-1]}0") is None


def test_one_member_killed_the_others_answer(cluster: EtcdCluster, etcd: Etcd,
                                             request: pytest.FixtureRequest) -> None:
    """The leader is killed (the worst member to lose): once the other two have elected a leader (a second or
    two; a call meanwhile is EtcdUnavailable and the caller's next tick tries again), every call works through
    them with the dead member first in the list."""
    key = f"/t/{request.node.name}"
    dead = next(i for i, m in enumerate(etcd.members()) if m.leader)
    cluster.kill(dead)
    try:
        others = [u for i, u in enumerate(cluster.endpoints) if i != dead]
        e = Etcd([cluster.endpoints[dead], *others], timeout=TIMEOUT)
        wait_for(lambda: sum(m.leader for m in e.members()) == 1, timeout=10, what="a new leader")
        health = e.members()
        assert [m.reachable for m in health] == [False, True, True]
        lease = e.grant(30)
        assert e.put(key, b"1") > 0
        kv = e.get(key)
        assert kv is not None and kv.value == b"1"
        assert e.create(f"{key}/claim", b"x", lease=lease) is not None
        assert e.keepalive(lease) > 0
        e.revoke(lease)
        e.close()
    finally:
        whole(cluster)


def test_quorum_lost_writes_fail_within_the_bound_then_resume(cluster: EtcdCluster,
                                                              request: pytest.FixtureRequest) -> None:
    key = f"/t/{request.node.name}"
    etcd = Etcd(cluster.endpoints, timeout=TIMEOUT)
    etcd.put(key, b"before")
    lease = etcd.grant(60)
    cluster.kill(1)
    cluster.kill(2)
    try:
        for call in (lambda: etcd.put(key, b"during"), lambda: etcd.create(f"{key}/claim", b"x", lease=lease)):
            t0 = time.monotonic()
            with pytest.raises(EtcdUnavailable) as e:
                call()
            took = time.monotonic() - t0
            print(f"quorum lost: EtcdUnavailable after {took:.2f}s (bound {etcd.bound:.1f}s): {e.value}")
            assert took < etcd.bound + 1.5
            assert "127.0.0.1" in str(e.value) and "\n" not in str(e.value)
        kv = next(iter(etcd.range(key, serializable=True)), None)  # the survivor's own view: display only
        assert kv is not None and kv.value == b"before"
        assert [m.reachable for m in etcd.members()] == [True, False, False]
        cluster.start_member(1)
        wait_for(lambda: _writes(etcd, key), timeout=20, what="writes to work again after quorum came back")
    finally:
        whole(cluster)
    got = etcd.get(key)
    assert got is not None and got.value == b"after"
    etcd.close()


def _writes(etcd: Etcd, key: str) -> bool:
    try:
        etcd.put(key, b"after")
    except EtcdUnavailable:
        return False
    return True


def test_tls_and_authentication(tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls")
    with EtcdCluster(tmp_path / "etcd", 1, tls=tls.server).start() as c:
        _enable_auth(c, "opsd", "pw-Secr3t-e7")
        good = Etcd(c.endpoints, timeout=2, cacert=tls.ca, cert=tls.client_cert, key=tls.client_key,
                    username="opsd", password="pw-Secr3t-e7")
        assert good.put("/opsd/k", b"v") > 0
        kv = good.get("/opsd/k")
        assert kv is not None and kv.value == b"v"
        with pytest.raises(EtcdRefused, match="permission denied"):
            good.put("/elsewhere", b"v")  # the role may only write under /opsd/
        assert "pw-Secr3t" not in repr(good)

        c.kill(0)  # simple tokens live in the member's memory: the old one is invalid after a restart
        c.start_member(0)
        assert good.put("/opsd/k", b"again") > 0  # re-authenticated by itself

        bad = Etcd(c.endpoints, timeout=2, cacert=tls.ca, cert=tls.client_cert, key=tls.client_key,
                   username="opsd", password="wrong-Pa55word")
        with pytest.raises(EtcdRefused) as e:
            bad.get("/opsd/k")
        assert "authentication failed" in str(e.value)
        assert "wrong-Pa55word" not in str(e.value) and "wrong-Pa55word" not in repr(bad)
        with pytest.raises(EtcdRefused, match="permission denied"):  # authentication on, no user given
            Etcd(c.endpoints, timeout=2, cacert=tls.ca, cert=tls.client_cert, key=tls.client_key).get("/opsd/k")
        with pytest.raises(EtcdUnavailable, match="TLS"):  # the server's certificate is not from a known CA
            Etcd(c.endpoints, timeout=2, username="opsd", password="pw-Secr3t-e7").get("/opsd/k")


def _enable_auth(c: EtcdCluster, user: str, password: str) -> None:
    def b64(s: str) -> str:
        return base64.b64encode(s.encode()).decode()
    for path, body in (("auth/role/add", {"name": "root"}), ("auth/user/add", {"name": "root", "password": "r00t"}),
                       ("auth/user/grant", {"user": "root", "role": "root"}), ("auth/role/add", {"name": user}),
                       ("auth/role/grant", {"name": user, "perm": {"permType": "READWRITE", "key": b64("/opsd/"),
                                                                    "range_end": b64("/opsd0")}}),
                       ("auth/user/add", {"name": user, "password": password}),
                       ("auth/user/grant", {"user": user, "role": user}), ("auth/enable", {})):
        c.post(0, path, body)
