"""What a query-statistics snapshot costs (issue 36 §1), measured in one run on a throwaway sandbox (PostgreSQL
15, pg_stat_statements preloaded with room for 10,000 statements):

1. the time of one snapshot (actions/queries/snapshot.snapshot_job, in-process: role, nodes, one statement for
   pg_stat_statements, one per database for the tables and indexes, the deltas, the write) with ``--statements``
   distinct statements (default 5,000) all moving between snapshots, in rounds; the first comparison, which also
   reads the texts of every statement once, apart;
2. the server's own time for each snapshot statement (pg_stat_statements' mean of qs_statements, qs_relations);
3. the health probe's latency p50/p95 (one full sample through the reused probe connection, samples back to back
   for ``--seconds`` a round) with no snapshot running and with snapshots running back to back in another thread
   of the same process, alternated rounds. That is the worst case: the daemon takes one snapshot every 5 minutes,
   half a health interval away from the probes (daemon/jobs.py), so a probe meets no snapshot unless one lasts
   15 s.

Printed and written to bench/results/query_snapshots-DATE.json and .md. Usage:
    .venv/bin/python bench/query_snapshots.py [--statements 5000] [--rounds 7] [--seconds 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from opsd import settings as settings_mod
from opsd.actions.health.sample import take_sample
from opsd.actions.queries.snapshot import snapshot_job
from opsd.context import build
from opsd.db.probe import probe_for
from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, run

PG_BIN = Path("/usr/lib/postgresql/15/bin")
COLUMNS = 100


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def workload(n: int) -> str:
    """``n`` statements pg_stat_statements keeps apart (their select lists differ), each run once."""
    pairs = [(i, j) for i in range(COLUMNS) for j in range(i, COLUMNS)]
    return "\n".join(f"SELECT c{i}, c{j} FROM wide WHERE c0 = 1;" for i, j in pairs[:n])


def psql(sb: Sandbox, *args: str) -> str:
    return run(as_pg([str(PG_BIN / "psql"), "-h", str(sb.socket_dir), "-p", str(sb.pg_port), "-X", "-q",
                      "-v", "ON_ERROR_STOP=1", *args]), timeout=600).stdout


def timed_snapshot(ctx: Any) -> float:
    t0 = time.perf_counter()
    outcome = snapshot_job(ctx)
    assert outcome == "ok", outcome
    return (time.perf_counter() - t0) * 1000


def probe_round(ctx: Any, seconds: float) -> list[float]:
    """Health samples one after another for ``seconds``: each one's latency (ms)."""
    probe = probe_for(ctx.settings)
    try:
        take_sample(ctx, probe)
        out: list[float] = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            take_sample(ctx, probe)
            out.append((time.perf_counter() - t0) * 1000)
        return out
    finally:
        probe.close()


def with_snapshots(ctx: Any, fn: Any) -> tuple[Any, int]:
    """``fn()`` while snapshots run back to back in another thread of this process (as in the daemon)."""
    stop, count = threading.Event(), [0]

    def loop() -> None:
        while not stop.is_set():
            snapshot_job(ctx)
            count[0] += 1

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        got = fn()
    finally:
        stop.set()
        t.join()
    return got, count[0]


def setup(sb: Sandbox, statements: int) -> Path:
    with (sb.pgdata / "postgresql.conf").open("a") as f:
        f.write("shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.max = 10000\n")
    sb.pg_ctl("restart")
    sb.psql("create extension if not exists pg_stat_statements")
    cols = ", ".join(f"c{i} int" for i in range(COLUMNS))
    sb.psql(f"create table wide ({cols}); insert into wide (c0) select 1 from generate_series(1, 10)")
    script = sb.root / "workload.sql"
    script.write_text(workload(statements))
    script.chmod(0o644)
    return script


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--statements", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=8.0, help="each probe round, idle or with snapshots")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    a = ap.parse_args()
    sb = Sandbox.create(prefix="opsd-bench-qs-", archiving=False)
    sb.up()
    try:
        script = setup(sb, a.statements)
        ctx = build(settings_mod.load(str(sb.opsd_conf)))
        psql(sb, "-f", str(script))
        timed_snapshot(ctx)  # the baseline
        psql(sb, "-f", str(script))
        first = timed_snapshot(ctx)  # every statement moved, every text read once
        tracked = int(sb.psql("select count(*) from pg_stat_statements"))
        times = []
        for _ in range(a.rounds):
            psql(sb, "-f", str(script))
            times.append(timed_snapshot(ctx))
        server = {r.split("|")[0]: float(r.split("|")[1]) for r in sb.psql(
            "select case when query like '%pg_stat_statements_info%' then 'qs_statements' "
            "when query like '%pg_stat_user_tables%' then 'qs_relations' when query like '%pg_postmaster_start%' "
            "then 'qs_server' end, round(mean_exec_time::numeric, 2) from pg_stat_statements where query like "
            "'%pg_stat_statements_info%' or query like '%pg_stat_user_tables t%' or query like "
            "'%pg_postmaster_start_time%'").splitlines() if r.split("|")[0]}
        idle, busy, snaps = [], [], 0
        for i in range(a.rounds):
            for which in (("idle", "busy") if i % 2 == 0 else ("busy", "idle")):
                if which == "idle":
                    idle += probe_round(ctx, a.seconds)
                else:
                    got, n = with_snapshots(ctx, lambda: probe_round(ctx, a.seconds))
                    busy += got
                    snaps += n
        figures = {
            "statements": a.statements, "tracked_by_pg_stat_statements": tracked,
            "snapshot_ms_first_with_texts": round(first, 1),
            "snapshot_ms_median": round(statistics.median(times), 1), "snapshot_ms_max": round(max(times), 1),
            "server_mean_ms": server,
            "probe_p50_ms_idle": round(percentile(idle, 50), 2), "probe_p95_ms_idle": round(percentile(idle, 95), 2),
            "probe_p50_ms_snapshots": round(percentile(busy, 50), 2),
            "probe_p95_ms_snapshots": round(percentile(busy, 95), 2),
            "probe_samples_idle": len(idle), "probe_samples_snapshots": len(busy),
            "snapshots_during_probes": snaps, "load_average": os.getloadavg(),
        }
        print(json.dumps(figures, indent=2))
        write_results(a.out, figures)
    finally:
        sb.down(remove=True)


def machine() -> dict[str, Any]:
    pg = subprocess.run([str(PG_BIN / "postgres"), "--version"], capture_output=True, text=True, check=False)
    return {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "postgres": pg.stdout.strip(),
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                     check=False).stdout.strip()}


def write_results(out: Path, figures: dict[str, Any]) -> None:
    day = time.strftime("%Y-%m-%d", time.gmtime())
    data = {"bench": "query_snapshots", "date": day, "machine": machine(), **figures}
    out.mkdir(parents=True, exist_ok=True)
    (out / f"query_snapshots-{day}.json").write_text(json.dumps(data, indent=2) + "\n")
    lines = [f"# Query-statistics snapshots, {day}", "", f"Machine: {data['machine']}", "", "| figure | value |",
             "|---|---|"] + [f"| {k} | {v} |" for k, v in figures.items()]
    (out / f"query_snapshots-{day}.md").write_text("\n".join(lines) + "\n")
    print(f"written {out}/query_snapshots-{day}.json and .md")


if __name__ == "__main__":
    main()
