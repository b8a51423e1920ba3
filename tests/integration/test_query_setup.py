"""Query statistics turned on, on a cluster of its own that has none: 'opsd check' names what is missing in one line
(a warning: it still exits 0), 'opsd setup --query-stats' sets it keeping what is there (a library already
preloaded, a lower log_min_duration_statement), turns off the logging of bind parameters and exits 6 for the
restart, '--restart' finishes it (the extension created), and the check is then ok."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from opsd_sandbox import Sandbox
from tests.conftest import opsd
from tests.integration.helpers import Cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(stack: Sandbox) -> Iterator[Cluster]:
    """Archiving set up (so the queries check is the only thing to say), no backup schedule (no backup-age check);
    auto_explain preloaded and log_min_duration_statement at 50 ms, below the default objective's 100 ms."""
    c = Cluster(stack, "qsetup")
    c.write_conf(c.conf, schedule={"full": "", "check": ""})
    c.initdb()
    try:
        with (c.pgdata / "postgresql.conf").open("a") as f:
            f.write("shared_preload_libraries = 'auto_explain'\nlog_min_duration_statement = 50\n")
        res = opsd(c.conf, "setup", "--restart")  # its restart loads the lines above
        assert res.returncode == 0, res.stdout + res.stderr
        yield c
    finally:
        c.stop_quietly()


def _queries(conf: Any) -> tuple[int, dict[str, Any]]:
    res = opsd(conf, "check", "--json")
    return res.returncode, next(r for r in json.loads(res.stdout)["results"] if r["name"] == "queries")


def test_query_stats_setup_keeps_what_is_there_and_the_check_follows(cluster: Cluster) -> None:
    c = cluster
    rc, q = _queries(c.conf)
    assert rc == 0, q  # a warning: nothing fails because of it
    assert q["status"] == "warning" and "\n" not in q["message"]
    assert q["message"].startswith("query statistics incomplete: shared_preload_libraries lacks pg_stat_statements "
                                   "[restart]; logging_collector is off [restart]"), q["message"]
    assert "run 'opsd setup --query-stats --restart' (a restart is needed)" in q["message"]
    assert q["details"]["missing"] == ["shared_preload_libraries", "logging_collector", "log_destination",
                                       "track_io_timing", "extension"]  # 50 ms logs enough; postgres is superuser

    first = opsd(c.conf, "setup", "--query-stats")
    out = first.stdout
    assert first.returncode == 6, out + first.stderr
    assert "'auto_explain' -> 'auto_explain, pg_stat_statements' (restart needed)" in out, out
    assert "'stderr' -> 'stderr,jsonlog' (reload: applied)" in out and "set logging_collector" in out
    assert "50 ms kept" in out and "set log_min_duration_statement" not in out
    assert f"the server log moves to {c.pgdata}/log" in out
    assert "restart PostgreSQL to apply shared_preload_libraries, logging_collector, then" in out
    assert "setup NOT complete" in out
    assert c.psql("show shared_preload_libraries") == "auto_explain"  # opsd did not restart on its own
    assert c.psql("show track_io_timing") == "on"  # reloaded
    assert "'-1' -> '0' (reload: applied)" in out and "without their bind parameters" in out
    assert c.psql("show log_parameter_max_length") == "0"  # slow statements logged without their parameters

    second = opsd(c.conf, "setup", "--query-stats", "--restart")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "PostgreSQL restarted" in second.stdout and "CREATE EXTENSION pg_stat_statements" in second.stdout
    assert "CHANGED  'auto_explain" not in second.stdout  # the pending change was not made twice
    assert c.psql("show shared_preload_libraries") == "auto_explain, pg_stat_statements"
    assert c.psql("show log_min_duration_statement") == "50ms"  # never raised
    assert int(c.psql("select count(*) from pg_stat_statements")) > 0
    assert list((c.pgdata / "log").glob("*.json"))  # the duration log opsd reads

    rc, q = _queries(c.conf)
    assert (rc, q["status"], q["details"]) == (0, "ok", {"missing": [], "restart": []}), q

    # a role of its own that logs nothing slow: its statements would be missing from the over count, so the check
    # says so (an override is not something setup changes: the DBA set it)
    c.psql("CREATE ROLE batch; ALTER ROLE batch SET log_min_duration_statement = -1; "
           "ALTER ROLE batch SET pg_stat_statements.track_utility = off")
    rc, q = _queries(c.conf)
    assert (rc, q["status"]) == (0, "warning") and "\n" not in q["message"], q
    assert "ALTER ROLE batch SET log_min_duration_statement = -1" in q["message"], q["message"]
    assert "track_utility = off" in q["message"] and q["message"].count("ALTER ... RESET") == 1, q["message"]
    assert q["details"]["missing"] == ["override", "override"], q
    c.psql("ALTER ROLE batch RESET ALL; DROP ROLE batch")
