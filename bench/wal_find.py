"""How fast `opsd wal find` reads the archived WAL, against the same segments read bare, in one run:

1. baseline: `pgbackrest archive-get` of each segment, one at a time, then one `pg_waldump` over them all
2. `opsd wal find --table` over the same range (segments fetched in parallel, decoded a chunk at a time,
   attributed to the table)

The WAL comes from pgbench (scale --scale, --seconds of writes). Rounds alternate (bare, opsd, ...); the
medians are compared and the rate is MiB of WAL a second. Results (machine, versions, settings) go to
bench/results/wal_find-<date>.{json,md}.
    .venv/bin/python bench/wal_find.py [--scale 20] [--seconds 60] [--rounds 3] [--jobs 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, mkdir_pg, run

PG_BIN = Path("/usr/lib/postgresql/15/bin")
RESULTS = Path(__file__).resolve().parent / "results"


def segments(sb: Sandbox, since: str) -> list[str]:
    out = run(as_pg(["pgbackrest", f"--config={sb.pgbackrest_conf}", f"--stanza={sb.stanza}", "--output=json",
                     "--recurse", "repo-ls", f"archive/{sb.stanza}"])).stdout
    names = sorted(k.rsplit("/", 1)[-1][:24] for k, v in json.loads(out).items()
                   if v["type"] == "file" and len(k.rsplit("/", 1)[-1]) > 40 and "." not in k.rsplit("/", 1)[-1][:25])
    return [n for n in names if n >= since]


def bare(sb: Sandbox, names: list[str], work: Path) -> float:
    d = work / "bare"
    if d.exists():
        shutil.rmtree(d)
    mkdir_pg(d, 0o700)
    t0 = time.perf_counter()
    for n in names:
        run(as_pg(["pgbackrest", f"--config={sb.pgbackrest_conf}", f"--stanza={sb.stanza}", "archive-get", n,
                   str(d / n)]))
    lsn = f"{int(names[0][8:16], 16):X}/{int(names[0][16:24], 16) * 16 * 1024 * 1024:X}"
    res = subprocess.run(as_pg([str(PG_BIN / "pg_waldump"), "-p", str(d), "-s", lsn, "-r", "Heap", "-r", "Heap2",
                                "-r", "Transaction", "-r", "Storage", "-r", "XLOG"]),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False, timeout=3600)
    secs = time.perf_counter() - t0
    assert res.returncode in (0, 1), res.stderr
    return secs


def with_opsd(sb: Sandbox, since: str, jobs: int, *extra: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    res = run([sys.executable, "-m", "opsd", "--config", str(sb.opsd_conf), "--log-level", "warning", "wal", "find",
               "--table", "public.pgbench_accounts", "--since", since, "--jobs", str(jobs), *extra, "--json"],
              timeout=3600)
    return time.perf_counter() - t0, len(json.loads(res.stdout))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=4)
    a = ap.parse_args()
    sb = Sandbox.create(prefix="opsd-bench-wal-", archiving=False)
    sb.up()
    try:
        run([sys.executable, "-m", "opsd", "--config", str(sb.opsd_conf), "setup", "--restart"], timeout=600)
        pgbench = [str(PG_BIN / "pgbench"), "-h", str(sb.socket_dir), "-p", str(sb.pg_port), "postgres"]
        run(as_pg([*pgbench[:1], "-i", "-q", "-s", str(a.scale), *pgbench[1:]]), timeout=3600)
        run([sys.executable, "-m", "opsd", "--config", str(sb.opsd_conf), "backup", "--type", "full"], timeout=3600)
        time.sleep(1.1)
        since_time = datetime.now(UTC) - timedelta(seconds=1)
        first = sb.psql("select pg_walfile_name(pg_current_wal_lsn())")
        run(as_pg([*pgbench[:1], "-n", "-c", "4", "-j", "2", "-T", str(a.seconds), *pgbench[1:]]),
            timeout=a.seconds + 600)
        sb.psql("select pg_switch_wal()")
        time.sleep(5)
        names = segments(sb, first)
        mib = len(names) * 16
        since = since_time.strftime("%Y-%m-%d %H:%M:%S UTC")
        work = sb.root / "bench-work"
        mkdir_pg(work, 0o700)
        rounds: dict[str, list[float]] = {"bare": [], "opsd": [], "opsd_min_rows": []}
        txns = 0
        for _ in range(a.rounds):
            rounds["bare"].append(bare(sb, names, work))
            secs, txns = with_opsd(sb, since, a.jobs)
            rounds["opsd"].append(secs)
            rounds["opsd_min_rows"].append(with_opsd(sb, since, a.jobs, "--min-rows", "100")[0])
        med = {k: statistics.median(v) for k, v in rounds.items()}
        result: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.node(),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "settings": {"scale": a.scale, "seconds": a.seconds, "rounds": a.rounds, "jobs": a.jobs},
            "segments": len(names), "wal_mib": mib, "transactions_found": txns, "rounds": rounds,
            "median_seconds": med, "rate_mib_s": {k: round(mib / v, 1) for k, v in med.items()},
            "ratio_opsd_vs_bare": round(med["opsd"] / med["bare"], 3),
            "ratio_opsd_min_rows_vs_bare": round(med["opsd_min_rows"] / med["bare"], 3),
        }
        RESULTS.mkdir(exist_ok=True)
        stem = RESULTS / f"wal_find-{datetime.now(UTC):%Y-%m-%d}"
        stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        stem.with_suffix(".md").write_text(
            f"# opsd wal find: {result['date']}\n\n"
            f"{len(names)} segments ({mib} MiB) of pgbench WAL (scale {a.scale}, {a.seconds} s, 4 clients), "
            f"{txns} transactions found for pgbench_accounts; {a.rounds} alternated rounds, medians.\n\n"
            "| run | median | rate |\n|---|---|---|\n"
            f"| bare: archive-get one at a time + one pg_waldump | {med['bare']:.1f} s | "
            f"{result['rate_mib_s']['bare']} MiB/s |\n"
            f"| opsd wal find --jobs {a.jobs} (every transaction listed) | {med['opsd']:.1f} s | "
            f"{result['rate_mib_s']['opsd']} MiB/s |\n"
            f"| opsd wal find --jobs {a.jobs} --min-rows 100 (none listed) | {med['opsd_min_rows']:.1f} s | "
            f"{result['rate_mib_s']['opsd_min_rows']} MiB/s |\n\n"
            f"ratio opsd / bare: **{result['ratio_opsd_vs_bare']}** listing every transaction, "
            f"**{result['ratio_opsd_min_rows_vs_bare']}** with --min-rows, on {os.cpu_count()} cores "
            f"({platform.node()}). Every pgbench transaction updates pgbench_accounts: the worst case for opsd, "
            "which parses each record in Python where bare pg_waldump only prints it.\n")
        print(stem.with_suffix(".md").read_text())
    finally:
        sb.down()


if __name__ == "__main__":
    main()
