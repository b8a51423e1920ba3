"""A flaky S3 endpoint (issue 14, fault 1): a front that answers a share of requests with 503 SlowDown and adds
latency. pgBackRest's retries carry archiving and a full backup through; ``opsd check`` shows the degradation
as a warning (its own probe, never retried, sees what pgBackRest's retries hide) without going critical; no WAL
is lost; and a backup that fails after every retry is recorded with pgBackRest's error."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from opsd.adapters.stores.runs import History
from opsd_sandbox import Sandbox
from opsd_sandbox.flaky import FlakyS3
from tests.conftest import opsd
from tests.faults.helpers import start_copying
from tests.integration.helpers import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.slow]
_NAMES = itertools.count(1)


@pytest.fixture
def flaky(stack: Sandbox) -> Iterator[tuple[Cluster, FlakyS3]]:
    name = f"flakys3{next(_NAMES)}"  # a cluster, stanza and front of each test's own
    front = stack.flaky_s3(name)
    c = Cluster(stack, name)
    try:
        stack.write_pgbackrest_conf(path=c.pgbr, stanza=c.name, pg_path=c.pgdata, pg_port=c.port,
                                    endpoint_port=front.port)
        # pgBackRest retries 503s for io-timeout (60 s by default), then retries the file (job-retry): keep it short;
        # four processes copy the files, so one's wait before a retry leaves the others at work (not two: a full
        # backup here took a minute, most of it waiting to retry)
        c.pgbr.write_text(c.pgbr.read_text().replace("[global]", "[global]\nio-timeout=8\njob-retry=0", 1)
                          .replace("process-max=2", "process-max=4"))
        c.conf.write_text(c.conf.read_text() + '\n[check]\ns3_probes = 12\ns3_probe_latency = "2s"\n')
        c.initdb()
        res = opsd(c.conf, "setup", "--restart")
        assert res.returncode == 0, res.stderr[-2000:]
        yield c, front
    finally:
        c.stop_quietly()
        front.close()


def _check(c: Cluster) -> tuple[int, dict[str, dict[str, Any]]]:
    res = opsd(c.conf, "check", "--json")
    return res.returncode, {r["name"]: r for r in json.loads(res.stdout)["results"]}


def test_retries_carry_archiving_and_a_backup_through_a_flaky_endpoint(flaky: tuple[Cluster, FlakyS3]) -> None:
    c, front = flaky
    front.set(share=0.3, delay=0.02)
    c.psql("create table orders as select g as id, md5(g::text) as ref from generate_series(1, 100000) g")
    for _ in range(3):
        c.psql("insert into orders values (0, 'x'); select pg_switch_wal()")
    res = opsd(c.conf, "backup", "--type", "full")
    assert res.returncode == 0, res.stderr[-2000:]
    c.switch_and_wait()  # archiving keeps up through the refusals

    front.set(share=0.5, delay=0.02)  # 12 probes: all pass or all fail once in 4000 runs
    rc, results = _check(c)
    endpoint = results["repository.endpoint"]
    assert endpoint["status"] == "warning", endpoint
    assert "degraded" in endpoint["message"] and "503 SlowDown x" in endpoint["message"], endpoint
    assert [n for n, r in results.items() if r["status"] == "critical"] == [] and rc == 0, results
    assert 0 < endpoint["details"]["failed"] < endpoint["details"]["requests"] == 12

    requests, refused = front.counts()
    assert refused > 20 and requests > refused, (requests, refused)  # the faults really were injected
    front.set(share=0.0)
    window = json.loads(opsd(c.conf, "window", "--json").stdout)
    assert window["gaps"] == [] and window["intervals"], window
    assert results["archive.archiver"]["status"] == "ok" and c.labels()


def test_a_backup_refused_after_every_retry_is_recorded_with_pgbackrests_error(
        flaky: tuple[Cluster, FlakyS3]) -> None:
    c, front = flaky
    c.psql("create table orders as select g as id, repeat(md5(g::text), 8) as ref from generate_series(1, 200000) g")
    front.set(share=0.0, delay=0.05)  # slow enough to be caught copying files
    proc = start_copying(c.sb.root / "pgbr" / "log" / f"{c.name}-backup.log", c.conf)
    front.set(share=1.0)  # then every request is refused, beyond pgBackRest's io-timeout
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err[-2000:]
    line = next(x for x in err.splitlines() if x.startswith("opsd: error:"))
    assert "pgbackrest backup failed [" in line and "503" in line, line
    run = History(c.state, "postgres").last("backup-full")
    assert run is not None and run.outcome == "failed" and "503" in (run.error or ""), run
    assert c.labels() == []  # nothing partial is listed
    rc, results = _check(c)
    assert results["repository.endpoint"]["status"] == "critical" and rc == 1, results["repository.endpoint"]
    assert "all 12 requests failed (503 SlowDown x12)" in results["repository.endpoint"]["message"]

    front.set(share=0.0)  # the endpoint recovers: the next backup and the check are clean
    assert opsd(c.conf, "backup", "--type", "full").returncode == 0
    assert len(c.labels()) == 1
    _rc, results = _check(c)
    assert results["repository.endpoint"]["status"] == "ok", results["repository.endpoint"]
