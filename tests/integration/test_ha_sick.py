"""A sick Patroni cluster is never a silent one (issue 33, sections 1 and 2), on the suite's real Patroni + etcd:
one cluster for the module, the cases in an order that leaves it usable until the last one (which splits it)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from opsd import settings as settings_mod
from opsd.actions import alerts
from opsd.actions.role import SPLIT_BRAIN, UNDECIDED, node_role
from opsd.adapters.stores.runs import History
from opsd.context import Context, build
from opsd.core.role import Role
from opsd_sandbox import Sandbox
from opsd_sandbox.ha import HaCluster, Node, available
from opsd_sandbox.procs import as_pg, run
from tests.conftest import opsd
from tests.integration.helpers import PG_BIN, wait_until

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(bool(available()), reason=f"Patroni cluster: {available()}")]


@pytest.fixture(scope="module")
def ha(stack: Sandbox) -> Iterator[HaCluster]:
    cluster = HaCluster(stack, scope="sick", etcd_relays=True)  # each node reaches etcd through a relay
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


@pytest.fixture
def split_ha(stack: Sandbox) -> Iterator[HaCluster]:
    """A cluster of its own for the split brain, which leaves its cluster split: the module's cluster stays whole
    for the other cases, in whatever order they run."""
    cluster = HaCluster(stack, scope="split")
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


def _ctx(node: Node, **patroni: str) -> Context:
    s = settings_mod.load(str(node.conf))
    if patroni:
        s = s.model_copy(update={"patroni": s.patroni.model_copy(update={
            k: settings_mod.PatroniSection.model_validate({k: v}).__dict__[k] for k, v in patroni.items()})})
    return build(s)


def _backup_skipped(node: Node) -> str:
    res = opsd(node.conf, "backup", timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]
    last = History(node.state, "postgres").last("backup-full")
    assert last is not None and last.outcome == "skipped", (node.name, res.stdout)
    return res.stdout


@contextlib.contextmanager
def _dripping_proxy(upstream_port: int) -> Iterator[int]:
    """A proxy in front of a Patroni API that passes the answer on one byte a second."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    stop = threading.Event()

    def one(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn, socket.create_connection(("127.0.0.1", upstream_port)) as up:
            up.sendall(conn.recv(65536))
            answer = b""
            while chunk := up.recv(65536):
                answer += chunk
            for i in range(len(answer)):
                if stop.wait(1.0):
                    return
                conn.sendall(answer[i:i + 1])

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        srv.close()


def test_a_healthy_cluster_is_decided_everywhere(ha: HaCluster) -> None:
    """The baseline the other cases break: the leader is primary (all three sources agree), the replica standby.
    Fails if the DCS check misreads Patroni's /cluster (a healthy leader would be undecided)."""
    leader = ha.wait_leader()
    [replica] = [n for n in ha.nodes if n is not leader]
    node = node_role(_ctx(leader))
    assert node.role == Role.PRIMARY, node.describe()
    assert any(s.startswith("DCS: leader key held by") for s in node.sources)
    wait_until(lambda: replica.patroni().get("state") == "running", timeout=60, what="the replica running")
    standby = node_role(_ctx(replica))
    assert standby.role == Role.STANDBY, (standby.describe(), standby.sources)


def test_a_dripping_patroni_api_is_cut_at_the_deadline(ha: HaCluster) -> None:
    """A byte a second through a proxy: the decision returns within [patroni] timeout + 1 s, undecided, naming
    scheme://host:port. Fails on the old adapter (urllib's per-read timeout never fires)."""
    leader = ha.wait_leader()
    with _dripping_proxy(leader.api_port) as port:
        ctx = _ctx(leader, url=f"http://127.0.0.1:{port}", timeout="2s")
        started = time.monotonic()
        node = node_role(ctx)
        took = time.monotonic() - started
    assert took < 3.0, took
    assert node.role == Role.UNKNOWN and f"http://127.0.0.1:{port} did not answer within 2.0s" in node.why


def test_postgres_killed_under_a_running_patroni_is_not_primary(ha: HaCluster) -> None:
    """The leader's postmaster SIGKILLed, Patroni still running and still holding the key: not primary at that
    moment. Fails on the old decide() (in_recovery None passed as primary)."""
    leader = ha.wait_leader()
    pid = int((leader.pgdata / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    node = node_role(_ctx(leader))
    assert node.role != Role.PRIMARY, node.describe()
    ha.wait_leader(timeout=120)
    ha.wait_streaming()


def test_etcd_lost_every_node_undecided_alerted_and_no_backup(ha: HaCluster) -> None:
    """etcd stopped: every node is undecided, a backup asked for is skipped (exit 0, recorded) and role.undecided
    fires on every node; when etcd is back the role is decided and the alert resolves. Fails on the old code:
    the leader stayed "primary" until Patroni demoted it, the replica "standby", and nothing was alerted."""
    ha.wait_leader()
    ha.stop_etcd()
    try:
        wait_until(lambda: all(node_role(_ctx(n)).role == Role.UNKNOWN for n in ha.nodes), timeout=60,
                   what="every node undecided")
        for n in ha.nodes:
            assert "skipped" in _backup_skipped(n)
            assert UNDECIDED in alerts.firing(_ctx(n)), n.name
        assert len(_labels(ha)) == 0
    finally:
        ha.start_etcd()
    leader = ha.wait_leader(timeout=120)
    ha.wait_streaming()
    assert opsd(leader.conf, "status").returncode in (0, 1)  # status looks at the role: decided, resolved
    assert UNDECIDED not in alerts.firing(_ctx(leader))


def _labels(ha: HaCluster) -> list[str]:
    import json

    out = json.loads(ha.pgbackrest(ha.nodes[0], "--output=json", "info"))
    return [b["label"] for b in out[0].get("backup", [])] if out else []


TTL = 20  # bootstrap.dcs.ttl of the sandbox's Patroni


def test_an_old_primary_isolated_from_etcd_stops_before_its_ttl(ha: HaCluster) -> None:
    """The leader alone loses etcd (its relay cut; the other node still sees etcd): it is no longer primary, and
    its backup is skipped, well before its leader key expires (ttl). Fails on the old code: Patroni kept saying
    "primary" until it demoted itself, and nothing asked the DCS."""
    leader = ha.wait_leader()
    ha.isolate(leader)
    cut = time.monotonic()
    try:
        wait_until(lambda: node_role(_ctx(leader)).role != Role.PRIMARY, timeout=TTL, what="the isolated leader")
        undecided_after = time.monotonic() - cut
        assert "skipped" in _backup_skipped(leader)
        skipped_after = time.monotonic() - cut
    finally:
        ha.isolate(leader, cut=False)
    print(f"isolated leader: not primary after {undecided_after:.1f}s, backup skipped after {skipped_after:.1f}s")
    assert skipped_after < TTL, skipped_after
    assert len(_labels(ha)) == 0
    ha.wait_leader(timeout=120)
    ha.wait_streaming(timeout=180)


def test_pause_then_a_manual_promote_is_a_split_brain(split_ha: HaCluster) -> None:
    """Maintenance mode, the replica promoted by hand: both nodes answer as primaries; role.split_brain fires on
    both and neither backs up. Fails on the old code: the leader still said primary and backed up. (On a cluster
    of its own: it leaves its cluster split.)"""
    ha = split_ha
    leader = ha.wait_leader()
    [replica] = [n for n in ha.nodes if n is not leader]
    ha.maintenance(True)
    assert node_role(_ctx(leader)).paused
    run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(replica.pgdata), "-w", "promote"]))
    wait_until(lambda: replica.patroni().get("role") in ("primary", "master"), timeout=60,
               what="Patroni to see the promoted replica")
    for n in (leader, replica):
        node = node_role(_ctx(n))
        assert node.role == Role.UNKNOWN and node.split_brain, (n.name, node.describe())
        assert "skipped" in _backup_skipped(n)
        assert SPLIT_BRAIN in alerts.firing(_ctx(n)), n.name
    assert len(_labels(ha)) == 0
    status = opsd(leader.conf, "status")
    assert "SPLIT BRAIN" in status.stdout and "paused" in status.stdout, status.stdout
