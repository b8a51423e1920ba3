"""Client load for fault tests and benchmarks: pgbench through PgBouncer with many client connections at a
fixed rate, and a health sampler thread that times opsd's own probe while the load runs.

The same pieces serve ``tests/faults/test_load.py`` (does everything still work under load?) and
``bench/load.py`` (how much does the load cost, against an unloaded baseline of the same run?).
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsd_sandbox.procs import as_pg, as_pg_with_files, run

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")


def pgbench_init(socket_dir: Path, port: int, scale: int) -> None:
    run(as_pg([str(PG_BIN / "pgbench"), "-h", str(socket_dir), "-p", str(port), "-i", "-s", str(scale),
               "-q", "postgres"]), timeout=900)


@dataclass
class PgbenchResult:
    clients: int
    seconds: float  # of progress reported
    transactions: int  # from the progress lines (pgbench is stopped, not timed: it prints no summary then)
    failed: int  # transactions that failed (pgbench 15 counts serialization and deadlock errors)
    errors: list[str]  # every other error: a client aborted, a dropped connection, a refused login...
    tps: list[float]  # per progress interval

    @property
    def clean(self) -> bool:
        return self.failed == 0 and not self.errors and self.transactions > 0

    def as_json(self) -> dict[str, Any]:
        return {"clients": self.clients, "seconds": self.seconds, "transactions": self.transactions,
                "failed": self.failed, "errors": self.errors[:5], "tps_median": statistics.median(self.tps or [0])}


PROGRESS = re.compile(r"^progress: ([\d.]+) s, ([\d.]+) tps\b")
FAILED = re.compile(r", (\d+) failed\b")


class Pgbench:
    """``clients`` connections through PgBouncer on 127.0.0.1:``port`` (opened once, not per transaction), TPC-B
    like transactions at ``rate`` per second in total, until :meth:`finish`."""

    def __init__(self, port: int, *, clients: int, rate: int, log: Path, interval: int = 5) -> None:
        self.clients, self.interval = clients, interval
        self._log = log
        argv = [str(PG_BIN / "pgbench"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-n",
                "-c", str(clients), "-j", "2", "-R", str(rate), "-T", "86400", "-P", str(interval), "postgres"]
        with log.open("w") as out:  # progress and errors, readable while it runs
            self._proc = subprocess.Popen(as_pg_with_files(argv, clients), stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)

    def running(self) -> bool:
        """Every client connected and transactions flowing: pgbench printed its first progress line."""
        return "progress:" in self._log.read_text() or self._proc.poll() is not None

    def finish(self) -> PgbenchResult:
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
        self._proc.wait(timeout=60)
        return parse_log(self._log.read_text(), self.clients, self.interval)


def parse_log(text: str, clients: int, interval: int) -> PgbenchResult:
    tps, failed, seconds = [], 0, 0.0
    errors = []
    for line in text.splitlines():
        m = PROGRESS.match(line)
        if m:
            seconds = float(m.group(1))
            tps.append(float(m.group(2)))
            f = FAILED.search(line)
            failed += int(f.group(1)) if f else 0
        elif "error" in line.lower() or "aborted" in line.lower() or "fatal" in line.lower():
            errors.append(line.strip())
    return PgbenchResult(clients=clients, seconds=seconds, transactions=round(sum(tps) * interval), failed=failed,
                         errors=errors, tps=tps)


@dataclass
class Samples:
    durations_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    pool_clients: list[int] = field(default_factory=list)  # PgBouncer clients (active + waiting) per sample

    def summary(self) -> dict[str, float]:
        d = self.durations_ms
        return {"samples": len(d), "p50_ms": percentile(d, 50), "p95_ms": percentile(d, 95),
                "max_ms": max(d, default=float("nan")), "mean_ms": statistics.fmean(d) if d else float("nan")}


class Sampler:
    """opsd's health sample (lock trees, long sessions, connections, PgBouncer pools) every ``interval`` seconds
    through one probe connection, as the daemon takes it; each sample's duration and problems kept."""

    def __init__(self, ctx: Any, interval: float) -> None:
        self.ctx, self.interval, self.samples = ctx, interval, Samples()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Samples:
        self._thread.start()
        return self.samples

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _loop(self) -> None:
        from opsd.actions.health.sample import take_sample
        from opsd.db.probe import probe_for

        probe = probe_for(self.ctx.settings)
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                s = take_sample(self.ctx, probe)
                self.samples.durations_ms.append((time.perf_counter() - t0) * 1000)
                self.samples.problems += [str(p) for p in s.problems]
                if s.pool is not None:
                    self.samples.pool_clients.append(sum(p.cl_active + p.cl_waiting for p in s.pool.pools))
                self._stop.wait(self.interval)
        finally:
            probe.close()
