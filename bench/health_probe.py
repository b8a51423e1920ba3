"""Health probe cost, measured in one run on a throwaway sandbox (PostgreSQL 15, max_connections raised):

1. probe latency (one full sample: lock trees + long sessions + deadlocks + connections) p50/p95 with 10 and
   with 1000 idle client connections, through the one reused probe connection;
2. pgbench TPS (TPC-B-like) with the sampler off and on (sampling every second, 30x the default rate),
   alternated to cancel drift.

3. round trips per sample: the server's committed transactions (the probe connection is in autocommit: one
   statement, one transaction) over 100 samples, read from pg_stat_database before and after.

Printed as ratios against the baseline of the same run, and written to bench/results/health_probe-DATE.json and
.md with the machine and versions. Usage:
    .venv/bin/python bench/health_probe.py [--samples 200] [--seconds 15] [--scale 10] [--out bench/results]
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

import psycopg

from opsd import settings as settings_mod
from opsd.actions.health.sample import take_sample
from opsd.context import build
from opsd.db.probe import probe_for
from opsd.db.queries import load
from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, run

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def probe_latency(ctx: Any, n: int) -> tuple[float, float]:
    probe = probe_for(ctx.settings)
    try:
        take_sample(ctx, probe)  # warm the connection and the catalog caches
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            s = take_sample(ctx, probe)
            times.append((time.perf_counter() - t0) * 1000)
            assert not s.problems, s.problems
        return percentile(times, 50), percentile(times, 95)
    finally:
        probe.close()


BEFORE = "da375b7"  # the last commit whose sample made five round trips: activity, deadlocks, recovery, standbys, slots


def raw_before_after(ctx: Any, n: int) -> dict[str, float] | None:
    """The statements alone (no Python around them), alternated on one connection: the five of the sample before
    one round trip, then sample.sql. None when git cannot show the old activity query."""
    old = subprocess.run(["git", "show", f"{BEFORE}:opsd/db/sql/activity.sql"], capture_output=True, text=True,
                         check=False, cwd=Path(__file__).parent)
    if old.returncode != 0:
        return None
    h = ctx.settings.health
    params = {"long_xact": h.long_transaction.total_seconds(), "idle_xact": h.idle_in_transaction.total_seconds()}
    before = [(old.stdout, params)] + [(load(q), {}) for q in ("deadlocks", "recovery", "replication_standbys",
                                                             "replication_slots")]
    after = [(load("sample"), params)]
    probe = probe_for(ctx.settings)
    times: dict[str, list[float]] = {"before": [], "after": []}

    def run(stmts: list[tuple[str, dict[str, Any]]]) -> Any:
        def go(c: Any) -> float:
            t0 = time.perf_counter()
            for sql, p in stmts:
                c.execute(sql, p).fetchall()
            return (time.perf_counter() - t0) * 1000
        return probe.run(go)

    try:
        run(before), run(after)
        for i in range(n):
            for name in (("before", "after") if i % 2 == 0 else ("after", "before")):
                times[name].append(run(before if name == "before" else after))
    finally:
        probe.close()
    return {f"{k}_{q}": round(percentile(v, p), 2) for k, v in times.items() for q, p in (("p50", 50), ("p95", 95))}


def round_trips(ctx: Any, sb: Sandbox, n: int = 100) -> float:
    """Statements per sample, counted by the server: committed transactions in the database, before and after."""
    def committed() -> int:
        time.sleep(1.2)  # backends report their statistics at most once a second
        with psycopg.connect(host=str(sb.socket_dir), port=sb.pg_port, user="postgres", dbname="template1",
                             autocommit=True) as c:
            row = c.execute("select xact_commit from pg_stat_database where datname = 'postgres'").fetchone()
            assert row is not None
            return int(row[0])

    probe = probe_for(ctx.settings)
    try:
        take_sample(ctx, probe)
        before = committed()
        for _ in range(n):
            take_sample(ctx, probe)
        probe.close()
        return (committed() - before) / n
    finally:
        probe.close()


def idle_connections(sb: Sandbox, n: int) -> list[psycopg.Connection[Any]]:
    return [psycopg.connect(host=str(sb.socket_dir), port=sb.pg_port, user="postgres", dbname="postgres",
                            autocommit=True, application_name="bench-idle") for _ in range(n)]


def pgbench_tps(sb: Sandbox, seconds: int) -> float:
    res = run(as_pg([str(PG_BIN / "pgbench"), "-h", str(sb.socket_dir), "-p", str(sb.pg_port), "-c", "4", "-j", "2",
                     "-T", str(seconds), "-n", "postgres"]), timeout=seconds + 60)
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("tps"))
    return float(line.split("=")[1].split()[0])


def with_sampler(ctx: Any, every: float, fn: Any) -> Any:
    stop = threading.Event()
    probe = probe_for(ctx.settings)
    count = [0]

    def loop() -> None:
        while not stop.is_set():
            take_sample(ctx, probe)
            count[0] += 1
            stop.wait(every)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        return fn(), count[0]
    finally:
        stop.set()
        t.join()
        probe.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    sb = Sandbox.create(prefix="opsd-bench-", archiving=False)
    sb.up()
    conns: list[psycopg.Connection[Any]] = []
    try:
        sb.psql("alter system set max_connections = 1100")
        sb.pg_ctl("restart")
        ctx = build(settings_mod.load(str(sb.opsd_conf)))
        print(f"sandbox {sb.root}: PostgreSQL 15, max_connections 1100", flush=True)

        conns = idle_connections(sb, 10)
        trips = round_trips(ctx, sb)
        p50_10, p95_10 = probe_latency(ctx, args.samples)
        conns += idle_connections(sb, 990)
        p50_1k, p95_1k = probe_latency(ctx, args.samples)
        raw = raw_before_after(ctx, args.samples)
        for c in conns:
            c.close()
        conns = []

        run(as_pg([str(PG_BIN / "pgbench"), "-h", str(sb.socket_dir), "-p", str(sb.pg_port), "-i", "-q", "-s",
                   str(args.scale), "postgres"]), timeout=600)
        off, on, samples = [], [], 0
        for _ in range(2):
            off.append(pgbench_tps(sb, args.seconds))
            tps, n = with_sampler(ctx, 1.0, lambda: pgbench_tps(sb, args.seconds))
            on.append(tps)
            samples += n
        tps_off, tps_on = statistics.mean(off), statistics.mean(on)

        print()
        print(f"probe latency, {args.samples} samples each (one sample = locks + long sessions + deadlocks + "
              "connections)")
        print(f"  {'idle connections':<18}{'p50 ms':>10}{'p95 ms':>10}")
        print(f"  {10:<18}{p50_10:>10.2f}{p95_10:>10.2f}")
        print(f"  {1000:<18}{p50_1k:>10.2f}{p95_1k:>10.2f}")
        print(f"  ratio 1000/10     {p50_1k / p50_10:>10.2f}x{p95_1k / p95_10:>9.2f}x")
        print()
        print(f"pgbench -c 4 -j 2, scale {args.scale}, {args.seconds}s x 2 rounds each, sampler every 1s "
              f"({samples} samples)")
        print(f"  sampler off: {tps_off:10.1f} tps   ({', '.join(f'{x:.0f}' for x in off)})")
        print(f"  sampler on:  {tps_on:10.1f} tps   ({', '.join(f'{x:.0f}' for x in on)})")
        print(f"  ratio on/off: {tps_on / tps_off:.3f}x")
        print(f"round trips per sample (server-side statements): {trips:.2f}")
        print(f"statements alone at 1000 connections, alternated (ms): {raw}")
        write_results(args.out, {
            "samples": args.samples, "round_trips_per_sample": round(trips, 2),
            "p50_ms_10": round(p50_10, 2), "p95_ms_10": round(p95_10, 2),
            "p50_ms_1000": round(p50_1k, 2), "p95_ms_1000": round(p95_1k, 2), "p95_target_ms_1000": 5.0,
            "pgbench_scale": args.scale, "pgbench_seconds": args.seconds, "tps_sampler_off": round(tps_off, 1),
            "tps_sampler_on": round(tps_on, 1), "tps_ratio_on_off": round(tps_on / tps_off, 3),
            "statements_alone_1000_ms": raw, "load_average": os.getloadavg()})
    finally:
        for c in conns:
            c.close()
        sb.down(remove=True)


def machine() -> dict[str, Any]:
    pg = subprocess.run([str(PG_BIN / "postgres"), "--version"], capture_output=True, text=True, check=False)
    return {"host": platform.node(), "cpus": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "postgres": pg.stdout.strip(), "psycopg": psycopg.__version__,
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                     check=False).stdout.strip()}


def write_results(out: Path, figures: dict[str, Any]) -> None:
    day = time.strftime("%Y-%m-%d", time.gmtime())
    data = {"bench": "health_probe", "date": day, "machine": machine(), **figures}
    out.mkdir(parents=True, exist_ok=True)
    (out / f"health_probe-{day}.json").write_text(json.dumps(data, indent=2) + "\n")
    lines = [f"# Health probe, {day}", "", f"Machine: {data['machine']}", "", "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in figures.items()]
    (out / f"health_probe-{day}.md").write_text("\n".join(lines) + "\n")
    print(f"written {out}/health_probe-{day}.json and .md")


if __name__ == "__main__":
    main()
