"""The measurements of bench/scale.py that need more than a command line: the verification both ways on one
running copy, the WAL-heavy replay with and without prefetch, the probe at 1000 connections, start-up times."""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from backup_restore import PG_BIN, fresh, opsd, timed
from health_probe import idle_connections, probe_latency

from opsd import settings as settings_mod
from opsd.actions.drill.verify import Verification
from opsd.context import build
from opsd.db.connection import per_database
from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, free_port, run

TABLES = ("select oid::regclass::text from pg_class where relkind in ('r', 'm') and relpersistence <> 't' "
          "order by relpages desc")


def settle() -> None:
    """Before each timed run: the previous run's dirty pages written out and the page cache dropped, so neither
    side pays for the other's writeback or gains from its reads."""
    subprocess.run(["sync"], check=True)
    with contextlib.suppress(OSError):  # not root: sync alone
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def _psql(sb: Sandbox, port: int, db: str, sql: str) -> str:
    return run(as_pg([str(PG_BIN / "psql"), "-h", str(sb.socket_dir), "-p", str(port), "-d", db, "-XAtqc", sql]),
               timeout=3600).stdout


@contextmanager
def running(sb: Sandbox, copy: Path, port: int) -> Iterator[None]:
    """The restored copy started, recovered and promoted; stopped afterwards."""
    opts = f"-c port={port} -c unix_socket_directories={sb.socket_dir} -c listen_addresses='' -c archive_mode=off"
    run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(copy), "-l", str(sb.root / "pglog" / f"{copy.name}-v.log"), "-w",
               "-o", opts, "start"]), timeout=3600)
    try:
        while _psql(sb, port, "postgres", "select pg_is_in_recovery()").strip() != "f":
            time.sleep(0.2)
        yield
    finally:
        run(as_pg([str(PG_BIN / "pg_ctl"), "-D", str(copy), "-m", "fast", "-w", "stop"]), check=False)


def amcheck_and_reads(sb: Sandbox, port: int, jobs: int) -> dict[str, float]:
    """The bare equivalent: pg_amcheck on ``jobs`` connections (heap + B-tree with heapallindexed, every
    database), then every table copied to nowhere by ``jobs`` psql processes, largest first."""
    t0 = time.perf_counter()
    res = run(as_pg([str(PG_BIN / "pg_amcheck"), "-h", str(sb.socket_dir), "-p", str(port), "--all",
                     "--install-missing", f"--jobs={jobs}", "--heapallindexed"]), timeout=7200, check=False)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    t1 = time.perf_counter()
    dbs = [d for d in _psql(sb, port, "postgres", "select datname from pg_database where datallowconn").split()]
    work = [(db, t) for db in dbs for t in _psql(sb, port, db, TABLES).splitlines()]
    groups: list[list[tuple[str, str]]] = [[] for _ in range(jobs)]
    for i, item in enumerate(work):  # largest first, dealt round-robin
        groups[i % jobs].append(item)

    def read(group: list[tuple[str, str]]) -> None:
        for db in sorted({d for d, _ in group}):
            script = "".join(f"\\copy (select * from {t}) to '/dev/null'\n" for d, t in group if d == db)
            p = subprocess.run(as_pg([str(PG_BIN / "psql"), "-h", str(sb.socket_dir), "-p", str(port), "-d", db,
                                      "-Xq", "-v", "ON_ERROR_STOP=1"]), input=script, text=True,
                               capture_output=True, timeout=7200, check=False)
            assert p.returncode == 0, p.stderr[-2000:]

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(read, groups))
    t2 = time.perf_counter()
    return {"seconds": round(t2 - t0, 2), "amcheck_seconds": round(t1 - t0, 2), "reads_seconds": round(t2 - t1, 2),
            "tables": len(work)}


def opsd_verify(sb: Sandbox, port: int, jobs: int) -> dict[str, float]:
    """opsd's own drill verification (amcheck, then full reads) on the same copy, ``jobs`` connections."""
    s = settings_mod.load(str(sb.opsd_conf))
    connect = per_database(s.postgres.model_copy(update={  # as the drill connects to its copy
        "host": str(sb.socket_dir), "port": port, "statement_timeout": s.drill.verify_statement_timeout}),
        s.opsd.run_as)
    t0 = time.perf_counter()
    v = Verification(connect, jobs)
    v.databases()
    a = v.amcheck()
    t1 = time.perf_counter()
    rd = v.readable()
    t2 = time.perf_counter()
    assert a.status == "ok" and rd.status == "ok", (a.message, rd.message)
    return {"seconds": round(t2 - t0, 2), "amcheck_seconds": round(t1 - t0, 2), "reads_seconds": round(t2 - t1, 2),
            "relations": float(a.details["relations"]), "bytes_read": float(rd.details["bytes"])}  # type: ignore[arg-type]


def _conf(sb: Sandbox, path: Path, prefetch: bool) -> Path:
    text = sb.opsd_toml(drill={"process_max": 2}).replace(
        'probe_io_timeout = "2s"', f'probe_io_timeout = "2s"\nwal_prefetch = {"true" if prefetch else "false"}')
    path.write_text(text)
    path.chmod(0o644)
    return path


def _archived_up_to_now(sb: Sandbox) -> None:
    seg = sb.psql("select pg_walfile_name(pg_current_wal_lsn())")
    sb.psql("select pg_switch_wal()")
    deadline = time.monotonic() + 1800
    while (sb.psql("select coalesce(last_archived_wal, '') from pg_stat_archiver") or "") < seg:
        assert time.monotonic() < deadline, "archiving did not catch up"
        time.sleep(1)


def wal_heavy(sb: Sandbox, rounds: int, wal_gib: float) -> dict[str, Any]:
    """A fresh full backup, then at least ``wal_gib`` GiB of pgbench WAL; the same restore --start to the end of
    it, with and without prefetch, alternated: recovery seconds and replay rate from opsd's own result."""
    assert opsd(sb, "backup", "--type", "full")[1].returncode == 0
    start = int(sb.psql("select pg_current_wal_lsn() - '0/0'::pg_lsn"))
    t0 = time.perf_counter()
    while int(sb.psql("select pg_current_wal_lsn() - '0/0'::pg_lsn")) - start < wal_gib * 2**30:
        run(as_pg([str(PG_BIN / "pgbench"), "-h", str(sb.socket_dir), "-p", str(sb.pg_port), "-n", "-c", "4", "-j",
                   "2", "-T", "30", "postgres"]), timeout=600)
    generated = int(sb.psql("select pg_current_wal_lsn() - '0/0'::pg_lsn")) - start
    target = sb.psql("select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
    sb.psql("insert into pgbench_history(tid, bid, aid, delta, mtime) values (1, 1, 1, 1, now())")  # a commit past it
    _archived_up_to_now(sb)
    print(f"  {generated / 2**30:.2f} GiB of WAL in {time.perf_counter() - t0:.0f}s, archived", flush=True)
    confs = {False: _conf(sb, sb.root / "sync.toml", False), True: _conf(sb, sb.root / "prefetch.toml", True)}
    out: dict[str, list[dict[str, float]]] = {"sync": [], "prefetch": []}
    for _ in range(rounds):
        for prefetch in (False, True):
            dest = sb.root / "replay"
            fresh(dest)
            dest.rmdir()
            settle()
            t, res = timed([sys.executable, "-m", "opsd", "--config", str(confs[prefetch]), "restore", "--to-time",
                            target, "--target-dir", str(dest), "--port", str(free_port()), "--start", "--yes",
                            "--json"], timeout=7200)
            assert res.returncode == 0, res.stderr[-3000:]
            got = json.loads(res.stdout)["result"]
            out["prefetch" if prefetch else "sync"].append({
                "wall_seconds": round(t, 1), "recovery_seconds": round(got["recovery_seconds"], 1),
                "replay_rate": round(got["replay_rate"] or 0)})
            fresh(dest)
            print(f"  replay {'prefetch' if prefetch else 'sync'}: recovery {got['recovery_seconds']:.1f}s",
                  flush=True)
    sync = statistics.median(x["recovery_seconds"] for x in out["sync"])
    pre = statistics.median(x["recovery_seconds"] for x in out["prefetch"])
    return {"wal_bytes": generated, **out, "speedup": round(sync / pre, 3), "target": 1.5}


def probe_p95(sb: Sandbox) -> dict[str, float]:
    sb.psql("alter system set max_connections = 1100")
    sb.pg_ctl("restart")
    ctx = build(settings_mod.load(str(sb.opsd_conf)))
    conns = idle_connections(sb, 10)
    try:
        p50_10, p95_10 = probe_latency(ctx, 300)
        conns += idle_connections(sb, 990)
        p50_1k, p95_1k = probe_latency(ctx, 300)
    finally:
        for c in conns:
            c.close()
    return {"p50_ms_10": round(p50_10, 2), "p95_ms_10": round(p95_10, 2), "p50_ms_1000": round(p50_1k, 2),
            "p95_ms_1000": round(p95_1k, 2), "target_p95_ms_1000": 5.0}


def startup(sb: Sandbox, n: int = 7) -> dict[str, float]:
    def med(*args: str) -> float:
        return round(statistics.median(timed([sys.executable, "-m", "opsd", "--config", str(sb.opsd_conf), *args],
                                             check=False)[0] for _ in range(n)), 3)

    return {"version_seconds": med("--version"), "status_seconds": med("status"), "target": 0.25}
