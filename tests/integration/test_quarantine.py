"""A copy of production reaches nothing outside itself and runs no one's code with opsd's rights (issue 32),
on real clusters: a subscriber of a second cluster (the publisher), with pg_cron preloaded, a postgres_fdw
server with a user mapping, amcheck installed in a schema of its own, and a hostile table owner who planted a
function named like amcheck's in public and whose table's CHECK, expression index, trigger, default and view
call a function that tries ``COPY ... TO PROGRAM`` and ``ALTER ROLE ... SUPERUSER``.

One drill of the subscriber, recovered to a time when its subscription was still enabled and kept for
inspection, then a side restore of its table to the same time: the publisher's slot does not move, the rows the
publisher wrote meanwhile still reach the real subscriber afterwards, the copy has its subscription disabled and
detached, no user mapping, no pg_cron launcher and only the allow-listed preload library; the hostile program
never ran and the owner is no superuser."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, run
from tests.conftest import opsd
from tests.integration.helpers import PG_BIN, Cluster, wait_until

pytestmark = pytest.mark.integration

HOSTILE = """
CREATE ROLE hostile LOGIN;
GRANT CREATE ON SCHEMA public TO hostile;
CREATE SCHEMA tools;
CREATE EXTENSION amcheck SCHEMA tools;
SET ROLE hostile;
CREATE FUNCTION public.evil() RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
  BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {marker}'''; EXCEPTION WHEN others THEN NULL; END;
  BEGIN EXECUTE 'ALTER ROLE hostile SUPERUSER'; EXCEPTION WHEN others THEN NULL; END;
  RETURN true;
END $f$ IMMUTABLE;
CREATE FUNCTION public.verify_heapam(relation regclass, check_toast boolean,
    OUT blkno bigint, OUT offnum integer, OUT attnum integer, OUT msg text) RETURNS SETOF record
  LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.evil(); END $f$;
CREATE FUNCTION public.bt_index_check(index regclass, heapallindexed boolean) RETURNS void
  LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.evil(); END $f$;
CREATE FUNCTION public.evil_trigger() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.evil(); RETURN NEW; END $f$;
CREATE TABLE public.victim (id int PRIMARY KEY, note text DEFAULT (public.evil())::text CHECK (public.evil()));
CREATE INDEX victim_expr ON public.victim ((public.evil() AND id > 0));
CREATE TRIGGER victim_trg BEFORE INSERT OR UPDATE ON public.victim FOR EACH ROW EXECUTE FUNCTION public.evil_trigger();
CREATE VIEW public.victim_view AS SELECT id, public.evil() AS e FROM public.victim;
INSERT INTO public.victim (id) SELECT generate_series(1, 50);
RESET ROLE;
"""


class Pair:
    def __init__(self, pub: Cluster, sub: Cluster, marker: Path) -> None:
        self.pub, self.sub, self.marker = pub, sub, marker

    def slot(self) -> tuple[str, str]:
        """The publisher's slot for the subscription: (confirmed_flush_lsn, active)."""
        out = self.pub.psql("select confirmed_flush_lsn::text || '|' || active from pg_replication_slots "
                            "where slot_name = 'sub'")
        lsn, active = out.split("|")
        return lsn, active


def _reconf(c: Cluster, lines: str) -> None:
    with (c.pgdata / "postgresql.conf").open("a") as f:
        f.write(lines)
    c.ctl("restart", "-m", "fast")


@pytest.fixture(scope="module")
def pair(stack: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    pub, sub = Cluster(stack, "pub"), Cluster(stack, "sub")
    marker = tmp_path_factory.mktemp("hostile") / "pwned"
    os.chmod(marker.parent, 0o777)  # the postgres OS user could write it if the program ever ran
    try:
        pub.initdb()
        _reconf(pub, "wal_level = logical\n")
        pub.psql("create table items(id int primary key, note text)")
        pub.psql("insert into items select g, 'before' from generate_series(1, 3) g")
        pub.psql("create publication pub for table items")
        sub.initdb()
        _reconf(sub, "shared_preload_libraries = 'pg_stat_statements,pg_cron'\ncron.database_name = 'postgres'\n")
        res = opsd(sub.conf, "setup", "--restart")
        assert res.returncode == 0, res.stderr
        sub.psql("create table items(id int primary key, note text)")
        sub.psql(f"create subscription sub connection 'host={stack.socket_dir} port={pub.port} dbname=postgres' "
                 "publication pub")
        wait_until(lambda: sub.psql("select count(*) from items") == "3", timeout=60, what="the first rows applied")
        sub.psql("create extension pg_cron")
        sub.psql("create table cron_hits(at timestamptz)")
        sub.psql("select cron.schedule('hit', '* * * * *', 'insert into cron_hits values (now())')")
        sub.psql("create extension postgres_fdw")
        sub.psql(f"create server pubsrv foreign data wrapper postgres_fdw options (host '{stack.socket_dir}', "
                 f"port '{pub.port}', dbname 'postgres')")
        sub.psql("create user mapping for postgres server pubsrv options (user 'postgres')")
        run(as_pg([str(PG_BIN / "psql"), "-h", str(stack.socket_dir), "-p", str(sub.port), "-X", "-q",
                   "-v", "ON_ERROR_STOP=1", "-c", HOSTILE.format(marker=marker)]))
        yield Pair(pub, sub, marker)
    finally:
        opsd(sub.conf, "scratch", "clean", "--all")
        sub.stop_quietly()
        pub.stop_quietly()


def _copy_psql(sb: Sandbox, sub: Cluster, port: int, sql: str) -> str:
    sock = sub.state / "scratch" / "work" / "run"
    return run(as_pg([str(PG_BIN / "psql"), "-h", str(sock), "-p", str(port), "-XAtc", sql])).stdout.strip()


def _drill(conf: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    res = opsd(conf, "drill", "run", "--json", *args, timeout=600)
    return res.returncode, json.loads(res.stdout), res.stderr


def test_a_kept_drill_of_a_subscriber_reaches_nothing_and_runs_no_owner_code(pair: Pair) -> None:
    sb, pub, sub = pair.sub.sb, pair.pub, pair.sub
    res = opsd(sub.conf, "backup", "--type", "full")
    assert res.returncode == 0, res.stderr
    sub.psql("select pg_sleep(1.1)")
    target = sub.psql("select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
    sub.psql("select pg_sleep(1.1)")
    sub.psql("alter subscription sub disable")  # after the target: the copy's subscription is still enabled
    wait_until(lambda: pair.slot()[1] == "false", timeout=30, what="the subscriber to let go of its slot")
    sub.switch_and_wait()
    pub.psql("insert into items select g, 'during the drill' from generate_series(4, 6) g")
    before = pair.slot()

    _rc, data, err = _drill(sub.conf, "--target", target, "--keep")
    assert data["kept"] is True, err[-3000:]
    port = data["port"]
    quarantine = {c["name"]: c for c in data["checks"]}["quarantine"]
    assert quarantine["details"]["preload_dropped"] == ["pg_cron"], quarantine
    assert quarantine["details"]["subscriptions"] == ["postgres: sub"], quarantine
    assert quarantine["details"]["user_mappings"] == ["postgres: postgres@pubsrv"], quarantine

    # the publisher's slot did not move: nothing consumed the changes made during the drill
    assert pair.slot() == before
    # the copy: subscription disabled and detached, no user mapping, no pg_cron, only the allow-listed library
    assert _copy_psql(sb, sub, port, "select subenabled::text || '|' || coalesce(subslotname::text, 'none') "
                                     "from pg_subscription") == "false|none"
    assert _copy_psql(sb, sub, port, "select count(*) from pg_user_mappings") == "0"
    assert _copy_psql(sb, sub, port, "show shared_preload_libraries") == "pg_stat_statements"
    launchers = "backend_type in ('pg_cron launcher', 'logical replication launcher')"
    assert _copy_psql(sb, sub, port, f"select count(*) from pg_stat_activity where {launchers}") == "0"
    assert _copy_psql(sb, sub, port, "select count(*) from items") == "3"
    assert sub.psql("select count(*) from pg_stat_activity where backend_type = 'pg_cron launcher'") == "1"  # prod

    # the hostile owner's code never ran with opsd's rights, on the copy or anywhere
    assert not pair.marker.exists()
    assert sub.psql("select rolsuper from pg_roles where rolname = 'hostile'") == "f"
    assert _copy_psql(sb, sub, port, "select rolsuper from pg_roles where rolname = 'hostile'") == "f"
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["amcheck"]["status"] == "ok", checks["amcheck"]  # the real amcheck, in schema tools

    # the kept copy is seen, and removed on demand
    listed = opsd(sub.conf, "scratch", "list", "--json")
    assert listed.returncode == 0 and [c["state"] for c in json.loads(listed.stdout)] == ["kept"], listed.stdout
    check = opsd(sub.conf, "check")
    assert "kept copy of production" in check.stdout, check.stdout
    cleaned = opsd(sub.conf, "scratch", "clean", "--all")
    assert cleaned.returncode == 0 and "removing" in cleaned.stdout, cleaned.stderr
    assert not Path(data["scratch"]).exists() and json.loads(opsd(sub.conf, "scratch", "list", "--json").stdout) == []

    # a side restore of the subscriber's table goes through the same quarantine: the slot still does not move
    dump = sub.state / "items-at-target.sql"
    res = opsd(sub.conf, "restore", "--table", "public.items", "--to-time", target, "--into-file", str(dump),
               "--yes", timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert pair.slot() == before and dump.exists()
    assert not pair.marker.exists()

    # the real subscriber still gets what the publisher wrote during the drill
    sub.psql("alter subscription sub enable")
    wait_until(lambda: sub.psql("select count(*) from items") == "6", timeout=60,
               what="rows 4-6 applied by the real subscriber")
