"""Query-statistics snapshots on real PostgreSQL 15 (issue 36 §1), through the scheduled action in-process: a
schema shaped like an app (a quoted camelCase table in its own schema, a partitioned table with a partition in
another tablespace, a second database that is read-only), a workload whose executions the test counts itself and
finds again exactly as deltas; pg_stat_statements_reset() between snapshots and an immediate-mode restart (the
table statistics discarded) counted exactly, never negative; a streaming standby (pg_basebackup -R) whose index
scans show under its own node, and a standby that cannot be read is loud; pg_stat_statements not preloaded is one
line and the tables are still snapshotted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from opsd import settings as settings_mod
from opsd.actions import alerts
from opsd.actions.queries.snapshot import ALERT, snapshot_job
from opsd.adapters.stores.queries import QueryStore
from opsd.context import Context, build
from opsd.core.records.queries import SnapshotInfo
from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, free_port, mkdir_pg, run
from tests.integration.helpers import PG_BIN, Cluster, wait_until

pytestmark = pytest.mark.integration

SELECT_QTY = 'SELECT qty FROM inv."stockMovements" WHERE id = %s'
UPDATE_QTY = 'UPDATE inv."stockMovements" SET qty = qty + 1 WHERE id = %s'


@dataclass
class Qs:
    cluster: Cluster
    ctx: Context
    store: QueryStore

    def app(self, dbname: str = "shop") -> psycopg.Connection[Any]:
        return psycopg.connect(host=str(self.cluster.sb.socket_dir), port=self.cluster.port, user="app",
                               dbname=dbname, autocommit=True)

    def run(self, sql: str, times: int, dbname: str = "shop") -> None:
        """``sql`` run ``times`` times in one session; returns once the session is gone (a backend flushes its
        table statistics when it ends)."""
        with self.app(dbname) as conn:
            for i in range(times):
                conn.execute(sql, (i % 50 + 1,))
        wait_until(lambda: self.cluster.psql("select count(*) from pg_stat_activity where usename = 'app'") == "0",
                   timeout=10, what="the workload's session to end")

    def snap(self, expect: str = "ok") -> SnapshotInfo:
        assert snapshot_job(self.ctx) == expect
        return self.store.snapshots(self.ctx.now() - timedelta(minutes=5), self.ctx.now(),
                                    node=self.node())[-1]

    def node(self) -> str:
        return self.store.snapshots(self.ctx.now() - timedelta(days=1), self.ctx.now())[0].node

    def queryid(self, like: str) -> int:
        return int(self.cluster.psql(f"select queryid from pg_stat_statements where query like '{like}%' "
                                     "and toplevel limit 1"))

    def calls(self, snap: SnapshotInfo) -> dict[int, int]:
        return {d.queryid: d.calls for d in self.store.statement_deltas(snap.id) if d.dbname == "shop"}


SCHEMA = """
create role app login;
create tablespace cold location '{ts}';
create database shop owner app;
create database reports;
"""
SHOP = """
create schema inv authorization app;
create table inv."stockMovements" (id int primary key, sku int not null, qty int not null);
insert into inv."stockMovements" select g, g % 40, 1 from generate_series(1, 2000) g;
create table public.orders (id int, at date not null) partition by range (at);
create table public."orders_2026" partition of public.orders for values from ('2026-01-01') to ('2027-01-01');
create table public.orders_old partition of public.orders for values from ('2000-01-01') to ('2026-01-01')
    tablespace cold;
grant all on all tables in schema inv, public to app;
analyze;
"""


@pytest.fixture(scope="module")
def qs(stack: Sandbox) -> Iterator[Qs]:
    cluster = Cluster(stack, "qsnap")
    cluster.initdb()
    try:
        with (cluster.pgdata / "postgresql.conf").open("a") as f:
            f.write("shared_preload_libraries = 'pg_stat_statements'\n")
        cluster.ctl("restart")
        ts = stack.root / "qsnap-cold"
        mkdir_pg(ts, 0o700)
        for stmt in SCHEMA.format(ts=ts).strip().split(";\n"):
            cluster.psql(stmt)
        cluster.psql("create extension pg_stat_statements")
        run(as_pg([str(PG_BIN / "psql"), "-h", str(stack.socket_dir), "-p", str(cluster.port), "-d", "shop",
                   "-v", "ON_ERROR_STOP=1", "-Xqc", SHOP]))
        run(as_pg([str(PG_BIN / "psql"), "-h", str(stack.socket_dir), "-p", str(cluster.port), "-d", "reports",
                   "-Xqc", "create table monthly (m date primary key); grant select on monthly to app; "
                           "alter database reports set default_transaction_read_only = on"]))
        ctx = build(settings_mod.load(str(cluster.conf)))
        yield Qs(cluster, ctx, QueryStore(ctx.history.db))
    finally:
        cluster.stop_quietly()


def test_exact_deltas_through_a_reset_and_an_immediate_restart(qs: Qs) -> None:
    qs.snap()  # a baseline (or the window since the previous test's last snapshot)
    qs.run(SELECT_QTY, 37)
    qs.run(UPDATE_QTY, 11)
    s = qs.snap()
    select, update = qs.queryid("SELECT qty FROM inv"), qs.queryid("UPDATE inv")
    got = qs.calls(s)
    assert (got[select], got[update]) == (37, 11) and s.statements and not s.reset
    with qs.ctx.history.db.connect() as c:
        texts = dict(c.execute("SELECT queryid, text FROM query_texts WHERE dbname = 'shop' AND rolname = 'app'")
                     .fetchall())
    assert texts[select] == 'SELECT qty FROM inv."stockMovements" WHERE id = $1'
    use = {(u.dbname, u.schemaname, u.relname, u.indexname): u.scans
           for u in qs.store.index_use(s.taken_at, qs.ctx.now() + timedelta(1)) if u.node == s.node}
    assert use["shop", "inv", "stockMovements", "stockMovements_pkey"] == 37 + 11

    # pg_stat_statements_reset() between two snapshots: counted from the reset (more calls after it than before:
    # the difference would say 8), never 45 - 57
    qs.run(SELECT_QTY, 20)
    qs.cluster.psql("select pg_stat_statements_reset()")
    qs.run(SELECT_QTY, 45)
    qs.run(UPDATE_QTY, 2)
    s = qs.snap()
    got = qs.calls(s)
    assert (got[select], got[update]) == (45, 2) and s.reset
    assert any("pg_stat_statements was reset" in p for p in s.problems)
    assert all(d.calls >= 0 and d.total_ms >= 0 for d in qs.store.statement_deltas(s.id))

    # an immediate restart: pg_stat_statements keeps its counters (the postmaster writes them out), the table
    # statistics are discarded: statements exact (3 + 130), index scans from the restart (130, more than the 115
    # counted before it: the difference would say 15)
    qs.run(SELECT_QTY, 3)
    qs.cluster.ctl("restart", "-m", "immediate")
    qs.run(SELECT_QTY, 130)
    s = qs.snap()
    assert qs.calls(s)[select] == 133
    assert any("statistics discarded" in p and "shop" in p for p in s.problems), s.problems
    after = {(u.relname, u.indexname): u.scans for u in qs.store.index_use(s.taken_at, qs.ctx.now() + timedelta(1))
             if u.node == s.node and u.dbname == "shop"}
    assert after["stockMovements", "stockMovements_pkey"] == 130

def test_names_partitions_tablespaces_and_a_read_only_database_come_through(qs: Qs) -> None:
    qs.snap()
    qs.run('SELECT count(*) FROM public."orders" WHERE id = %s', 3)
    qs.run("select * from monthly where m > now() - %s * interval '1 day'", 1, "reports")
    s = qs.snap()
    with qs.ctx.history.db.connect() as c:
        seen = {tuple(r) for r in c.execute("SELECT kind, dbname, schemaname, relname, indexname FROM relation_seen "
                                            "WHERE node = ?", (s.node,))}
        moved = {(r[0], r[1], r[2]): r[3] for r in c.execute(
            "SELECT dbname, schemaname, relname, seq_scan + idx_scan FROM relation_stats WHERE snapshot_id = ? "
            "AND kind = 'table'", (s.id,))}
    assert {("table", "shop", "inv", "stockMovements", ""), ("index", "shop", "inv", "stockMovements",
                                                              "stockMovements_pkey"),
            ("table", "shop", "public", "orders_2026", ""), ("table", "shop", "public", "orders_old", ""),
            ("table", "reports", "public", "monthly", "")} <= seen
    assert moved[("shop", "public", "orders_2026")] == 3 and moved[("shop", "public", "orders_old")] == 3
    assert moved[("reports", "public", "monthly")] == 1
    sizes = {(t.dbname, t.relname): t.size_bytes for t in qs.store.table_sizes(s.taken_at.date(), s.taken_at.date())}
    assert sizes["shop", "stockMovements"] > 0 and ("shop", "orders_old") in sizes


def test_a_standby_counts_its_own_index_scans_and_one_not_read_is_loud(qs: Qs) -> None:
    sb, port = qs.cluster.sb, free_port()
    data = sb.root / "qsnap-standby"
    mkdir_pg(data, 0o700)
    mkdir_pg(sb.root / "qsnap-standby-cold", 0o700)
    run(as_pg([str(PG_BIN / "pg_basebackup"), "-h", str(sb.socket_dir), "-p", str(qs.cluster.port), "-U",
               "postgres", "-D", str(data), "-R", "-X", "stream", "-c", "fast",
               f"--tablespace-mapping={sb.root / 'qsnap-cold'}={sb.root / 'qsnap-standby-cold'}"]), timeout=120)
    with (data / "postgresql.conf").open("a") as f:
        f.write(f"port = {port}\n")
    ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(sb.root / "pglog" / "qsnap-standby.log"), "-w"]
    run(as_pg([*ctl, "start"]))
    try:
        name = f"{sb.socket_dir}:{port}"
        conninfo = f"host={sb.socket_dir} port={port} user=postgres"
        q = qs.ctx.settings.queries.model_copy(update={"standbys": [conninfo]})
        ctx = replace(qs.ctx, settings=qs.ctx.settings.model_copy(update={"queries": q}))
        standby = Qs(qs.cluster, ctx, qs.store)
        assert snapshot_job(ctx) == "ok"  # the standby's baseline
        since = ctx.now()
        with psycopg.connect(host=str(sb.socket_dir), port=port, user="app", dbname="shop",
                             autocommit=True) as conn:
            for i in range(6):
                conn.execute(SELECT_QTY, (i + 1,))
        wait_until(lambda: snapshot_job(ctx) == "ok" and _scans(standby, name, since) == 6, timeout=30,
                   what="the standby's index scans")
        assert _scans(standby, qs.node(), since) == 0  # not the primary's
        assert [i for i in qs.store.snapshots(since, ctx.now(), node=name) if i.statements] == []
        run(as_pg([*ctl, "-m", "immediate", "stop"]))
        assert snapshot_job(ctx) == "failed"
        gone = qs.store.snapshots(since, ctx.now() + timedelta(1), node=name)[-1]
        assert any("not read" in p for p in gone.problems)
        local = qs.store.snapshots(since, ctx.now() + timedelta(1), node=qs.node())[-1]  # the others go on
        assert local.statements and not any("not read" in p for p in local.problems)
        assert ALERT in alerts.firing(ctx)
        assert snapshot_job(qs.ctx) == "ok" and ALERT not in alerts.firing(ctx)  # the standby left: resolved
    finally:
        run(as_pg([*ctl, "-m", "immediate", "stop"]), check=False)


def _scans(q: Qs, node: str, since: Any) -> int:
    return sum(u.scans for u in q.store.index_use(since, q.ctx.now() + timedelta(1))
               if u.node == node and u.indexname == "stockMovements_pkey")


def test_without_pg_stat_statements_preloaded_one_line_and_tables_still_snapshotted(qs: Qs) -> None:
    conf = qs.cluster.pgdata / "postgresql.conf"
    before = conf.read_text()
    conf.write_text(before.replace("shared_preload_libraries = 'pg_stat_statements'\n", ""))
    qs.cluster.ctl("restart")
    try:
        qs.snap()
        qs.run('SELECT count(*) FROM inv."stockMovements" WHERE sku = %s', 2)
        s = qs.snap()
        lines = [p for p in s.problems if p.startswith("statements")]
        assert lines == ["statements: pg_stat_statements is not in shared_preload_libraries: no statement "
                         "statistics (opsd setup --query-stats, then a restart)"]
        assert not s.statements and qs.store.statement_deltas(s.id) == []
        with qs.ctx.history.db.connect() as c:
            seq = c.execute("SELECT seq_scan FROM relation_stats WHERE snapshot_id = ? AND relname = ? AND "
                            "kind = 'table'", (s.id, "stockMovements")).fetchone()
        assert seq is not None and seq[0] == 2
    finally:
        conf.write_text(before)
        qs.cluster.ctl("restart")


def test_a_role_without_pg_read_all_stats_counts_what_it_cannot_see_and_says_so(qs: Qs) -> None:
    qs.cluster.psql("do $$ begin create role watcher login; exception when duplicate_object then null; end $$")
    pg = qs.ctx.settings.postgres.model_copy(update={"user": "watcher"})
    ctx = build(qs.ctx.settings.model_copy(update={"postgres": pg}))
    watcher = Qs(qs.cluster, ctx, qs.store)
    first = watcher.snap()  # the texts of other roles became hidden: a new baseline for the statements
    assert not first.statements and any("became hidden" in p for p in first.problems)
    watcher.run(SELECT_QTY, 9)
    s = watcher.snap()
    hidden = [d for d in qs.store.statement_deltas(s.id) if (d.queryid, d.dbname, d.rolname) == (0, "shop", "app")]
    assert [d.calls for d in hidden] == [9]
    assert any("lacks pg_read_all_stats" in p for p in s.problems)
    with qs.ctx.history.db.connect() as c:
        text = c.execute("SELECT text FROM query_texts WHERE queryid = 0 AND dbname = 'shop' AND rolname = 'app'"
                         ).fetchone()
    assert text is not None and text[0] == "<insufficient privilege>"
