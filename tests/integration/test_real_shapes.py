"""The drill on a cluster shaped like the ones DBAs run (opsd_sandbox/corpus.py: every relation kind, index
access methods, an invalid index, unpopulated matviews, a read-only database, amcheck of an old version in a
schema of its own, LATIN1, quoted names): every relation ends checked or skipped for its reason, counted exactly
per database, nothing 'could not check', nothing corrupt. Then one heap page and one B-tree page are damaged:
the drill fails for those two relations alone, naming them and the block, and everything else stays checked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from opsd_sandbox import Sandbox, corpus
from opsd_sandbox.procs import as_pg, free_port, mkdir_pg, run
from tests.conftest import opsd
from tests.integration.helpers import PG_BIN, Cluster

pytestmark = pytest.mark.integration


def _beat_and_switch(c: Cluster) -> None:
    for _ in range(2):
        res = opsd(c.conf, "drill", "heartbeat")
        assert res.returncode == 0, res.stderr
    c.switch_and_wait()


def _backup(c: Cluster, kind: str) -> None:
    res = opsd(c.conf, "backup", "--type", kind)
    assert res.returncode == 0, res.stderr
    _beat_and_switch(c)


@pytest.fixture(scope="module")
def shapes(stack: Sandbox) -> Iterator[tuple[Cluster, corpus.Corpus]]:
    c = Cluster(stack, "shapes")
    with c.pgbr.open("a") as f:  # thousands of small files: more than two at a time to and from the repository
        f.write("\n[global:backup]\nprocess-max=4\n")
    c.conf = c.write_conf(c.conf, drill={"process_max": 4})
    c.initdb()
    try:
        res = opsd(c.conf, "setup", "--restart")
        assert res.returncode == 0, res.stderr
        mkdir_pg(stack.root / "shapes-ts", 0o700)
        c.psql(f"CREATE TABLESPACE \"shapes ts\" LOCATION '{stack.root / 'shapes-ts'}'")
        built = corpus.build(stack.socket_dir, c.port, tablespace="shapes ts")
        for v in (built.heap_victim, built.index_victim):  # nothing on the primary touches them after the damage
            table = "accounts" if v is built.index_victim else v.relation
            corpus.Psql(stack.socket_dir, c.port).script(v.database,
                                                         f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
        _backup(c, "full")
        yield c, built
    finally:
        c.stop_quietly()


def _drill(c: Cluster) -> tuple[int, dict[str, Any], str]:
    res = opsd(c.conf, "drill", "run", "--target", "latest", "--json", timeout=600)
    try:
        return res.returncode, json.loads(res.stdout), res.stderr
    except ValueError:
        pytest.fail(f"no JSON from drill run (rc {res.returncode}): {res.stderr[-3000:]}")


def _by_db(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["database"]: d for d in data["databases"]}


def _checks(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in data["checks"]}


@pytest.fixture(scope="module")
def healthy(shapes: tuple[Cluster, corpus.Corpus]) -> tuple[int, dict[str, Any], str]:
    """The drill of the corpus as built (before any damage: the damage fixture asks for this one first)."""
    return _drill(shapes[0])


@pytest.fixture(scope="module")
def damaged(shapes: tuple[Cluster, corpus.Corpus], healthy: Any) -> tuple[dict[corpus.Victim, str], int,
                                                                          dict[str, Any], str]:
    """One heap page of a table and one page of a B-tree index of another overwritten on the primary (stopped),
    an incremental backup of that (the two files changed), and its drill."""
    c, built = shapes
    files = {v: corpus.file_of(c.sb.socket_dir, c.port, v) for v in (built.heap_victim, built.index_victim)}
    c.ctl("stop", "-m", "fast")
    try:
        for v, relfile in files.items():
            corpus.overwrite_page(c.pgdata, relfile, v.block)
    finally:
        c.ctl("start")
    _backup(c, "incr")
    return (files, *_drill(c))


def test_every_relation_is_checked_or_skipped_for_its_reason_counted_exactly(
        shapes: tuple[Cluster, corpus.Corpus], healthy: tuple[int, dict[str, Any], str]) -> None:
    c, built = shapes
    rc, data, err = healthy
    assert rc == 0 and data["passed"], (err, data.get("failed_checks"))
    by_db = _by_db(data)
    for name, want in built.databases.items():
        got = by_db[name]
        assert (got["checked"], got["skipped"], got["not_checked"], got["corrupt"], got["refused"]) == (
            want.checked, want.skipped, 0, 0, None), name
    assert by_db["template0"]["refused"] == "no_connections"
    assert all(d["not_checked"] == 0 and d["corrupt"] == 0 and d["error"] is None for d in by_db.values())
    checks = _checks(data)
    for name in ("amcheck", "readable", "coverage"):
        assert checks[name]["status"] == "ok", checks[name]
    assert "template0" in checks["coverage"]["message"]
    assert checks["readable"]["details"]["bytes"] >= built.toast_bytes  # TOAST read through detoasting
    res = opsd(c.conf, "drill", "list", "--json")
    assert res.returncode == 0, res.stderr
    shown = opsd(c.conf, "drill", "show", str(json.loads(res.stdout)[0]["id"]))
    assert "shapes_reports" in shown.stdout and "access_method 5" in shown.stdout, shown.stdout


def test_a_damaged_heap_page_and_btree_page_fail_the_drill_for_those_two_alone(
        shapes: tuple[Cluster, corpus.Corpus], damaged: tuple[dict[corpus.Victim, str], int, dict[str, Any], str]
        ) -> None:
    _c, built = shapes
    files, rc, data, err = damaged
    assert rc == 1 and not data["passed"], err
    assert sorted(data["failed_checks"]) == ["amcheck", "coverage", "readable"]
    checks = _checks(data)
    amcheck = checks["amcheck"]["message"]
    for v, relfile in files.items():
        assert f"{v.database}.public.{v.relation}: " in amcheck and f"block {v.block} of relation {relfile}" in amcheck
    assert checks["amcheck"]["message"].startswith("2 corrupt relation(s)")
    assert checks["readable"]["message"].startswith("1 relation(s) not readable: shapes.public.ledger")
    by_db = _by_db(data)
    for name, want in built.databases.items():
        got = by_db[name]
        hit = 2 if name == built.heap_victim.database else 0
        assert (got["checked"], got["skipped"], got["not_checked"], got["corrupt"]) == (
            want.checked - hit, want.skipped, 0, hit), name


def test_the_corpus_is_what_it_says(shapes: tuple[Cluster, corpus.Corpus]) -> None:
    """The shapes exist as built (a corpus that silently lost its hard cases would prove nothing)."""
    c, built = shapes
    p = corpus.Psql(c.sb.socket_dir, c.port)
    assert built.large_objects == 2 and built.toast_bytes > 4_000_000
    assert p.value("shapes", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'dupes_v_key'::regclass") == "f"
    assert p.value("shapes", "SELECT relispopulated FROM pg_class WHERE relname = 'mv_nodata'") == "f"
    assert p.value("shapes", 'SELECT count(*) FROM "Inventory"."StockMovements"') == "500"
    assert p.value("postgres", "SELECT pg_encoding_to_char(encoding) FROM pg_database "
                               "WHERE datname = 'shapes_latin1'") == "LATIN1"
    assert p.value("shapes_reports", "SHOW default_transaction_read_only") == "on"
    assert p.value("shapes_reports", "SELECT extnamespace::regnamespace::text || ' ' || extversion FROM pg_extension "
                                     "WHERE extname = 'amcheck'") == "tools 1.0"  # the copy's is updated, not this


def test_the_full_backup_restores_beside_it_started_and_verify_and_check_pass(
        shapes: tuple[Cluster, corpus.Corpus]) -> None:
    """The corpus's full backup (by label: the damage test adds an incremental one) restored beside production
    with --start: its tablespace (a name that needs quoting) is mapped under the copy's directory and read from
    there, the quoted TypeORM table and the LATIN1 database answer; the repository verifies and check passes."""
    c, _ = shapes
    full = next(label for label in c.labels() if label.endswith("F"))
    dest, port = c.sb.root / "shapes-side", free_port()
    res = opsd(c.conf, "restore", "--type", "immediate", "--set", full, "--target-dir", str(dest), "--port",
               str(port), "--start", "--json", timeout=600)
    try:
        assert res.returncode == 0, res.stderr[-2000:]
        [ts] = json.loads(res.stdout)["plan"]["tablespaces"]
        assert (ts["name"], ts["destination"], ts["how"]) == ("shapes ts", f"{dest}.tablespaces/shapes ts", "mapped")

        def q(db: str, sql: str) -> str:
            return run(as_pg([str(PG_BIN / "psql"), "-h", str(c.sb.socket_dir), "-p", str(port), "-d", db, "-XAtc",
                              sql])).stdout.strip()

        assert q("shapes", 'SELECT count(*) FROM "Inventory"."StockMovements"') == "500"
        assert q("shapes", "SELECT count(*), pg_tablespace_location(min(reltablespace)) FROM pg_class "
                           "WHERE relname IN ('placed', 'placed_id') AND reltablespace <> 0") == (
            f"2|{dest}.tablespaces/shapes ts")
        assert q("shapes_latin1", "SELECT pg_encoding_to_char(encoding) FROM pg_database "
                                  "WHERE datname = current_database()") == "LATIN1"
    finally:
        run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(dest), "-m", "immediate", "-w", "stop"]), check=False)
    res = opsd(c.conf, "verify", timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    res = opsd(c.conf, "check", "--json", timeout=600)
    critical = {r["name"] for r in json.loads(res.stdout)["results"] if r["status"] == "critical"}
    assert critical <= {"restorability"}, res.stdout  # that one only once the damage test's drill has failed
