"""Targeted recovery on quoted names, on the real stack: a TypeORM-style schema (``"Inventory"."StockMovements"``,
columns ``"stockId"``, ``"movementDate"``) whose trigger keeps ``"Inventory"."Stock"`` quantities; a bad DELETE
found in the WAL by its SQL and its plain name, restored beside the live table, and put back by running the
printed SQL with psql (the trigger fires, and the result warned it would); then every kind of bad --table name
refused in one line, nothing restored. One database of its own on the session's cluster, dropped at the end."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from opsd.core.records.targeted import TableRestoreResult
from opsd.core.relname import parse
from opsd.report import targeted_console
from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, run
from tests.conftest import opsd
from tests.integration.helpers import PG_BIN, switch_and_wait

pytestmark = pytest.mark.integration
DB = "inventory_app"
MOVES = '"Inventory"."StockMovements"'
SCHEMA = """
CREATE EXTENSION postgres_fdw;
CREATE SCHEMA "Inventory";
CREATE TABLE "Inventory"."Stock" ("id" int PRIMARY KEY, "sku" text NOT NULL, "quantity" int NOT NULL DEFAULT 0);
CREATE TABLE "Inventory"."StockMovements" (
  "id" serial PRIMARY KEY, "stockId" int NOT NULL REFERENCES "Inventory"."Stock" ("id"),
  "movementDate" timestamptz NOT NULL DEFAULT now(), "quantity" int NOT NULL);
CREATE INDEX "IDX_stockId_movementDate" ON "Inventory"."StockMovements" ("stockId", "movementDate");
CREATE FUNCTION "Inventory"."applyMovement"() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE "Inventory"."Stock" SET "quantity" = "quantity" + NEW."quantity" WHERE "id" = NEW."stockId";
    RETURN NEW;
  END IF;
  UPDATE "Inventory"."Stock" SET "quantity" = "quantity" - OLD."quantity" WHERE "id" = OLD."stockId";
  RETURN OLD;
END $$;
CREATE TRIGGER "StockMovements_apply" AFTER INSERT OR DELETE ON "Inventory"."StockMovements"
  FOR EACH ROW EXECUTE FUNCTION "Inventory"."applyMovement"();
INSERT INTO "Inventory"."Stock" SELECT g, 'SKU-' || g FROM generate_series(1, 10) g;
INSERT INTO "Inventory"."StockMovements" ("stockId", "movementDate", "quantity")
  SELECT 1 + g % 10, now() - g * interval '1 minute', 1 + g % 7 FROM generate_series(1, 600) g;
CREATE TABLE "Inventory"."Shipments" ("id" int, "shippedOn" date, PRIMARY KEY ("id", "shippedOn"))
  PARTITION BY RANGE ("shippedOn");
CREATE TABLE "Inventory"."Shipments_2026" PARTITION OF "Inventory"."Shipments"
  FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE "Inventory"."Shipments_2027" PARTITION OF "Inventory"."Shipments"
  FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
INSERT INTO "Inventory"."Shipments" VALUES (1, '2026-03-01'), (2, '2027-03-01');
-- bad input: two tables differing by case, a view, a partitioned table without partitions, a foreign table
CREATE TABLE "Inventory"."Pallets" ("id" int PRIMARY KEY);
CREATE TABLE "Inventory"."pallets" ("id" int PRIMARY KEY);
CREATE VIEW "Inventory"."StockLevels" AS
  SELECT "stockId", sum("quantity") AS "quantity" FROM "Inventory"."StockMovements" GROUP BY 1;
CREATE TABLE "Inventory"."Returns" ("id" int) PARTITION BY LIST ("id");
CREATE SERVER "warehouse" FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'inventory_app');
CREATE FOREIGN TABLE "Inventory"."RemoteStock" ("id" int, "quantity" int) SERVER "warehouse"
  OPTIONS (schema_name 'Inventory', table_name 'Stock');
"""


def _psql_file(sb: Sandbox, path: Path) -> str:
    return run(as_pg([str(PG_BIN / "psql"), "-h", str(sb.socket_dir), "-p", str(sb.pg_port), "-d", DB, "-X", "-q",
                      "-v", "ON_ERROR_STOP=1", "-f", str(path)])).stdout


@pytest.fixture(scope="module")
def app(ready_stack: Sandbox) -> Iterator[Sandbox]:
    sb = ready_stack
    sb.psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    sb.psql(f"CREATE DATABASE {DB}")
    sql = sb.root / "inventory_app.sql"
    sql.write_text(SCHEMA)
    sql.chmod(0o644)
    _psql_file(sb, sql)
    res = opsd(sb.opsd_conf, "backup", "--type", "incr")  # pgBackRest makes it a full one when there is none
    assert res.returncode == 0, res.stderr
    time.sleep(1.1)  # targets more than a second after the backup's end
    try:
        yield sb
    finally:
        sb.psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def _q(sb: Sandbox, sql: str) -> str:
    return sb.psql(sql, db=DB)


def _now(sb: Sandbox) -> str:
    return sb.psql("select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")


def _write(sb: Sandbox, *stmts: str) -> int:
    with psycopg.connect(host=str(sb.socket_dir), port=sb.pg_port, user="postgres", dbname=DB,
                         autocommit=True) as conn, conn.transaction():
        for s in stmts:
            conn.execute(s)
        return int(conn.execute("select txid_current()").fetchone()[0])  # type: ignore[index]


def _found(sb: Sandbox, table: str, since: str) -> dict[int, dict[str, Any]]:
    res = opsd(sb.opsd_conf, "wal", "find", "--table", table, "--dbname", DB, "--since", since, "--json")
    assert res.returncode == 0, res.stderr
    return {c["xid"]: c for c in json.loads(res.stdout)}


MOVED = f'select coalesce(md5(string_agg(m::text, \',\' order by m."id")), \'\') || \'/\' || count(*) from {MOVES} m ' \
        'where m."id" <= 206'
STOCK = 'select string_agg("id" || \':\' || "quantity", \',\' order by "id") from "Inventory"."Stock"'


def test_names_are_read_as_postgresql_parse_ident_reads_them(app: Sandbox) -> None:
    for text in ['"Inventory"."StockMovements"', 'Inventory."Stock Movements"', ' "a.b" . "say ""hi""" ',
                 'ÄB."Ü"', "Sales.Orders"]:
        want = _q(app, f"select array_to_string(parse_ident('{text.replace(chr(39), chr(39) * 2)}'), '|')")
        got = parse(text)
        if got.exact:
            assert f"{got.schema}|{got.name}" == want, text
        else:  # the plain form: what SQL would fold it to is one of the names it matches ignoring case
            assert f"{got.schema}|{got.name}".lower() == want, text


def test_a_delete_on_a_typeorm_table_is_found_restored_and_put_back_as_printed(app: Sandbox) -> None:
    sb = app
    since = _now(sb)
    moved, stock = _q(sb, MOVED), _q(sb, STOCK)
    assert moved.endswith("/206")
    xid = _write(sb, f'delete from {MOVES} where "id" <= 206')
    shipped = _write(sb, """insert into "Inventory"."Shipments" values (3, '2026-05-01'), (4, '2027-05-01'),
                            (5, '2027-06-01')""")
    assert _q(sb, MOVED).endswith("/0") and _q(sb, STOCK) != stock  # the trigger took the quantities back
    switch_and_wait(sb)
    for form in (MOVES, "Inventory.StockMovements"):  # the SQL form and the plain form
        found = _found(sb, form, since)
        assert found[xid]["deletes"] == 206 and found[xid]["inserts"] == found[xid]["updates"] == 0, form
        assert found[xid]["table"] == MOVES and shipped not in found
    parts = _found(sb, "inventory.shipments", since)  # a partitioned table: its partitions' changes
    assert parts[shipped]["inserts"] == 3 and parts[shipped]["table"] == '"Inventory"."Shipments"'
    res = opsd(sb.opsd_conf, "restore", "--table", MOVES, "--table", "Inventory.Shipments", "--before-xid", str(xid),
               "--into-schema", "undo", "--dbname", DB, "--yes", "--json", timeout=600)
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)["result"]
    assert result["tables"] == [MOVES, '"Inventory"."Shipments"']
    cmp, ship = result["comparisons"]
    assert cmp["matched"] and cmp["missing_from_live"] == 206 and cmp["victims"] == 206 and cmp["changed"] == 0
    assert ship["matched"] and ship["recovered_rows"] == 2 and ship["victims"] == 0
    sql = cmp["put_back_sql"]
    assert f"INSERT INTO {MOVES} (" in sql and '"stockId", "movementDate"' in sql
    assert '"undo"."StockMovements$xid' in sql
    [warning] = [n for n in cmp["put_back_notes"] if n.startswith("WARNING")]
    assert '"StockMovements_apply"' in warning and "triggers fire" in warning
    shown = targeted_console.table_result(TableRestoreResult.model_validate(result))
    assert "the live table's triggers fire" in shown and warning in shown and sql.splitlines()[0] in shown
    printed = sb.root / "put-back.sql"
    printed.write_text(sql + "\n")
    printed.chmod(0o644)
    _psql_file(sb, printed)  # as printed, in psql, against the live database
    assert _q(sb, MOVED) == moved  # the rows are back, as they were
    assert _q(sb, STOCK) == stock  # and the live trigger put the quantities back with them
    assert json.loads(opsd(sb.opsd_conf, "scratch", "list", "--json").stdout) == []


def _one_line(res: Any) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("opsd: error: "), res.stderr
    return str(lines[0])


BAD = [  # (--table, exit code, what the one line says)
    ("Inventory.Nope", 5, 'no relation Inventory.Nope in the live catalog of database inventory_app'),
    ('"inventory"."StockMovements"', 5, 'with another case: "Inventory"."StockMovements"'),
    ("Inventory.Pallets", 5, 'matches 2 relations of inventory_app that differ only by case ("Inventory"."Pallets", '
                             '"Inventory".pallets)'),
    ('"Inventory"."StockLevels"', 5, 'is a view: it holds no rows of its own; give the table(s) it reads instead: '
                                     '"Inventory"."StockMovements"'),
    ("Inventory.Returns", 5, '"Inventory"."Returns" is a partitioned table without partitions'),
    ("Inventory.RemoteStock", 5, '"Inventory"."RemoteStock" is a foreign table: its rows live on the foreign server '
                                 'warehouse'),
    ("StockMovements", 2, "a schema is missing"),
]


def test_bad_names_are_refused_in_one_line_and_nothing_is_restored(app: Sandbox) -> None:
    sb = app
    since = _now(sb)
    switch_and_wait(sb)  # WAL in the range: a search of a good name reads it
    for table, code, says in BAD:
        res = opsd(sb.opsd_conf, "wal", "find", "--table", table, "--dbname", DB, "--since", since, "--json")
        assert res.returncode == code and res.stdout == "" and says in _one_line(res), (table, res.stderr)
        if table == "Inventory.Nope":
            assert "--catalog-from-copy" in res.stderr
            continue  # restore --table of a name the live catalog lacks recovers a copy first (a dropped table)
        res = opsd(sb.opsd_conf, "restore", "--table", table, "--to-time", since, "--into-schema", "never_made",
                   "--dbname", DB, "--yes")
        assert res.returncode == code and says in _one_line(res), (table, res.stderr)
    # restore --table of a name no live relation has in any case: it may be a table dropped since, so it is looked
    # up on the recovered copy; not there either: refused, the copy torn down, nothing loaded
    target = _now(sb)
    _write(sb, 'insert into "Inventory".pallets values (1)')
    switch_and_wait(sb)
    res = opsd(sb.opsd_conf, "restore", "--table", "Inventory.Nope", "--to-time", target, "--into-schema",
               "never_made", "--dbname", DB, "--yes", timeout=600)
    errors = [line for line in res.stderr.splitlines() if line.startswith("opsd: error: ")]
    assert res.returncode == 5 and len(errors) == 1 and "Inventory.Nope does not exist at the target time" in errors[0]
    assert _q(sb, "select count(*) from pg_namespace where nspname = 'never_made'") == "0"
    assert json.loads(opsd(sb.opsd_conf, "scratch", "list", "--json").stdout) == []
    # a table that resolves but had no change in the range: an answer that says what was searched, not an error
    res = opsd(sb.opsd_conf, "wal", "find", "--table", '"Inventory"."Pallets"', "--dbname", DB, "--since", since,
               "--json")
    assert res.returncode == 0 and json.loads(res.stdout) == [], res.stderr
    node = _q(sb, "select pg_relation_filenode('\"Inventory\".\"Pallets\"')")
    assert 'none found: searched "Inventory"."Pallets" (OID' in res.stderr and f"/{node}" in res.stderr
    assert "WAL segment(s) 0000" in res.stderr
    plain = opsd(sb.opsd_conf, "wal", "find", "--table", '"Inventory"."Pallets"', "--dbname", DB, "--since", since)
    assert plain.returncode == 0 and plain.stdout.startswith('no committed transaction changed "Inventory"."Pallets"')
