"""``opsd indexes`` on a real PostgreSQL 15 primary and its streaming standby (pg_basebackup -R), with
pg_stat_statements, pg_qualstats and hypopg, on a supply-chain schema: a quoted camelCase table, a partitioned table,
a duplicate and a covered index, a unique index failed by CREATE INDEX CONCURRENTLY, an index scanned only on the
standby (not unused), indexes scanned on neither node (unused, once both nodes' snapshots cover the minimum span),
a NOT VALID constraint, and a query scanning a large table on an unindexed column (a missing index proven with a
hypothetical one). Every statement opsd suggests is then run here (never by opsd) and the findings are gone."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsd import settings as settings_mod
from opsd.context import build
from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, free_port, run
from tests.conftest import opsd
from tests.integration.helpers import PG_BIN, Cluster, wait_until
from tests.integration.test_roles import Standby

pytestmark = pytest.mark.integration

SCHEMA = """
CREATE ROLE app LOGIN;
CREATE ROLE opsd_advice LOGIN; GRANT app TO opsd_advice;
CREATE EXTENSION pg_qualstats; CREATE EXTENSION hypopg;
CREATE TABLE "stockMovements" ("movementId" bigserial PRIMARY KEY, "skuId" int NOT NULL, "warehouseId" int NOT NULL,
                               qty int NOT NULL, "movedAt" timestamptz NOT NULL DEFAULT now());
INSERT INTO "stockMovements" ("skuId", "warehouseId", qty)
  SELECT i % 5000, i % 400, 1 + i % 7 FROM generate_series(1, 120000) i;
CREATE INDEX "stockMovements_skuId_idx" ON "stockMovements" ("skuId");
CREATE TABLE orders (id int PRIMARY KEY, customer_id int, status text, created_at date, note text, qty int);
INSERT INTO orders SELECT i, i % 300, 's' || i % 5, date '2026-01-01' + i % 200, 'n' || i, 1 + i % 3
  FROM generate_series(1, 3000) i;
CREATE INDEX "ordersCustomer" ON orders (customer_id);
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
CREATE INDEX "ordersStatus" ON orders (status);
CREATE INDEX orders_status_created_idx ON orders (status, created_at);
CREATE INDEX orders_note_idx ON orders (note);
ALTER TABLE orders ADD CONSTRAINT "qtyPositive" CHECK (qty > 0) NOT VALID;
CREATE TABLE customers (id int PRIMARY KEY);
INSERT INTO customers SELECT generate_series(0, 299);
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);
CREATE SCHEMA opsd; CREATE TABLE opsd.heartbeat (at timestamptz NOT NULL, node text);
INSERT INTO opsd.heartbeat SELECT now() - i * interval '1 min', 'n' FROM generate_series(1, 3000) i;
CREATE INDEX heartbeat_at ON opsd.heartbeat (at); CREATE INDEX heartbeat_at_node ON opsd.heartbeat (at, node);
CREATE TABLE skus (code text, active boolean);
INSERT INTO skus SELECT 'c' || i % 50, i % 2 = 0 FROM generate_series(1, 100) i;
CREATE INDEX "skuLowerCode" ON skus (lower(code)) WHERE active;
CREATE TABLE lines (id int PRIMARY KEY, sku int);
INSERT INTO lines SELECT i, i % 100 FROM generate_series(1, 2000) i;
CREATE INDEX lines_sku_idx ON lines (sku);
CREATE TABLE shipments (id int, "shippedOn" date, carrier text) PARTITION BY RANGE ("shippedOn");
CREATE TABLE shipments_2025 PARTITION OF shipments FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE shipments_2026 PARTITION OF shipments FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO shipments SELECT i, date '2025-06-01' + i % 300, 'k' || i % 4 FROM generate_series(1, 2000) i;
CREATE INDEX "shipmentsCarrier" ON shipments (carrier);
GRANT SELECT ON ALL TABLES IN SCHEMA public TO app;
ANALYZE;
"""


def psql(port: int, sql: str, db: str = "supply", check: bool = True) -> Any:
    return run(as_pg([str(PG_BIN / "psql"), "-h", SOCKET[0], "-p", str(port), "-d", db, "-XAtc", sql]),
               check=check)


SOCKET: list[str] = []  # the sandbox's socket directory, set by the fixture


@pytest.fixture(scope="module")
def pair(stack: Sandbox) -> Iterator[tuple[Cluster, Standby]]:
    SOCKET[:] = [str(stack.socket_dir)]
    primary = Cluster(stack, "ixs")
    primary.initdb()
    standby = None
    try:
        with (primary.pgdata / "postgresql.conf").open("a") as f:
            f.write("shared_preload_libraries = 'pg_stat_statements,pg_qualstats'\npg_qualstats.sample_rate = 1\n"
                    "compute_query_id = on\nmax_parallel_workers_per_gather = 0\n")
        primary.ctl("restart")
        primary.psql("CREATE EXTENSION pg_stat_statements")
        primary.psql("CREATE DATABASE supply")
        psql(primary.port, SCHEMA)
        # a unique index built concurrently over duplicate codes fails and stays behind, invalid
        assert psql(primary.port, 'CREATE UNIQUE INDEX CONCURRENTLY "skusCodeKey" ON skus (code)',
                    check=False).returncode != 0
        standby = Standby(primary)
        lsn = primary.psql("SELECT pg_current_wal_lsn()")
        wait_until(lambda: standby.psql(f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'") == "t", timeout=60,
                   what="the standby to replay the schema")
        base = '\n[queries]\nunused_min_span = "2s"\nseq_scan_rows = 1000\n'
        primary.write_conf(primary.conf, extra=(
            base + 'advice_user = "opsd_advice"\n'
            f'standbys = ["host={stack.socket_dir} port={standby.port} user=postgres dbname=postgres"]\n'))
        primary.write_conf(primary.conf.with_name("opsd-ixs-bare.toml"), extra=base)  # neither: see below
        yield primary, standby
    finally:
        if standby is not None:
            standby.stop()
        primary.stop_quietly()


def snapshot(primary: Cluster) -> None:
    from opsd.actions.queries.snapshot import snapshot_job

    assert snapshot_job(build(settings_mod.load(str(primary.conf)))) == "ok"


def report(primary: Cluster, *args: str) -> tuple[int, dict[str, Any]]:
    res = opsd(primary.conf, "indexes", "--json", *args)
    assert res.returncode in (0, 1), res.stderr[-2000:]
    return res.returncode, json.loads(res.stdout)


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in rows}


def test_indexes_on_a_primary_and_its_standby(pair: tuple[Cluster, Standby]) -> None:
    primary, standby = pair
    snapshot(primary)  # each node's first snapshot: the baseline, no delta yet
    rc, first = report(primary)
    assert rc == 1 and "skusCodeKey" in by_name(first["invalid"])
    verdict = first["unused_verdict"]
    assert not verdict["decided"] and verdict["reason"].startswith("no verdict: statistics cover")
    assert "unread" in verdict["reason"] and first["unused"] == []
    started = time.monotonic()

    # the workload: a large table scanned on an unindexed column by the application's role; the standby alone
    # reads lines by its index; the primary reads stockMovements by skuId and writes orders
    for w in range(12):
        run(as_pg([str(PG_BIN / "psql"), "-h", SOCKET[0], "-p", str(primary.port), "-U", "app", "-d", "supply",
                   "-XAtc", f'SELECT count(*) FROM "stockMovements" WHERE "warehouseId" = {w}']))
    psql(primary.port, 'SELECT count(*) FROM "stockMovements" WHERE "skuId" = 7')
    psql(primary.port, "INSERT INTO orders SELECT i, 1, 's1', date '2026-02-01', 'x', 1 "
                       "FROM generate_series(5001, 5100) i")
    psql(standby.port, "SET enable_seqscan = off; SELECT count(*) FROM lines WHERE sku = 5")
    for _ in range(3):  # opsd's own table, scanned whole: never a missing index
        psql(primary.port, "SELECT count(*) FROM opsd.heartbeat WHERE node = 'x'")
    time.sleep(max(0.0, 2.5 - (time.monotonic() - started)))
    snapshot(primary)

    rc, rep = report(primary)
    assert rc == 1, "an invalid index is exit 1"
    assert rep["unused_verdict"]["decided"], rep["unused_verdict"]
    assert [n["read"] for n in rep["unused_verdict"]["nodes"]] == [True, True]
    unused = by_name(rep["unused"])
    assert {"orders_note_idx", "shipmentsCarrier", "skuLowerCode"} <= set(unused), unused.keys()
    # scanned on the standby only, scanned on the primary, or enforcing something: never unused
    assert not {"lines_sku_idx", "stockMovements_skuId_idx", "orders_pkey", "lines_pkey"} & set(unused)
    assert unused["shipmentsCarrier"]["statements"] == ['DROP INDEX public."shipmentsCarrier"']
    assert unused["orders_note_idx"]["statements"] == ["DROP INDEX CONCURRENTLY public.orders_note_idx"]
    assert unused["orders_note_idx"]["write_rows"] == 100 and unused["orders_note_idx"]["size_bytes"] > 0
    assert "lower(code)" in unused["skuLowerCode"]["definition"] and "WHERE active" in \
        unused["skuLowerCode"]["definition"]

    # a foreign key's index (customer_id): no scan, yet kept, and says why; opsd's own schema: never suggested
    assert not {"ordersCustomer", "orders_customer_id_idx"} & set(unused)
    assert any("public.\"ordersCustomer\": never unused: its leading columns are foreign key orders_customer_fk's" in k
               for k in rep["unused_verdict"]["kept"]), rep["unused_verdict"]["kept"]
    assert not [r for group in ("unused", "redundant", "missing") for r in rep[group] if r["schema"] == "opsd"]

    red = by_name(rep["redundant"])
    assert red["orders_customer_id_idx"]["kind"] == "duplicate" and red["orders_customer_id_idx"]["kept"] == \
        "ordersCustomer"
    assert red["ordersStatus"]["kind"] == "covered" and red["ordersStatus"]["statements"] == \
        ['DROP INDEX CONCURRENTLY public."ordersStatus"']
    assert by_name(rep["not_valid"])["qtyPositive"]["statements"] == \
        ['ALTER TABLE public.orders VALIDATE CONSTRAINT "qtyPositive"']

    missing = {m["table_name"]: m for m in rep["missing"]}
    sm = missing["stockMovements"]
    assert sm["rows_per_scan"] >= 100_000 and any('"warehouseId" = $1' in s["text"] for s in sm["statements"])
    advice = sm["advice"][0]
    assert advice["verdict"] == "proven", advice
    assert advice["cost_after"] < advice["cost_before"] and advice["size_bytes"] > 0
    assert advice["statements"] == ['CREATE INDEX CONCURRENTLY ON public."stockMovements" USING btree ("warehouseId")']
    assert rep["totals"]["invalid"] == 1 and rep["totals"]["unused_bytes"] >= unused["orders_note_idx"]["size_bytes"]

    figures = json.loads((primary.state / "index-figures.json").read_text())  # what the metrics show
    assert (figures["invalid"], figures["unused_bytes"]) == (1, rep["totals"]["unused_bytes"])
    text = opsd(primary.conf, "indexes")
    assert text.returncode == 1 and "PROVEN: btree (\"warehouseId\")" in text.stdout, text.stdout
    assert "DROP INDEX CONCURRENTLY public.orders_note_idx;" in text.stdout

    advice_refused(primary)

    # the DBA runs what opsd suggests (opsd never does): each statement works as printed
    statements = [s for group in ("invalid", "unused", "redundant", "not_valid") for row in rep[group]
                  for s in row["statements"]] + advice["statements"]
    for s in dict.fromkeys(statements):
        res = psql(primary.port, s, check=False)
        assert res.returncode == 0, f"{s}: {res.stderr}"
    rc, after = report(primary, "--no-advice")
    assert rc == 0 and after["invalid"] == [] and after["redundant"] == [] and after["not_valid"] == []
    assert psql(primary.port, "SELECT indexdef FROM pg_indexes WHERE tablename = 'stockMovements' AND indexdef "
                              "LIKE '%warehouseId%'").stdout.strip()


def _advice(conf: Path) -> tuple[dict[str, Any], Any]:
    from opsd.actions.queries.indexes import index_report

    rep = index_report(build(settings_mod.load(str(conf))), dbnames=["supply"])
    sm = next(m for m in rep.missing if m.table_name == "stockMovements")
    return sm.advice[0].__dict__, rep.unused_verdict


def advice_refused(primary: Cluster) -> None:
    """opsd connected as postgres (a superuser) with no advice_user: no EXPLAIN, a guess that says why, the
    statement still shown; and no standby configured: the one streaming from the primary means no unused verdict.
    An advice_user that is no member of the statement's role, or is one (through app) of pg_read_server_files:
    a guess with why."""
    advice, verdict = _advice(primary.conf.with_name("opsd-ixs-bare.toml"))
    assert advice["verdict"] == "guess" and "advice_user is not set" in advice["reason"], advice
    assert advice["statements"] == ['CREATE INDEX CONCURRENTLY ON public."stockMovements" USING btree ("warehouseId")']
    assert not verdict.decided and verdict.reason == (
        "no verdict: 1 standby(s) stream from this primary that opsd does not read: add them to [queries] standbys "
        "(or [patroni] url)"), verdict.reason
    psql(primary.port, "REVOKE app FROM opsd_advice")
    advice, _ = _advice(primary.conf)
    assert advice["verdict"] == "guess" and "advice_user is not a member of role app" in advice["reason"], advice
    psql(primary.port, "GRANT app TO opsd_advice; GRANT pg_read_server_files TO app")
    try:
        advice, _ = _advice(primary.conf)
    finally:
        psql(primary.port, "REVOKE pg_read_server_files FROM app")
    assert advice["verdict"] == "guess" and advice["reason"].startswith(
        "not EXPLAINed: advice_user opsd_advice is a member of pg_read_server_files"), advice


def test_a_server_that_cannot_be_reached_is_one_line_and_exit_1(stack: Sandbox, tmp_path: Path) -> None:
    conf = tmp_path / "opsd.toml"
    conf.write_text(stack.opsd_toml(pg_port=free_port(), state_dir=tmp_path / "state"))
    res = opsd(conf, "indexes")
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.startswith("opsd: error: cannot connect to PostgreSQL") and "Traceback" not in res.stderr
    bad = opsd(conf, "indexes", "--since", "soon")
    assert bad.returncode == 2 and bad.stderr.startswith("opsd: error: --since 'soon'"), bad.stderr
