"""The comparison of a recovered table with the live one never holds up production (issue 32, section 5): with
a migration's ACCESS EXCLUSIVE queued on the live table, or held there, it stops within seconds with one line
saying why, instead of queueing for up to an hour (it used to run under drill.verify_statement_timeout with no
lock_timeout). Real blocking sessions from threads; no restore needed: the recovered table is made by hand."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from opsd import settings as settings_mod
from opsd.actions.targeted import compare
from opsd.actions.targeted.compare import compare_all
from opsd.context import build
from opsd.db.tablecopy import QName
from opsd_sandbox import Sandbox
from tests.conftest import opsd
from tests.integration.helpers import wait_until

pytestmark = pytest.mark.integration
LIVE = QName("lockt", "orders")


def _connect(sb: Sandbox) -> psycopg.Connection[Any]:
    return psycopg.connect(host=str(sb.socket_dir), port=sb.pg_port, user="postgres", dbname="postgres",
                           autocommit=True, application_name="migration")


@pytest.fixture(scope="module")
def tables(ready_stack: Sandbox) -> Iterator[Sandbox]:
    sb = ready_stack
    sb.psql("drop schema if exists lockt cascade; drop schema if exists lockt_rec cascade; "
            "create schema lockt; create schema lockt_rec; "
            "create table lockt.orders (id int primary key, v text); "
            "insert into lockt.orders select g, 'v' || g from generate_series(1, 5000) g; "
            "create table lockt_rec.orders (like lockt.orders including all); "
            "insert into lockt_rec.orders select * from lockt.orders where id <> 7; "
            "update lockt_rec.orders set v = 'old' where id = 9; delete from lockt.orders where id = 11")
    yield sb
    sb.psql("drop schema if exists lockt cascade; drop schema if exists lockt_rec cascade")


def _compare(sb: Sandbox) -> tuple[Any, float]:
    ctx = build(settings_mod.load(str(sb.opsd_conf)))
    t0 = time.monotonic()
    [got] = compare_all(ctx, "postgres", (LIVE,), "lockt_rec")
    return got, time.monotonic() - t0


def test_key_ranges_count_what_one_pass_would(tables: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compare, "BATCH_ROWS", 700)  # eight ranges, the last open-ended
    got, _ = _compare(tables)
    assert got.matched and (got.recovered_rows, got.live_rows) == (4999, 4999)
    assert (got.missing_from_live, got.only_in_live, got.changed) == (1, 1, 1)
    assert got.put_back_scope == "missing" and "EVERY recovered row" in got.put_back_notes[0]


def test_a_queued_migration_stops_the_comparison_at_once(tables: Sandbox) -> None:
    sb = tables
    with _connect(sb) as reader, _connect(sb) as migration:
        reader.execute("begin; select count(*) from lockt.orders")  # a long transaction holds ACCESS SHARE
        alter = threading.Thread(target=lambda: migration.execute("alter table lockt.orders add column x int"),
                                 daemon=True)
        alter.start()
        wait_until(lambda: sb.psql("select count(*) from pg_locks where not granted and "
                                   "relation = 'lockt.orders'::regclass") == "1", timeout=10, what="the ALTER waits")
        got, took = _compare(sb)
        reader.execute("rollback")
        alter.join(timeout=10)
    assert not got.matched and took < 5
    assert got.why_unmatched.startswith("stopped comparing lockt.orders: 1 session(s) wait for a lock on it")
    assert "\n" not in got.why_unmatched


def test_a_held_access_exclusive_lock_stops_it_within_the_lock_timeout(tables: Sandbox) -> None:
    sb = tables
    with _connect(sb) as migration:
        migration.execute("begin; lock table lockt.orders in access exclusive mode")
        try:
            got, took = _compare(sb)
        finally:
            migration.execute("rollback")
    assert not got.matched and compare.LOCK_TIMEOUT.total_seconds() <= took < 8
    assert "could not be read within 2 s" in got.why_unmatched and "does not queue behind it" in got.why_unmatched


def test_a_temporary_table_is_refused_in_the_plan(tables: Sandbox) -> None:
    """Never in a backup: refused (exit 5) before anything is restored."""
    sb = tables
    with _connect(sb) as session:
        session.execute("create temp table scratchpad (id int primary key)")
        schema = session.execute("select nspname from pg_namespace where oid = pg_my_temp_schema()").fetchone()
        assert schema is not None
        now = sb.psql("select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00'")
        res = opsd(sb.opsd_conf, "restore", "--table", f"{schema[0]}.scratchpad", "--to-time", now,
                   "--into-schema", "never_made", "--dry-run")
    assert res.returncode == 5 and "is a temporary table" in res.stdout + res.stderr
