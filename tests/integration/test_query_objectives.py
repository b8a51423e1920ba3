"""The query objectives against ground truth: a cluster of its own with pg_stat_statements preloaded and the jsonlog
duration log at 100 ms, a small supply-chain schema (orders, a large "stockMovements" without an index on sku),
and pgbench workloads run one by one so the test knows every execution: fast lookups and inserts (the extended
and the simple protocol), an unindexed scan of the stock movements (prepared), and a reporting query that sleeps
(a customer's e-mail in its text). Snapshots are taken by the daemon's job (actions/queries/snapshot.py).

opsd's executions over each threshold equal the test's, by statement and by objective; the slowest statement is
named first; `opsd queries --json` says the same; a log file rotated away before it was read makes the objective
unknown, never met, and so is one whose statements run under a role of their own log_min_duration_statement
= -1; the e-mail is in PostgreSQL's log and nowhere in opsd's state, output or logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, mkdir_pg, run
from tests.conftest import opsd
from tests.integration.helpers import PG_BIN, Cluster, wait_until

pytestmark = pytest.mark.integration

SECRET = "jane.doe@example.com"
OBJECTIVES = """
[queries]
objectives = [
  {name = "all", threshold = "100ms", target = 0.95},
  {name = "shop", threshold = "100ms", target = 0.95, database = "supply", role = "app"},
  {name = "reporting", threshold = "300ms", target = 0.95, role = "reporting"},
]
"""
SCHEMA = f"""
CREATE ROLE app LOGIN; CREATE ROLE reporting LOGIN;
CREATE DATABASE supply OWNER app;
\\c supply
SET ROLE app;
CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL, status text NOT NULL DEFAULT 'open');
INSERT INTO orders SELECT g, 'customer-' || g || '@example.org', 'open' FROM generate_series(1, 2000) g;
UPDATE orders SET customer = '{SECRET}' WHERE id = 1234;
CREATE TABLE "stockMovements" (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, sku text NOT NULL,
                               qty int NOT NULL, note text);
INSERT INTO "stockMovements" (sku, qty, note)
  SELECT 'SKU-' || (g % 5000), g % 7, 'movement ' || g FROM generate_series(1, 1000000) g;
VACUUM ANALYZE "stockMovements";
GRANT SELECT ON orders TO reporting;
"""
# name -> (script, protocol, role, transactions per client, clients); every execution of the slow ones is far over
# its threshold (a case-insensitive lookup no index serves: 1M rows scanned and lowered without parallel workers,
# ~400 ms here; pg_sleep(1)), every one of the fast ones far under (an index lookup, a one-row insert). The
# reporting query is the slowest by every measure: most executions over, longest mean and total.
WORKLOADS = {
    "lookup": ("\\set id random(1, 2000)\nSELECT status FROM orders WHERE id = :id;\n", "extended", "app", 150, 2),
    "move": ("\\set k random(1, 5000)\nINSERT INTO \"stockMovements\" (sku, qty, note) VALUES ('SKU-' || :k, 1, "
             "'pgbench');\n", "simple", "app", 100, 2),
    "scan": ("\\set k random(1, 5000)\nSELECT sum(qty) FROM \"stockMovements\" "
             "WHERE lower(sku) = lower('sku-' || :k);\n", "prepared", "app", 2, 2),
    "report": (f"SELECT o.id, pg_sleep(1) FROM orders o WHERE o.customer = '{SECRET}';\n", "simple", "reporting",
               4, 2),
}


@dataclass
class Ran:
    calls: int
    ambiguous: int  # executions the client saw take 100 ms or more: the server may have logged them (load)


@pytest.fixture(scope="module")
def cluster(stack: Sandbox) -> Iterator[Cluster]:
    c = Cluster(stack, "qobj")
    c.write_conf(c.conf, schedule={"full": "", "check": ""}, extra=OBJECTIVES)
    c.initdb()
    try:
        with (c.pgdata / "postgresql.conf").open("a") as f:
            f.write("shared_preload_libraries = 'pg_stat_statements'\nlogging_collector = on\n"
                    "log_destination = 'jsonlog'\nlog_min_duration_statement = 100\n"
                    "max_parallel_workers_per_gather = 0\n")
        c.ctl("restart")
        c.psql("CREATE EXTENSION pg_stat_statements")
        schema = stack.root / "qobj-schema.sql"
        schema.write_text(SCHEMA)
        schema.chmod(0o644)
        run(as_pg([str(PG_BIN / "psql"), "-h", str(stack.socket_dir), "-p", str(c.port), "-XqAt", "-v",
                   "ON_ERROR_STOP=1", "-f", str(schema)]))
        yield c
    finally:
        c.stop_quietly()


def pgbench(c: Cluster, name: str, work: Path) -> Ran:
    script, mode, role, tx, clients = WORKLOADS[name]
    path = work / f"{name}.sql"
    path.write_text(script)
    path.chmod(0o644)
    run(as_pg([str(PG_BIN / "pgbench"), "-h", str(c.sb.socket_dir), "-p", str(c.port), "-U", role, "-n", "-M", mode,
               "-f", str(path), "-t", str(tx), "-c", str(clients), "-l", f"--log-prefix={work}/{name}", "supply"]))
    # the per-transaction log: client, transaction, latency in microseconds, ... (one statement a transaction)
    latencies = [int(line.split()[2]) for f in work.glob(f"{name}.*") if f.suffix != ".sql"
                 for line in f.read_text().splitlines()]
    assert len(latencies) == tx * clients
    return Ran(tx * clients, sum(1 for us in latencies if us >= 100_000))


def _logged_durations(c: Cluster) -> int:
    return sum(f.read_bytes().count(b'"message":"duration: ') for f in (c.pgdata / "log").glob("*.json"))


def snapshot(ctx: Any, c: Cluster, logged: int) -> int:
    """The daemon's snapshot job, once PostgreSQL's logging collector has written ``logged`` duration lines."""
    from opsd.actions.queries.snapshot import snapshot_job

    try:
        wait_until(lambda: _logged_durations(c) >= logged, timeout=30, what=f"{logged} duration lines in the log")
    except AssertionError:
        lines = [json.loads(line) for f in (c.pgdata / "log").glob("*.json") for line in f.read_text().splitlines()]
        raise AssertionError("the log has: " + ", ".join(f"{d['message'][10:60]} ({d.get('user')})" for d in lines
                                                         if d["message"].startswith("duration:"))) from None
    assert snapshot_job(ctx) == "ok"
    with ctx.history.db.connect() as db:
        return int(db.execute("SELECT max(id) FROM query_snapshots").fetchone()[0])


def _state_of(ctx: Any, sid: int) -> tuple[str, list[str], datetime]:
    with ctx.history.db.connect() as db:
        r = db.execute("SELECT log_state, problems, taken_at FROM query_snapshots WHERE id = ?", (sid,)).fetchone()
    return r[0], json.loads(r[1]), datetime.fromisoformat(r[2])


def test_objectives_counted_exactly_against_pgbench(cluster: Cluster, capfd: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from opsd import settings
    from opsd.actions.queries import snapshot as job
    from opsd.actions.queries.objectives import objective_report
    from opsd.context import build

    order: list[str] = []  # the log is read right after the statements, before every database's tables
    real_relations, real_log = job.read_relations, job.slowlog.read_log
    monkeypatch.setattr(job, "read_relations", lambda *a, **k: (order.append("relations"), real_relations(*a, **k))[1])
    monkeypatch.setattr(job.slowlog, "read_log", lambda *a, **k: (order.append("log"), real_log(*a, **k))[1])

    c = cluster
    work = c.sb.root / "qobj-work"
    mkdir_pg(work, 0o755)
    ctx = build(settings.load(str(c.conf)))
    base = _logged_durations(c)  # the schema's own slow statements, before the first snapshot
    s0 = snapshot(ctx, c, base)
    ran = {name: pgbench(c, name, work) for name in ("report", "scan")}
    s1 = snapshot(ctx, c, base + 12)
    assert order == ["log", "relations"] * 2
    ran |= {name: pgbench(c, name, work) for name in ("lookup", "move")}
    s2 = snapshot(ctx, c, base + 12)
    assert [_state_of(ctx, s)[0] for s in (s1, s2)] == ["complete", "complete"], [_state_of(ctx, s) for s in (s1, s2)]
    since, until = _state_of(ctx, s0)[2], _state_of(ctx, s2)[2] + timedelta(seconds=1)

    rep = {o.name: o for o in objective_report(ctx, since, until).objectives}
    fast_over = ran["lookup"].ambiguous + ran["move"].ambiguous  # 0 unless the machine stalled a client
    shop = rep["shop"]
    assert shop.calls == sum(ran[n].calls for n in ("lookup", "move", "scan")) == 504
    assert ran["scan"].calls <= shop.over <= ran["scan"].calls + fast_over and shop.state == "met"
    reporting = rep["reporting"]
    assert (reporting.calls, reporting.over, reporting.state) == (8, 8, "missed")
    top = rep["all"].top
    assert "pg_sleep" in (top[0].text or "") and (top[0].over, top[0].calls, top[0].rolname) == (8, 8, "reporting")
    assert top[0].mean_ms is not None and top[0].mean_ms >= 1000
    assert '"stockMovements"' in (top[1].text or "") and (top[1].over, top[1].calls) == (4, 4)
    assert top[1].shared_read + top[1].shared_hit > 4 * 6000  # the whole table, each time
    assert SECRET not in (top[0].text or "")

    res = opsd(c.conf, "queries", "--since", since.isoformat(), "--json")
    assert res.returncode == 1 and "objective(s) not met: reporting missed" in res.stderr, res.stderr
    printed = {o["name"]: o for o in json.loads(res.stdout)["objectives"]}
    assert (printed["reporting"]["over"], printed["reporting"]["state"]) == (8, "missed")
    assert printed["shop"]["calls"] == 504 and printed["shop"]["over"] == shop.over
    assert printed["all"]["top"][0]["queryid"] == top[0].queryid
    text = opsd(c.conf, "queries", "--since", since.isoformat(), "--objective", "reporting")
    assert text.returncode == 1 and "objective reporting: 95% under 300 ms, role reporting: MISSED" in text.stdout

    # a role's own log_min_duration_statement hides its slow executions: the objectives covering it are unknown
    c.psql("ALTER ROLE reporting SET log_min_duration_statement = -1")
    s4 = snapshot(ctx, c, 0)
    c.psql("ALTER ROLE reporting RESET log_min_duration_statement")
    hidden = {o.name: o for o in objective_report(ctx, _state_of(ctx, s2)[2] + timedelta(seconds=1),
                                                  _state_of(ctx, s4)[2] + timedelta(seconds=1)).objectives}
    assert (hidden["reporting"].state, hidden["all"].state, hidden["shop"].state) == ("unknown", "unknown",
                                                                                     "no_statements")
    assert hidden["reporting"].reasons == ["not counted exactly: ALTER ROLE reporting SET log_min_duration_statement "
                                           "= -1: log_min_duration_statement is -1 (no duration logged)"]

    # the duration log rotated, and the file opsd was reading removed before the next snapshot read it
    tracked = sorted((c.pgdata / "log").glob("*.json"), key=lambda f: f.stat().st_mtime_ns)[-1]
    logged_secret = SECRET.encode() in tracked.read_bytes()
    c.psql("SELECT pg_sleep(0.2)")
    c.psql("SELECT pg_rotate_logfile()")
    wait_until(lambda: len(list((c.pgdata / "log").glob("*.json"))) > 1, timeout=10, what="a new log file")
    tracked.unlink()
    s3 = snapshot(ctx, c, 0)
    state, problems, _ = _state_of(ctx, s3)
    assert state == "unknown" and any(f"{tracked} was rotated away" in p for p in problems), problems
    after = {o.name: o for o in objective_report(ctx, since, ctx.now()).objectives}
    assert after["reporting"].state == "unknown" and after["all"].state == "unknown"
    assert any("rotated away" in r for r in after["all"].reasons)
    res = opsd(c.conf, "queries", "--since", since.isoformat(), "--json")
    assert res.returncode == 1 and json.loads(res.stdout)["objectives"][0]["state"] == "unknown"

    # the e-mail was in PostgreSQL's log (the file removed above), and is nowhere opsd writes
    assert logged_secret
    for f in c.state.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
    out = capfd.readouterr()
    for shown in (out.out, out.err, res.stdout, res.stderr, text.stdout, text.stderr):
        assert SECRET not in shown
