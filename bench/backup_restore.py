"""What opsd costs on top of pgBackRest, measured in one run on a throwaway sandbox with a pgbench database:

1. full backup through opsd vs the same `pgbackrest backup` run bare                  (target <= 1.02x)
2. opsd's backup (pgBackRest, zstd) vs `pg_basebackup -Ft -z` on the same data: wall time and size
3. `opsd restore --to-time` vs bare `pgbackrest restore` with the same target         (target <= 1.05x)
4. drill vs bare restore + recovery to the same target: RTO part and total             (target <= 1.15x)
5. the idle daemon's RSS and CPU over a minute

Runs alternate (bare, opsd, bare, opsd) so caches favour neither; the median of the rounds is compared.
Results (with machine, versions and settings) go to bench/results/backup_restore-<date>.{json,md}.
    .venv/bin/python bench/backup_restore.py [--scale 50] [--rounds 2] [--idle 60]
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, free_port, mkdir_pg, run

PG_BIN = Path("/usr/lib/postgresql/15/bin")
RESULTS = Path(__file__).resolve().parent / "results"


def timed(argv: list[str], **kw: Any) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    res = run(argv, **kw)
    return time.perf_counter() - t0, res


def opsd(sb: Sandbox, *args: str, timeout: float = 3600) -> tuple[float, subprocess.CompletedProcess[str]]:
    return timed([sys.executable, "-m", "opsd", "--config", str(sb.opsd_conf), *args], timeout=timeout)


def pgbr(sb: Sandbox, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    return timed(as_pg(["pgbackrest", f"--config={sb.pgbackrest_conf}", f"--stanza={sb.stanza}", *args]), timeout=3600)


def target_time(sb: Sandbox) -> str:
    """15 s of pgbench, a target time, and a commit archived after it (recovery can reach the target)."""
    run(as_pg([str(PG_BIN / "pgbench"), "-h", str(sb.socket_dir), "-p", str(sb.pg_port), "-n", "-T", "15", "-c",
               "2", "postgres"]), timeout=120)
    target = sb.psql("select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
    sb.psql("select pg_switch_wal()")
    time.sleep(3)
    sb.psql("insert into pgbench_history(tid, bid, aid, delta, mtime) values (1, 1, 1, 1, now())")
    sb.psql("select pg_switch_wal()")
    time.sleep(3)
    return target


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def fresh(path: Path) -> Path:
    if path.exists():
        run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(path), "-m", "immediate", "-w", "stop"]), check=False)
        shutil.rmtree(path)
    path.mkdir(mode=0o700)
    run(["chown", "postgres:postgres", str(path)])
    return path


def bare_recover(sb: Sandbox, dest: Path, port: int) -> float:
    """Start a restored copy and wait until it has promoted (what 'recovery' means for the drill too)."""
    t0 = time.perf_counter()
    run(
        as_pg(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(dest),
                "-l",
                str(sb.root / "pglog" / f"{dest.name}.log"),
                "-w",
                "-o",
                f"-c port={port} -c unix_socket_directories={sb.socket_dir} -c listen_addresses='' -c archive_mode=off",
                "start",
            ]
        ),
        timeout=3600,
    )
    while True:
        out = run(
            as_pg(
                [str(PG_BIN / "psql"), "-h", str(sb.socket_dir), "-p", str(port), "-XAtc", "select pg_is_in_recovery()"]
            ),
            check=False,
        ).stdout.strip()
        if out == "f":
            break
        time.sleep(0.1)
    secs = time.perf_counter() - t0
    run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(dest), "-m", "immediate", "-w", "stop"]), check=False)
    return secs


def idle_daemon(sb: Sandbox, seconds: int) -> dict[str, float]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "opsd", "--config", str(sb.opsd_conf), "daemon"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(5)  # imports done, scheduler running

        def cpu() -> float:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        def rss() -> float:
            line = next(x for x in Path(f"/proc/{proc.pid}/status").read_text().splitlines() if x.startswith("VmRSS"))
            return int(line.split()[1]) / 1024

        c0, t0 = cpu(), time.monotonic()
        peak = rss()
        while time.monotonic() - t0 < seconds:
            time.sleep(1)
            peak = max(peak, rss())
        used = cpu() - c0
        return {
            "seconds": round(time.monotonic() - t0, 1),
            "cpu_seconds": round(used, 3),
            "cpu_percent": round(100 * used / seconds, 3),
            "rss_mib_end": round(rss(), 1),
            "rss_mib_peak": round(peak, 1),
        }
    finally:
        proc.terminate()
        proc.wait(60)


def machine() -> dict[str, Any]:
    disk = shutil.disk_usage("/tmp")
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "disk_tmp_total_gib": round(disk.total / 2**30),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "pgbackrest": run(["pgbackrest", "version"]).stdout.strip(),
        "postgres": run([str(PG_BIN / "postgres"), "--version"]).stdout.strip(),
        "opsd": run([sys.executable, "-m", "opsd", "--version"]).stdout.strip(),
    }


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--idle", type=int, default=60)
    args = ap.parse_args()
    sb = Sandbox.create(prefix="opsd-bench-", archiving=True)
    sb.up()
    r: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "pgbench_scale": args.scale,
            "rounds": args.rounds,
            "compress_type": "zst",
            "process_max": 2,
            "repo": "S3 (moto behind nginx TLS, loopback)",
        },
    }
    try:
        sb.write_opsd_conf(drill={"process_max": 2})  # as the bare runs (the default 1 is a production choice)
        assert opsd(sb, "setup")[1].returncode == 0
        print(f"sandbox {sb.root}; pgbench -i -s {args.scale} ...", flush=True)
        t, _ = timed(
            as_pg(
                [
                    str(PG_BIN / "pgbench"),
                    "-h",
                    str(sb.socket_dir),
                    "-p",
                    str(sb.pg_port),
                    "-i",
                    "-q",
                    "-s",
                    str(args.scale),
                    "postgres",
                ]
            ),
            timeout=3600,
        )
        db_bytes = int(sb.psql("select pg_database_size('postgres')"))
        r["database"] = {"bytes": db_bytes, "init_seconds": round(t, 1)}

        # 1. full backup: bare vs opsd, alternated
        bare, via = [], []
        for _ in range(args.rounds):
            t, res = pgbr(sb, "--type=full", "--start-fast", "backup")
            assert res.returncode == 0, res.stderr
            bare.append(t)
            t, res = opsd(sb, "backup", "--type", "full")
            assert res.returncode == 0, res.stderr
            via.append(t)
            print(f"  full backup bare {bare[-1]:.1f}s, opsd {via[-1]:.1f}s", flush=True)
        r["full_backup"] = {
            "bare_seconds": bare,
            "opsd_seconds": via,
            "ratio": round(median(via) / median(bare), 3),
            "target": 1.02,
        }
        info = json.loads(pgbr(sb, "--output=json", "info")[1].stdout)[0]["backup"][-1]
        repo_bytes = info["info"]["repository"]["delta"]

        # 2. pg_basebackup -Ft -z on the same data
        dest = mkdir_pg(sb.root / "basebackup", 0o700)
        t, res = timed(
            as_pg(
                [
                    str(PG_BIN / "pg_basebackup"),
                    "-h",
                    str(sb.socket_dir),
                    "-p",
                    str(sb.pg_port),
                    "-D",
                    str(dest),
                    "-Ft",
                    "-z",
                    "-X",
                    "fetch",
                    "-c",
                    "fast",
                ]
            ),
            timeout=3600,
        )
        assert res.returncode == 0, res.stderr
        r["vs_pg_basebackup"] = {
            "pg_basebackup_seconds": round(t, 1),
            "pg_basebackup_bytes": du(dest),
            "opsd_seconds": round(median(via), 1),
            "opsd_repo_bytes": repo_bytes,
            "time_ratio": round(median(via) / t, 3),
            "size_ratio": round(repo_bytes / du(dest), 3),
        }
        shutil.rmtree(dest)

        target = target_time(sb)  # some WAL after the backup, then a target time
        label = info["label"]

        # 3. restore: bare vs opsd (files only, same target and set)
        bare, via = [], []
        port = free_port()
        for i in range(args.rounds):
            d = fresh(sb.root / f"bare-{i}")
            t, res = pgbr(
                sb,
                f"--pg1-path={d}",
                f"--set={label}",
                "--type=time",
                f"--target={target}",
                "--target-action=promote",
                "--archive-mode=off",
                "restore",
            )
            assert res.returncode == 0, res.stderr
            bare.append(t)
            d2 = sb.root / f"opsd-{i}"
            t, res = opsd(
                sb, "restore", "--to-time", target, "--target-dir", str(d2), "--port", str(port), "--set", label
            )
            assert res.returncode == 0, res.stderr
            via.append(t)
            print(f"  restore bare {bare[-1]:.1f}s, opsd {via[-1]:.1f}s", flush=True)
        t_plan, res = opsd(
            sb,
            "restore",
            "--to-time",
            target,
            "--target-dir",
            str(sb.root / "plan-only"),
            "--port",
            str(port),
            "--set",
            label,
            "--dry-run",
        )
        assert res.returncode == 0, res.stderr
        r["restore"] = {
            "opsd_plan_only_seconds": round(t_plan, 2),
            "bare_seconds": bare,
            "opsd_seconds": via,
            "ratio": round(median(via) / median(bare), 3),
            "target": 1.05,
        }

        # 4. drill vs bare restore + recovery (the last bare restore, started and promoted)
        recovery = bare_recover(sb, sb.root / f"bare-{args.rounds - 1}", free_port())
        bare_total = median(bare) + recovery
        t, res = opsd(sb, "drill", "run", "--target", target, "--json")
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        d = json.loads(res.stdout)
        ph = d["phases"]
        r["drill"] = {
            "bare_restore_plus_recovery_seconds": round(bare_total, 2),
            "drill_wall_seconds": round(t, 2),
            "drill_phases": ph,
            "drill_rto_seconds": d["rto_seconds"],
            "rto_ratio": round(d["rto_seconds"] / bare_total, 3),
            "total_ratio": round(t / bare_total, 3),
            "target": 1.15,
            "checks": {c["name"]: c["status"] for c in d["checks"]},
        }
        print(f"  drill rto {d['rto_seconds']:.1f}s, wall {t:.1f}s vs bare {bare_total:.1f}s", flush=True)

        # 5. the idle daemon
        r["idle_daemon"] = idle_daemon(sb, args.idle)
    finally:
        sb.down(remove=True)
    save("backup_restore", r, markdown)


def save(kind: str, r: dict[str, Any], render: Any) -> None:
    """results/<kind>-<date>.{json,md}, and the Markdown on stdout."""
    r["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{kind}-{r['started'][:10]}"
    stem.with_suffix(".json").write_text(json.dumps(r, indent=2) + "\n")
    stem.with_suffix(".md").write_text(render(r))
    print(render(r))


def markdown(r: dict[str, Any]) -> str:
    m, fb, bb, rs, dr, idle = (
        r["machine"],
        r["full_backup"],
        r["vs_pg_basebackup"],
        r["restore"],
        r["drill"],
        r["idle_daemon"],
    )
    gib = 2**30
    rows = [
        (
            "full backup: opsd vs bare pgbackrest",
            f"{median(fb['opsd_seconds']):.1f}s vs {median(fb['bare_seconds']):.1f}s",
            f"{fb['ratio']:.3f}x",
            "<= 1.02x",
        ),
        (
            "backup: opsd (zst) vs pg_basebackup -Ft -z, time",
            f"{bb['opsd_seconds']:.1f}s vs {bb['pg_basebackup_seconds']:.1f}s",
            f"{bb['time_ratio']:.3f}x",
            "-",
        ),
        (
            "backup: opsd (zst) vs pg_basebackup -Ft -z, size",
            f"{bb['opsd_repo_bytes'] / gib:.2f} GiB vs {bb['pg_basebackup_bytes'] / gib:.2f} GiB",
            f"{bb['size_ratio']:.3f}x",
            "-",
        ),
        (
            "restore --to-time: opsd vs bare pgbackrest",
            f"{median(rs['opsd_seconds']):.1f}s vs {median(rs['bare_seconds']):.1f}s",
            f"{rs['ratio']:.3f}x",
            "<= 1.05x",
        ),
        (
            "restore plan alone (--dry-run: startup, info, WAL listing, last commit)",
            f"{rs['opsd_plan_only_seconds']:.1f}s" if "opsd_plan_only_seconds" in rs else "not measured in this run",
            "-",
            "-",
        ),
        (
            "drill RTO (plan+restore+recovery) vs bare restore+recovery",
            f"{dr['drill_rto_seconds']:.1f}s vs {dr['bare_restore_plus_recovery_seconds']:.1f}s",
            f"{dr['rto_ratio']:.3f}x",
            "<= 1.15x",
        ),
        (
            "drill total (with verification) vs bare restore+recovery",
            f"{dr['drill_wall_seconds']:.1f}s vs {dr['bare_restore_plus_recovery_seconds']:.1f}s",
            f"{dr['total_ratio']:.3f}x",
            "<= 1.15x",
        ),
        (
            f"idle daemon over {idle['seconds']:.0f}s",
            f"CPU {idle['cpu_percent']:.2f}%, RSS {idle['rss_mib_peak']:.0f} MiB peak",
            "-",
            "-",
        ),
    ]
    ph = dr["drill_phases"]
    lines = [
        f"# Backup and restore overhead ({r['started']})",
        "",
        f"Machine: {m['cores']} cores, {m['memory_gib']} GiB, /tmp {m['disk_tmp_total_gib']} GiB; {m['postgres']}; "
        f"{m['pgbackrest']}; {m['opsd']}; Python {m['python']}.",
        f"Data: pgbench scale {r['settings']['pgbench_scale']} ({r['database']['bytes'] / gib:.2f} GiB); "
        f"{r['settings']['repo']}; compress-type zst, process-max 2; {r['settings']['rounds']} alternated rounds, "
        "medians compared.",
        "",
        "| measure | values | ratio | target |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
        "",
        "Drill phases (s): "
        + ", ".join(f"{k.removesuffix('_seconds')} {v}" for k, v in ph.items() if k.endswith("_seconds")),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--markdown":  # re-render a results file
        print(markdown(json.loads(Path(sys.argv[2]).read_text())), end="")
    else:
        main()
