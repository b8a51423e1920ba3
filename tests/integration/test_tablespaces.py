"""Tablespaces, everywhere a copy is made (issue 25, part 1). A cluster with two user tablespaces: one holds a
table's heap (with TOASTed rows), the other holds an index of a table whose heap is in pg_default. A drill, a side
restore started with --start, and ``restore --table`` of the table that lives in a tablespace all map every
tablespace under the copy's own ``<dest>.tablespaces`` (the plan names each), and production's tablespace
directories are never written: their files and modification times are the same before and after. A side restore
whose tablespace directory is not empty is refused with nothing written. (In place, on the Debian layout:
test_debian_restore.py moves the old tablespace directory aside like the data directory.)"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, free_port, mkdir_pg, run
from tests.conftest import opsd
from tests.integration.helpers import PG_BIN, Cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under the roots with its size and modification time (nanoseconds)."""
    out = {}
    for root in roots:
        for d, _, names in os.walk(root):
            for n in names:
                st = os.stat(os.path.join(d, n))
                out[os.path.join(d, n)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def spaced(stack: Sandbox) -> Iterator[tuple[Cluster, dict[str, Path]]]:
    c = Cluster(stack, "tsp")
    c.initdb()
    locations = {name: stack.root / f"tsp-{name}" for name in ("ts_heap", "ts_idx")}
    try:
        for p in locations.values():
            mkdir_pg(p, 0o700)
        assert opsd(c.conf, "setup", "--restart").returncode == 0
        for name, p in locations.items():
            c.psql(f"CREATE TABLESPACE {name} LOCATION '{p}'")
        c.psql("CREATE TABLE archive(id int PRIMARY KEY, doc text) TABLESPACE ts_heap; "
               "ALTER TABLE archive ALTER doc SET STORAGE EXTERNAL; "
               "INSERT INTO archive SELECT g, repeat(md5(g::text), 200) FROM generate_series(1, 500) g; "
               "CREATE TABLE orders(id int, sku text); "
               "INSERT INTO orders SELECT g, 'sku-' || g FROM generate_series(1, 2000) g; "
               "CREATE INDEX orders_sku ON orders(sku) TABLESPACE ts_idx; "
               # production stays still while a copy is made: what changes in its tablespaces is the copy's doing
               "ALTER TABLE archive SET (autovacuum_enabled = off); ALTER TABLE orders SET (autovacuum_enabled = off)")
        c.psql("VACUUM (FREEZE, ANALYZE)")
        c.psql("CHECKPOINT")
        assert opsd(c.conf, "backup", "--type", "full").returncode == 0
        c.switch_and_wait()
        yield c, locations
    finally:
        c.stop_quietly()


def test_a_drill_maps_every_tablespace_and_never_writes_production_s(spaced: tuple[Cluster, dict[str, Path]]
                                                                     ) -> None:
    c, locations = spaced
    before = _snapshot(*locations.values())
    res = opsd(c.conf, "drill", "run", "--target", "latest", "--json", timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout)["passed"]
    assert _snapshot(*locations.values()) == before
    assert json.loads(opsd(c.conf, "scratch", "list", "--json").stdout) == []  # copy and tablespaces gone
    assert not [p for p in (c.state / "scratch").glob("drill-*")]


def test_a_side_restore_started_reads_its_tablespaces_from_its_own_directory(
        spaced: tuple[Cluster, dict[str, Path]]) -> None:
    c, locations = spaced
    before = _snapshot(*locations.values())
    dest, port = c.sb.root / "tsp-side", free_port()
    res = opsd(c.conf, "restore", "--type", "immediate", "--target-dir", str(dest), "--port", str(port), "--start",
               "--json", timeout=600)
    try:
        assert res.returncode == 0, res.stderr[-2000:]
        plan = json.loads(res.stdout)["plan"]
        root = Path(f"{dest}.tablespaces")
        assert {(t["name"], t["source"], t["destination"], t["how"]) for t in plan["tablespaces"]} == {
            (n, str(p), str(root / n), "mapped") for n, p in locations.items()}
        sizes = {t["name"]: t["size"] for t in plan["tablespaces"]}  # from the manifest: the heap holds ~3 MB
        assert 2_000_000 < sizes["ts_heap"] < plan["backup_size"] and 0 < sizes["ts_idx"] < 1_000_000, sizes
        links = {os.path.realpath(p) for p in (dest / "pg_tblspc").iterdir()}
        assert links == {str(root / n) for n in locations}
        count = run(as_pg([str(PG_BIN / "psql"), "-h", str(c.sb.socket_dir), "-p", str(port), "-XAtc",
                           "SELECT (SELECT count(*) FROM archive), (SELECT sum(length(doc)) FROM archive), "
                           "(SELECT count(*) FROM orders WHERE sku = 'sku-77')"])).stdout.strip()
        assert count == "500|3200000|1"
    finally:
        run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(dest), "-m", "immediate", "-w", "stop"]), check=False)
    assert _snapshot(*locations.values()) == before


def test_a_side_restore_whose_tablespace_directory_is_not_empty_is_refused(
        spaced: tuple[Cluster, dict[str, Path]]) -> None:
    c, _ = spaced
    dest = c.sb.root / "tsp-busy"
    busy = Path(f"{dest}.tablespaces")
    mkdir_pg(busy, 0o700)
    (busy / "keep.txt").write_text("someone's file")
    res = opsd(c.conf, "restore", "--type", "immediate", "--target-dir", str(dest), "--port", str(free_port()),
               "--yes")
    assert res.returncode == 5, res.stderr
    assert f"{busy} (where this copy's tablespaces go) is not empty" in res.stdout + res.stderr
    assert not dest.exists() and [p.name for p in busy.iterdir()] == ["keep.txt"]


def test_one_table_that_lives_in_a_tablespace_comes_back_beside_the_live_one(
        spaced: tuple[Cluster, dict[str, Path]]) -> None:
    """Restoring the copy's tablespaces to production's (occupied) locations fails outright (pgBackRest: 'path not
    empty'): the table coming back is itself the proof that they went under the copy's own directory."""
    c, _ = spaced
    at = c.psql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
    c.psql("DELETE FROM archive WHERE id > 450")
    c.switch_and_wait()
    res = opsd(c.conf, "restore", "--table", "public.archive", "--into-schema", "undo_ts", "--to-time", at,
               "--yes", "--json", timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert c.psql("SELECT count(*), sum(length(doc)) FROM undo_ts.archive") == "500|3200000"
    assert json.loads(opsd(c.conf, "scratch", "list", "--json").stdout) == []
    c.psql("CHECKPOINT")  # the DELETE and the comparison's reads (hint bits) on disk now, not during another test
