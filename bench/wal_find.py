"""How fast `opsd wal find` reads the archived WAL, against the same segments read bare, in one run:

1. the floor: `pgbackrest archive-get` of the segments, --jobs at once, and `pg_waldump` (the same filters)
   over ranges of 3 segments, as many at once as there are cores (min(--jobs, cores)), each started as soon as
   its segments are in; output thrown away (no opsd, no parsing)
2. the old floor: `pgbackrest archive-get` of each segment, one at a time, then one `pg_waldump` over them all
3. `opsd wal find --table` over the same range (segments fetched in parallel, decoded and parsed by one process
   a core, attributed to the table), listing every transaction and with --min-rows 100 (listing none)

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
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, mkdir_pg, run

PG_BIN = Path("/usr/lib/postgresql/15/bin")
RESULTS = Path(__file__).resolve().parent / "results"
BEFORE = 33.6  # MiB/s, opsd wal find --min-rows 100 on 2026-12-01 (bench/results/wal_find-2026-12-01.md)
RMGRS = ["-r", "Heap", "-r", "Heap2", "-r", "Transaction", "-r", "Storage", "-r", "XLOG"]
CHUNK = 4


def _lsn(name: str, plus: int = 0) -> str:
    n = (int(name[8:16], 16) * 0x100 + int(name[16:24], 16) + plus) * 16 * 1024 * 1024
    return f"{n >> 32:X}/{n & 0xFFFFFFFF:X}"


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


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
    res = subprocess.run(as_pg([str(PG_BIN / "pg_waldump"), "-p", str(d), "-s", _lsn(names[0]), *RMGRS]),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False, timeout=3600)
    secs = time.perf_counter() - t0
    assert res.returncode in (0, 1), res.stderr
    return secs


def bare_parallel(sb: Sandbox, names: list[str], work: Path, jobs: int) -> float:
    """The floor: archive-get --jobs at once, one pg_waldump a core over ranges of CHUNK - 1 segments (what an
    opsd task keeps; records that cross a range's end are cut: a floor, not an answer)."""
    d = work / "bare-par"
    if d.exists():
        shutil.rmtree(d)
    mkdir_pg(d, 0o700)
    procs = max(1, min(jobs, len(os.sched_getaffinity(0))))
    ranges = [names[i:i + CHUNK - 1] for i in range(0, len(names), CHUNK - 1)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(jobs) as get, ThreadPoolExecutor(procs) as dump:
        got = {n: get.submit(run, as_pg(["pgbackrest", f"--config={sb.pgbackrest_conf}", f"--stanza={sb.stanza}",
                                          "archive-get", n, str(d / n)])) for n in names}

        def one(r: list[str]) -> int:
            for n in r:
                got[n].result()
            return subprocess.run(as_pg([str(PG_BIN / "pg_waldump"), "-p", str(d), "-s", _lsn(r[0]), "-e",
                                         _lsn(r[-1], 1), *RMGRS]), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, check=False, timeout=3600).returncode

        futures: list[Future[int]] = [dump.submit(one, r) for r in ranges]
        assert all(f.result() in (0, 1) for f in futures)
    return time.perf_counter() - t0


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
        rounds: dict[str, list[float]] = {"bare_parallel": [], "bare": [], "opsd": [], "opsd_min_rows": []}
        txns = 0
        loads = [load()]
        for _ in range(a.rounds):
            rounds["bare_parallel"].append(bare_parallel(sb, names, work, a.jobs))
            rounds["bare"].append(bare(sb, names, work))
            secs, txns = with_opsd(sb, since, a.jobs)
            rounds["opsd"].append(secs)
            rounds["opsd_min_rows"].append(with_opsd(sb, since, a.jobs, "--min-rows", "100")[0])
            loads.append(load())
        med = {k: statistics.median(v) for k, v in rounds.items()}
        rate = {k: round(mib / v, 1) for k, v in med.items()}
        cores = len(os.sched_getaffinity(0))
        result: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.node(),
            "cpus": os.cpu_count(), "cores_usable": cores, "python": platform.python_version(),
            "load_average_1_5_15_before_and_after_each_round": loads,
            "settings": {"scale": a.scale, "seconds": a.seconds, "rounds": a.rounds, "jobs": a.jobs},
            "segments": len(names), "wal_mib": mib, "transactions_found": txns, "rounds": rounds,
            "median_seconds": med, "rate_mib_s": rate,
            "ratio_opsd_vs_bare": round(med["opsd"] / med["bare"], 3),
            "ratio_opsd_min_rows_vs_bare": round(med["opsd_min_rows"] / med["bare"], 3),
            "ratio_opsd_min_rows_vs_floor": round(med["opsd_min_rows"] / med["bare_parallel"], 3),
            "ratio_opsd_vs_floor": round(med["opsd"] / med["bare_parallel"], 3),
            "speedup_min_rows_vs_2026_12_01": round(rate["opsd_min_rows"] / BEFORE, 2),
            "targets": {"speedup_min_rows_vs_2026_12_01": ">= 1.8", "ratio_opsd_min_rows_vs_floor": "<= 1.3"},
        }
        RESULTS.mkdir(exist_ok=True)
        stem = RESULTS / f"wal_find-{datetime.now(UTC):%Y-%m-%d}"
        stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        stem.with_suffix(".md").write_text(
            f"# opsd wal find: {result['date']}\n\n"
            f"{len(names)} segments ({mib} MiB) of pgbench WAL (scale {a.scale}, {a.seconds} s, 4 clients), "
            f"{txns} transactions found for pgbench_accounts; {a.rounds} alternated rounds, medians.\n\n"
            "| run | median | rate |\n|---|---|---|\n"
            f"| floor: archive-get --jobs {a.jobs} at once + pg_waldump over {CHUNK - 1}-segment ranges, "
            f"{min(a.jobs, cores)} at once | {med['bare_parallel']:.1f} s | {rate['bare_parallel']} MiB/s |\n"
            f"| old floor: archive-get one at a time + one pg_waldump | {med['bare']:.1f} s | {rate['bare']} MiB/s |\n"
            f"| opsd wal find --jobs {a.jobs} (every transaction listed) | {med['opsd']:.1f} s | "
            f"{rate['opsd']} MiB/s |\n"
            f"| opsd wal find --jobs {a.jobs} --min-rows 100 (none listed) | {med['opsd_min_rows']:.1f} s | "
            f"{rate['opsd_min_rows']} MiB/s |\n\n"
            f"--min-rows 100: **{rate['opsd_min_rows']} MiB/s**, {result['speedup_min_rows_vs_2026_12_01']}x the "
            f"{BEFORE} MiB/s of 2026-12-01 (target >= 1.8x); **{result['ratio_opsd_min_rows_vs_floor']}x** the floor's "
            f"time (target <= 1.3x). Listing every transaction: {result['ratio_opsd_vs_floor']}x the floor. "
            f"{cores} usable cores ({platform.node()}); load average (1, 5, 15 min) before and after each round: "
            f"{', '.join(loads)} (the machine is shared). Every pgbench transaction updates pgbench_accounts: the "
            "worst case for opsd, which parses each record in Python where bare pg_waldump only prints it.\n")
        print(stem.with_suffix(".md").read_text())
    finally:
        sb.down()


if __name__ == "__main__":
    main()
