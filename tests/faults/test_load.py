"""Load (issue 14, fault 6): 1000 client connections through PgBouncer (transaction pooling, 20 server
connections), TPC-B-like transactions at a few hundred per second, while a full backup and then a recovery drill
run, and the health sampler probes every second as the daemon would. Nothing the clients do fails, the backup
and the drill pass, and every health sample completes within its own timeout (no probe problem). The timings are
not judged here (bench/load.py measures them against an unloaded baseline)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from opsd import settings as settings_mod
from opsd.context import build
from opsd_sandbox import Sandbox
from opsd_sandbox.load import Pgbench, Sampler, pgbench_init
from tests.conftest import opsd
from tests.integration.helpers import Cluster, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.slow]
CLIENTS, RATE = 1000, 300


@pytest.fixture
def loaded(stack: Sandbox) -> Iterator[tuple[Cluster, int]]:
    c = Cluster(stack, "load")
    c.initdb()
    bouncer = 0
    try:
        assert opsd(c.conf, "setup", "--restart").returncode == 0
        pgbench_init(stack.socket_dir, c.port, scale=5)
        bouncer = stack.start_pgbouncer(pool_size=20, pool_mode="transaction", pg_port=c.port,
                                        max_client_conn=CLIENTS + 100)
        c.write_conf(c.conf, extra=f'\n[pgbouncer]\nhost = "127.0.0.1"\nport = {bouncer}\nadmin_user = "opsd_admin"\n')
        yield c, bouncer
    finally:
        if bouncer:
            stack.stop_pgbouncer()
        c.stop_quietly()


def test_a_backup_and_a_drill_under_1000_pooled_clients(loaded: tuple[Cluster, int]) -> None:
    c, bouncer = loaded
    bench = Pgbench(bouncer, clients=CLIENTS, rate=RATE, log=c.sb.root / "pglog" / "load-pgbench.log")
    try:
        wait_until(bench.running, timeout=120, what="1000 pgbench clients connected through PgBouncer")
        with Sampler(build(settings_mod.load(str(c.conf))), interval=1.0) as samples:
            backup = opsd(c.conf, "backup", "--type", "full", timeout=600)
            drill = opsd(c.conf, "drill", "run", "--target", "latest", "--json", timeout=900)
    finally:
        load = bench.finish()
    assert backup.returncode == 0, backup.stderr[-2000:]
    assert drill.returncode == 0, drill.stderr[-2000:]
    assert json.loads(drill.stdout)["passed"]
    assert load.clean, load  # no failed transaction, no aborted client, no error line
    assert load.seconds >= 10 and load.transactions > RATE * 5, load  # the load really ran, at about its rate
    assert samples.durations_ms and samples.problems == [], samples.problems  # each sample within its timeout
    assert max(samples.pool_clients, default=0) >= CLIENTS, samples.pool_clients  # it saw them through PgBouncer
