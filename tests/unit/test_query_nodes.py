"""The nodes a query-statistics snapshot reads (actions/queries/nodes.py): the local node by its Patroni member
name, the Patroni replicas by the address their PostgreSQL listens on, configured standbys once (one that is a
Patroni member too is read once, with its configured conninfo), Patroni not answering a problem line; the daemon
schedules the quiet job ``queries`` only when ``[queries]`` is enabled, and a standby's run skips itself."""

from __future__ import annotations

import json
from typing import Any

from opsd.actions.queries.nodes import Node, cluster_nodes
from opsd.actions.queries.snapshot import snapshot_job
from opsd.core.role import NodeRole, Role
from opsd.daemon.jobs import QUERIES, QUIET, enabled_jobs
from opsd_sandbox.procs import free_port
from tests.conftest import serve_get

MEMBERS = [{"name": "pg1", "role": "leader", "state": "running", "host": "10.0.0.1", "port": 5432},
           {"name": "pg2", "role": "replica", "state": "streaming", "host": "10.0.0.2", "port": 5432},
           {"name": "pg3", "role": "sync_standby", "state": "streaming", "host": "10.0.0.3", "port": 5433},
           {"name": "pg4", "role": "replica", "state": "stopped", "host": "", "port": 5432}]
ME = NodeRole(Role.PRIMARY, "patroni", "leader", name="pg1")


def test_patroni_members_and_configured_standbys(fake_ctx: Any) -> None:
    def reply(path: str) -> tuple[int, bytes]:
        return (200, json.dumps({"members": MEMBERS}).encode()) if path == "/cluster" else (404, b"{}")

    with serve_get(reply) as url:
        ctx = fake_ctx(patroni={"url": url}, queries={"standbys": ["host=10.0.0.2 port=5432 user=opsd",
                                                                   "host=reports.example port=6432"]})
        found = cluster_nodes(ctx, ME)
    assert found.problems == []
    assert found.nodes == [Node("pg1", True), Node("pg2", False, "host=10.0.0.2 port=5432 user=opsd"),
                           Node("pg3", False, "host=10.0.0.3 port=5433"),
                           Node("reports.example:6432", False, "host=reports.example port=6432")]


def test_patroni_not_answering_is_a_problem_line_and_configured_standbys_still_count(fake_ctx: Any) -> None:
    ctx = fake_ctx(patroni={"url": f"http://127.0.0.1:{free_port()}", "timeout": "1s"},
                   queries={"standbys": ["postgresql://replica.example:5433/app"]})
    found = cluster_nodes(ctx, ME)
    assert [n.name for n in found.nodes] == ["pg1", "replica.example:5433"]
    assert len(found.problems) == 1 and found.problems[0].startswith("standbys: Patroni at http://127.0.0.1")


def test_without_patroni_the_local_node_is_this_host(fake_ctx: Any) -> None:
    import socket

    found = cluster_nodes(fake_ctx(), NodeRole(Role.PRIMARY, "postgres", "pg_is_in_recovery() is false"))
    assert found.nodes == [Node(socket.gethostname(), True)]


def test_the_daemon_schedules_queries_quietly_when_enabled(fake_ctx: Any) -> None:
    assert QUERIES in QUIET
    assert QUERIES in [s.job for s in enabled_jobs(fake_ctx())]
    assert QUERIES not in [s.job for s in enabled_jobs(fake_ctx(queries={"enabled": False}))]
    assert QUERIES not in [s.job for s in enabled_jobs(fake_ctx(schedule={"queries": ""}))]
    assert QUERIES not in [s.job for s in enabled_jobs(fake_ctx(opsd={"role": "drill"}))]


def test_a_standby_skips_its_snapshot_without_a_connection(fake_ctx: Any) -> None:
    from dataclasses import replace

    ctx = replace(fake_ctx(), role=NodeRole(Role.STANDBY, "postgres", "pg_is_in_recovery() is true"))
    assert snapshot_job(ctx) == "skipped"  # fake_ctx fails any connection


def test_snapshots_fire_half_a_health_interval_away_from_the_probes(fake_ctx: Any) -> None:
    from datetime import timedelta

    from apscheduler.schedulers.background import BackgroundScheduler

    from opsd.daemon.service import Daemon

    ctx = fake_ctx(schedule={"health": "30s", "queries": "5m"})
    spec = next(s for s in enabled_jobs(ctx) if s.job == QUERIES)
    assert spec.phase == timedelta(seconds=15)
    daemon = Daemon(ctx, lambda: ctx.settings, lambda s: ctx)
    daemon.scheduler = BackgroundScheduler(timezone=ctx.settings.opsd.tz)
    daemon._schedule_jobs()
    jobs = {j.id: j.trigger for j in daemon.scheduler.get_jobs()}
    start = jobs["health"].start_date
    fires = [jobs[QUERIES].start_date + n * timedelta(minutes=5) for n in range(3)]
    assert all(abs(((f - start).total_seconds() % 30) - 15) < 1 for f in fires)
    # the first probe 30 s after the start, the first snapshot 5 min 15 s after it
    assert abs((fires[0] - start).total_seconds() - (300 + 15 - 30)) < 1


def test_a_window_much_longer_than_the_schedule_says_so(fake_ctx: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from opsd.actions.queries.snapshot import _long_window
    from opsd.adapters.stores.queries import SnapshotWrite

    ctx = fake_ctx(schedule={"queries": "5m"})
    at = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    for since, says in ((None, False), (at - timedelta(minutes=10), False), (at - timedelta(hours=2), True)):
        lines = _long_window(ctx, SnapshotWrite(node="pg1", taken_at=at, since=since, statements=True))
        assert bool(lines) is says
    assert "counted since its previous reading at 2026-11-02 10:00:00+0000" in lines[0]
