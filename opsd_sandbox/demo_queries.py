"""The demo's service-level part (docs/queries.md): query statistics turned on with 'opsd setup --query-stats', a
supply-chain workload with one slow statement among many fast ones and an index no query uses, two snapshots;
then 'opsd queries' names the slow statement first and 'opsd indexes' the unused index."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from opsd_sandbox.procs import as_pg, run
from opsd_sandbox.stack import PG_BIN, Sandbox

Opsd = Callable[..., subprocess.CompletedProcess[str]]

FAST, SLOW = 400, 30  # 30 of 430 executions over 100 ms: 93% under, the 95% objective missed
SLOW_SQL = "select pg_sleep(0.15), count(*) from stock_movements where warehouse = 7;"
UNUSED = "stock_movements_moved_at"
# only the snapshot job runs with 'daemon --once'; an unused-index verdict after 5 s instead of 7 days
QUERIES_TOML = """
[queries]
unused_min_span = "5s"
objectives = [{ name = "all", threshold = "100ms", target = 0.95 }]
"""
SCHEDULE = {"full": "", "diff": "", "incr": "", "check": "", "drill": "", "verify": "", "report": "",
            "health": "", "queries": "5m"}


def _workload(sb: Sandbox) -> None:
    """FAST primary-key lookups and SLOW statements over 100 ms, each its own statement (psql -f): one duration
    line and one pg_stat_statements call each."""
    script = Path(f"/tmp/opsd-demo-workload-{sb.pg_port}.sql")  # read by the postgres user
    slow_at = {i * FAST // SLOW for i in range(SLOW)}  # spread among the fast ones
    lines = []
    for i in range(FAST):
        lines += [SLOW_SQL] if i in slow_at else []
        lines.append(f"select qty from stock_movements where id = {1 + i * 97};")
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o644)
    try:
        run(as_pg([str(PG_BIN / "psql"), "-h", str(sb.socket_dir), "-p", str(sb.pg_port), "-X", "-q", "-o",
                   "/dev/null", "-v", "ON_ERROR_STOP=1", "-f", str(script)]))
    finally:
        script.unlink(missing_ok=True)


def service_levels(sb: Sandbox, opsd: Opsd) -> None:
    print("\n== service levels: query statistics on (pg_stat_statements, the duration log), then a restart",
          flush=True)
    opsd(sb, "setup", "--query-stats", expect=(6,))  # shared_preload_libraries needs a restart: exit 6
    opsd(sb, "setup", "--query-stats", "--restart")
    conf = sb.root / "opsd-queries.toml"
    conf.write_text(sb.opsd_toml(schedule=SCHEDULE, extra=QUERIES_TOML))
    conf.chmod(0o644)
    print("\n== stock movements: 200,000 rows, an index on moved_at that no query uses", flush=True)
    sb.psql("create table stock_movements(id bigint primary key, sku text not null, warehouse int not null, "
            "qty int not null, moved_at timestamptz not null default now())")
    sb.psql("insert into stock_movements(id, sku, warehouse, qty) select g, 'SKU-' || (g % 900), g % 40, 1 + g % 9 "
            "from generate_series(1, 200000) g")
    sb.psql(f"create index {UNUSED} on stock_movements(moved_at)")
    sb.psql("analyze stock_movements")
    started = time.monotonic()
    opsd(conf, "daemon", "--once")  # the first snapshot: the baseline
    print(f"\n== the workload: {FAST} fast lookups and {SLOW} statements that take 150 ms", flush=True)
    _workload(sb)
    time.sleep(max(0.0, 6 - (time.monotonic() - started)))  # the statistics cover the demo's unused_min_span
    opsd(conf, "daemon", "--once")  # the second snapshot: the window's deltas, the duration log read
    res = opsd(conf, "queries", "--since", "1h", expect=(0, 1))  # the objective missed
    if "pg_sleep" not in res.stdout:
        raise SystemExit("demo: 'opsd queries' did not name the slow statement")
    res = opsd(conf, "indexes", expect=(0, 1))
    if UNUSED not in res.stdout:
        raise SystemExit(f"demo: 'opsd indexes' did not find {UNUSED} unused")
    print(f"   opsd named the slow statement (pg_sleep) and the unused index {UNUSED}")
