"""A full backup and a recovery drill under client load, against the same without load, in one run:

1000 client connections through PgBouncer (transaction pooling, 20 server connections), TPC-B-like transactions
at a fixed rate (pgbench -R), while opsd takes a full backup and runs a drill (target latest), and its health
sampler probes every second. Rounds alternate (no load, load) and medians are compared:

- backup and drill wall time, loaded / unloaded;
- health probe latency p50/p95 (one sample: lock trees, long sessions, connections, PgBouncer pools), loaded /
  unloaded, and any probe problem (a sample over its timeout);
- pgbench: transactions, tps, failed transactions and client errors (must be 0: the backup and the drill
  must not disturb the clients).

Results (with machine and settings) go to bench/results/load-<date>.{json,md}.
    .venv/bin/python bench/load.py [--scale 20] [--clients 1000] [--rate 300] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backup_restore import RESULTS, machine

from opsd import settings as settings_mod
from opsd.context import build
from opsd_sandbox import Sandbox
from opsd_sandbox.load import Pgbench, Sampler, pgbench_init
from opsd_sandbox.procs import run, wait_for


def opsd(sb: Sandbox, *args: str) -> float:
    t0 = time.perf_counter()
    run([sys.executable, "-m", "opsd", "--config", str(sb.opsd_conf), *args], timeout=3600)
    return time.perf_counter() - t0


def one_round(sb: Sandbox, bouncer: int, args: argparse.Namespace, loaded: bool) -> dict[str, Any]:
    bench = Pgbench(bouncer, clients=args.clients, rate=args.rate, log=sb.root / "pgbench.log") if loaded else None
    try:
        if bench is not None:
            wait_for(bench.running, timeout=300, what="pgbench clients connected")
        with Sampler(build(settings_mod.load(str(sb.opsd_conf))), interval=1.0) as samples:
            backup = opsd(sb, "backup", "--type", "full")
            drill = opsd(sb, "drill", "run", "--target", "latest")
    finally:
        load = bench.finish().as_json() if bench is not None else None
    return {"loaded": loaded, "backup_seconds": round(backup, 2), "drill_seconds": round(drill, 2),
            "probe": samples.summary(), "probe_problems": samples.problems[:5],
            "pool_clients_max": max(samples.pool_clients, default=0), "pgbench": load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=20)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    sb = Sandbox.create(prefix="opsd-bench-", archiving=False)
    sb.up()
    try:
        run([sys.executable, "-m", "opsd", "--config", str(sb.opsd_conf), "setup", "--restart"])
        pgbench_init(sb.socket_dir, sb.pg_port, args.scale)
        bouncer = sb.start_pgbouncer(pool_size=20, pool_mode="transaction", max_client_conn=args.clients + 100)
        sb.write_opsd_conf(extra=f'\n[pgbouncer]\nhost = "127.0.0.1"\nport = {bouncer}\nadmin_user = "opsd_admin"\n')
        rounds = []
        for i in range(args.rounds):
            for loaded in (False, True):
                rounds.append(one_round(sb, bouncer, args, loaded))
                print(f"round {i + 1}, {'loaded' if loaded else 'unloaded'}: {json.dumps(rounds[-1])}", flush=True)
        result = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
                  "settings": vars(args) | {"pool_size": 20, "pool_mode": "transaction", "sample_every": 1.0},
                  "rounds": rounds}
        day = result["when"][:10]
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"load-{day}.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / f"load-{day}.md").write_text(markdown(result))
        print(markdown(result))
    finally:
        sb.stop_pgbouncer()
        sb.down(remove=True)


def _med(rounds: list[dict[str, Any]], loaded: bool, *path: str) -> float:
    values = []
    for r in rounds:
        if r["loaded"] == loaded:
            v: Any = r
            for p in path:
                v = v[p]
            values.append(float(v))
    return statistics.median(values)


def markdown(r: dict[str, Any]) -> str:
    rounds, s, m = r["rounds"], r["settings"], r["machine"]
    rows = []
    for label, path, unit in (("full backup", ("backup_seconds",), "s"), ("drill (target latest)",
                              ("drill_seconds",), "s"), ("health probe p50", ("probe", "p50_ms"), "ms"),
                              ("health probe p95", ("probe", "p95_ms"), "ms")):
        off, on = _med(rounds, False, *path), _med(rounds, True, *path)
        rows.append(f"| {label} | {off:.1f} {unit} | {on:.1f} {unit} | {on / off:.2f}x |")
    loads = [x["pgbench"] for x in rounds if x["loaded"]]
    problems = sum(len(x["probe_problems"]) for x in rounds)
    return "\n".join([
        f"# Backup and drill under client load ({r['when']})", "",
        f"Machine: {m['cores']} cores, {m['memory_gib']} GiB; {m['postgres']}; {m['pgbackrest']}; {m['opsd']}.",
        f"Load: pgbench scale {s['scale']}, {s['clients']} clients through PgBouncer ({s['pool_mode']} pooling, "
        f"{s['pool_size']} server connections), {s['rate']} tps requested (-R), connections kept (no -C); the "
        f"health sampler every {s['sample_every']} s. {s['rounds']} alternated rounds, medians compared.", "",
        "| measure | no load | under load | ratio |", "|---|---|---|---|", *rows, "",
        "pgbench during the loaded rounds: " + "; ".join(
            f"{x['transactions']} transactions over {x['seconds']:.0f} s, median {x['tps_median']:.0f} tps, "
            f"{x['failed']} failed, {len(x['errors'])} client error(s)" for x in loads) + ".",
        f"Health probe problems (a sample over its timeout): {problems}. PgBouncer clients seen by the sampler: "
        f"{max(x['pool_clients_max'] for x in rounds)}.", ""])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--markdown":  # re-render a results file
        print(markdown(json.loads(Path(sys.argv[2]).read_text())), end="")
    else:
        main()
