"""opsd at a size where the fixed costs fade and the work shows (pgbench scale 300, about 4.5 GiB), in one run on a
throwaway sandbox, rounds alternated so caches favour neither side, medians compared:

1. full backup: opsd vs bare `pgbackrest backup`                                       (target <= 1.03x)
2. restore --to-time: opsd vs bare `pgbackrest restore`, same target and set           (target <= 1.03x)
3. drill verification on one restored copy: opsd's amcheck + full reads on [drill] verify_jobs connections vs
   `pg_amcheck --jobs=<cores> --heapallindexed` plus a parallel COPY of every table     (target <= 1.2x)
4. drill RTO and total vs bare restore + recovery
5. WAL-heavy replay (at least --wal-gib of WAL after the backup): recovery of `opsd restore --start` with
   asynchronous archive-get prefetch vs pgBackRest's own synchronous restore_command     (target >= 1.5x faster)
6. health probe p50/p95 with 1000 idle connections                                     (target p95 <= 5 ms)
7. `opsd --version` and `opsd status` start-up; the idle daemon's RSS and CPU

Results go to bench/results/scale-<date>.{json,md} with the machine, versions and settings.
    .venv/bin/python bench/scale.py [--scale 300] [--rounds 2] [--wal-gib 2] [--idle 60]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backup_restore import PG_BIN, bare_recover, fresh, idle_daemon, machine, opsd, pgbr, save, target_time, timed
from scale_parts import amcheck_and_reads, opsd_verify, probe_p95, running, settle, startup, wal_heavy

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, free_port


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def pgbench(sb: Sandbox, *args: str, timeout: float = 7200) -> float:
    t, res = timed(as_pg([str(PG_BIN / "pgbench"), "-h", str(sb.socket_dir), "-p", str(sb.pg_port), *args,
                          "postgres"]), timeout=timeout)
    assert res.returncode == 0, res.stderr[-2000:]
    return t


def backups(sb: Sandbox, rounds: int) -> dict[str, Any]:
    bare, via = [], []
    for _ in range(rounds):
        settle()
        t, res = pgbr(sb, "--type=full", "--start-fast", "backup")
        assert res.returncode == 0, res.stderr
        bare.append(t)
        settle()
        t, res = opsd(sb, "backup", "--type", "full")
        assert res.returncode == 0, res.stderr
        via.append(t)
        print(f"  full backup bare {bare[-1]:.1f}s, opsd {via[-1]:.1f}s", flush=True)
    return {"bare_seconds": bare, "opsd_seconds": via, "ratio": round(median(via) / median(bare), 3), "target": 1.03}


def restores(sb: Sandbox, rounds: int, target: str, label: str) -> dict[str, Any]:
    bare, via = [], []
    port = free_port()
    for i in range(rounds):
        d = fresh(sb.root / f"bare-{i}")
        settle()
        t, res = pgbr(sb, f"--pg1-path={d}", f"--set={label}", "--type=time", f"--target={target}",
                      "--target-action=promote", "--archive-mode=off", "restore")
        assert res.returncode == 0, res.stderr
        bare.append(t)
        settle()
        t, res = opsd(sb, "restore", "--to-time", target, "--target-dir", str(sb.root / f"opsd-{i}"), "--port",
                      str(port), "--set", label)
        assert res.returncode == 0, res.stderr
        via.append(t)
        fresh(sb.root / f"opsd-{i}")
        print(f"  restore bare {bare[-1]:.1f}s, opsd {via[-1]:.1f}s", flush=True)
    t_plan, res = opsd(sb, "restore", "--to-time", target, "--target-dir", str(sb.root / "plan-only"), "--port",
                       str(port), "--set", label, "--dry-run")
    assert res.returncode == 0, res.stderr
    return {"bare_seconds": bare, "opsd_seconds": via, "ratio": round(median(via) / median(bare), 3),
            "opsd_plan_only_seconds": round(t_plan, 2), "target": 1.03}


def verification(sb: Sandbox, rounds: int, copy: Path, cores: int) -> dict[str, Any]:
    port = free_port()
    bare, via, serial = [], [], None
    with running(sb, copy, port):
        for i in range(rounds):
            settle()
            bare.append(amcheck_and_reads(sb, port, cores))
            settle()
            via.append(opsd_verify(sb, port, cores))
            print(f"  verification bare {bare[-1]['seconds']:.1f}s, opsd {via[-1]['seconds']:.1f}s", flush=True)
            if i == 0:
                settle()
                serial = opsd_verify(sb, port, 1)  # one connection: what a drill did before verify_jobs
                print(f"  verification opsd on one connection {serial['seconds']:.1f}s", flush=True)
    b, v = median([x["seconds"] for x in bare]), median([x["seconds"] for x in via])
    return {"bare": bare, "opsd": via, "opsd_one_connection": serial, "jobs": cores, "ratio": round(v / b, 3),
            "target": 1.2}


def drill(sb: Sandbox, target: str, bare_restore: float, copy: Path) -> dict[str, Any]:
    recovery = bare_recover(sb, copy, free_port())
    bare_total = bare_restore + recovery
    t, res = opsd(sb, "drill", "run", "--target", target, "--json")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    d = json.loads(res.stdout)
    print(f"  drill rto {d['rto_seconds']:.1f}s, wall {t:.1f}s vs bare {bare_total:.1f}s", flush=True)
    return {"bare_restore_plus_recovery_seconds": round(bare_total, 2), "drill_wall_seconds": round(t, 2),
            "drill_phases": d["phases"], "drill_rto_seconds": d["rto_seconds"],
            "rto_ratio": round(d["rto_seconds"] / bare_total, 3), "total_ratio": round(t / bare_total, 3),
            "checks": {c["name"]: c["status"] for c in d["checks"]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--wal-gib", type=float, default=2.0)
    ap.add_argument("--idle", type=int, default=60)
    args = ap.parse_args()
    cores = machine()["cores"]
    sb = Sandbox.create(prefix="opsd-bench-", archiving=True)
    sb.up()
    r: dict[str, Any] = {"started": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
                         "settings": {"pgbench_scale": args.scale, "rounds": args.rounds, "wal_gib": args.wal_gib,
                                      "compress_type": "zst", "process_max": 2, "verify_jobs": cores,
                                      "repo": "S3 (moto behind nginx TLS, loopback)"}}
    try:
        sb.write_opsd_conf(drill={"process_max": 2})  # as the bare runs (the default 1 is a production choice)
        assert opsd(sb, "setup")[1].returncode == 0
        print(f"sandbox {sb.root}; pgbench -i -s {args.scale} ...", flush=True)
        init = pgbench(sb, "-i", "-q", "-s", str(args.scale))
        r["database"] = {"bytes": int(sb.psql("select pg_database_size('postgres')")), "init_seconds": round(init)}
        r["startup"] = startup(sb)
        r["full_backup"] = backups(sb, args.rounds)
        label = json.loads(pgbr(sb, "--output=json", "info")[1].stdout)[0]["backup"][-1]["label"]
        target = target_time(sb)
        r["restore"] = restores(sb, args.rounds, target, label)
        copy = sb.root / f"bare-{args.rounds - 1}"
        r["verification"] = verification(sb, args.rounds, copy, cores)
        r["drill"] = drill(sb, target, median(r["restore"]["bare_seconds"]), fresh_restore(sb, copy, target, label))
        r["wal_replay"] = wal_heavy(sb, args.rounds, args.wal_gib)
        r["startup_after"] = startup(sb)
        r["probe"] = probe_p95(sb)
        r["idle_daemon"] = idle_daemon(sb, args.idle)
    finally:
        sb.down(remove=True)
    from scale_report import markdown

    save("scale", r, markdown)


def fresh_restore(sb: Sandbox, copy: Path, target: str, label: str) -> Path:
    """The verification started (and promoted) the copy: restore it again for the bare recovery."""
    d = fresh(copy)
    res = pgbr(sb, f"--pg1-path={d}", f"--set={label}", "--type=time", f"--target={target}",
               "--target-action=promote", "--archive-mode=off", "restore")[1]
    assert res.returncode == 0, res.stderr
    return d


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--markdown":  # re-render a results file
        from scale_report import markdown

        print(markdown(json.loads(Path(sys.argv[2]).read_text())), end="")
    else:
        main()
