"""A year of history costs nothing (issue 27 §4), measured in one run.

Two state files are generated through opsd's own stores (History, HealthStore, AlertStore), as the daemon writes
them: one with a day of history, one with a year. Each holds a health sample every 30 s (about 80 client
sessions in a handful of groups, one standby, one slot), a lock incident about every two days (with its alert
fired, delivered and resolved), a nightly backup (full on Sunday, diff otherwise), an hourly check, a weekly
drill and verify, and a monthly report; ``[health] keep`` thins and prunes the samples as the daemon does
(here once a simulated hour). Then these commands run against each file, in alternated rounds:

    opsd status | opsd drill list | opsd health incidents --since 30d |
    opsd report --month <this month> --format json | opsd metrics

and the median of each is compared (year / day; target <= 1.5x). Also: the year file's size and rows, and
``opsd status`` / ``opsd --version`` wall times. Results: bench/results/history-DATE.json and .md.

    .venv/bin/python bench/history.py [--days 365] [--rounds 7] [--keep "all:14d, 15m:90d, 1h:400d"]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import pwd
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opsd.adapters.stores.alerts import AlertStore
from opsd.adapters.stores.health import HealthStore
from opsd.adapters.stores.runs import History
from opsd.core.records.checks import OK
from opsd.core.records.health import (
    ConnectionReport,
    HealthSample,
    LockReport,
    ReplicationReport,
    Slot,
    StandbyLag,
)
from opsd.core.thinning import DEFAULT_KEEP, Keep, parse_keep
from opsd_sandbox import records

STEP = timedelta(seconds=30)
OPSD = [sys.executable, "-m", "opsd"]


def owner() -> str:
    return "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


@functools.cache
def conns(i: int) -> ConnectionReport:
    by_state = {"idle": 60 + i % 7, "active": 5 + i % 3, "idle in transaction": i % 2}
    total = sum(by_state.values())
    return ConnectionReport(total=total, usable=97, max_connections=100, reserved=3, by_state=by_state,
                            by_database={"app": total - 4, "postgres": 4},
                            by_user={"app": total - 6, "opsd": 1, "postgres": 5},
                            by_application={"web": total - 10, "worker": 8, "opsd": 1, "psql": 1})


REPLICATION = ReplicationReport(
    role="primary",
    standbys=[StandbyLag(name="db2", client="10.0.0.2", state="streaming", sync_state="async", write_lag_bytes=0,
                         flush_lag_bytes=0, replay_lag_bytes=8192, write_lag=0.001, flush_lag=0.002,
                         replay_lag=0.004)],
    slots=[Slot(name="db2", kind="physical", active=True, retained_bytes=16 * 2**20, wal_status="reserved")])


def sample(at: datetime, i: int, lock: bool) -> HealthSample:
    trees = []
    if lock:
        moment = records.lock_moment(4000 + i % 100, waiters=3, longest_wait=40.0 + i % 20, user="wms",
                                     database="app", application="picker")
        assert moment.tree is not None
        trees = [moment.tree]
    return HealthSample(taken_at=at, locks=LockReport(trees, [], [], 12, 0), connections=conns(i),
                        replication=REPLICATION)


def runs_of_day(h: History, day: datetime) -> None:
    """The jobs of one day: backup at 01:00, checks every hour, drill (Sunday), verify (Wednesday), report (1st)."""
    full = day.weekday() == 6
    at = day + timedelta(hours=1)
    label = f"{at:%Y%m%d-%H%M%S}{'F' if full else 'D'}"
    h.record("backup-full" if full else "backup-diff", "schedule", at, at + timedelta(minutes=20 if full else 4),
             "ok", details=records.backup(50 * 2**30, 1200.0 if full else 240.0, label=label,
                                          type_="full" if full else "diff"))
    for hour in range(24):
        t = day + timedelta(hours=hour, minutes=5)
        h.record("check", "schedule", t, t + timedelta(seconds=2), "ok", details=records.archiver_check(20.0, 0))
    if full:
        t = day + timedelta(hours=3)
        h.record("drill", "schedule", t, t + timedelta(minutes=7), "ok", details=records.drill(
            "main", rto=400.0, rpo=40.0, restore_seconds=280.0, recovery_seconds=100.0, verify_seconds=9.0,
            target=f"{t:%Y-%m-%d} 01:00:00+00:00", backup_label=label, checks=[("plan", OK, ""), ("amcheck", OK, "")]))
    if day.weekday() == 2:
        t = day + timedelta(hours=4)
        h.record("verify", "schedule", t, t + timedelta(hours=1), "ok", details=records.verify_ok("main"))
    if day.day == 1:
        t = day + timedelta(hours=6)
        h.record("report", "schedule", t, t + timedelta(seconds=20), "ok")


def generate(state: Path, days: float, now: datetime, keep: str) -> dict[str, Any]:
    """Write ``days`` of history ending at ``now`` into ``state`` through opsd's stores."""
    import sqlite3

    h = History(state, owner())
    health, alerts = HealthStore(h.db), AlertStore(h.db)
    h.runs(limit=1)  # creates the file
    policy = parse_keep(keep)
    start = now - timedelta(days=days)
    t0 = time.monotonic()
    # a reader held open for the whole run, as the daemon's file always has: else each store call's close is
    # the file's last and checkpoints the WAL (a daemon writes a sample every 30 s, not thousands a second)
    keeper = sqlite3.connect(h.db.path)
    keeper.execute("SELECT 1 FROM runs LIMIT 1").fetchall()
    with h.db.held():  # one connection for every store call of the generator: a year in minutes
        n = _write(h, health, alerts, policy, start=start, now=now)
    keeper.close()
    return {"days": days, "samples_written": n, "seconds": round(time.monotonic() - t0, 1)}


def _write(h: History, health: HealthStore, alerts: AlertStore, policy: Keep, *, start: datetime,
           now: datetime) -> int:
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < now:
        if day + timedelta(days=1) > start:
            runs_of_day(h, day)
        day += timedelta(days=1)
    at, i, incident, key = start, 0, None, ""
    _sql(h, "BEGIN")
    while at < now:
        # every two days (on the clock: the day's file has the last one too), six minutes long
        lock = int(at.timestamp()) // 30 % 5760 in range(5000, 5012)
        s = sample(at, i % 42, lock)
        if lock and incident is None:
            tree = s.locks.trees[0] if s.locks else None
            assert tree is not None
            incident = health.open(f"lock:{tree.root.pid}", "lock", at, summary=tree.summary(),
                                   peak=tree.longest_wait, worst=records.lock_moment(
                                       tree.root.pid, waiters=3, longest_wait=tree.longest_wait, user="wms",
                                       database="app", application="picker"))
            key = f"health.lock:{tree.root.pid}"
            alerts.set_firing(key, "warning", tree.summary(), at, at)
            alerts.log_delivery(at, key, "firing", None)
        elif lock and incident is not None:
            health.seen(incident, at, None)
        elif incident is not None:
            health.close(incident, at)
            alerts.set_resolved(key, at)
            alerts.log_delivery(at, key, "resolved", None)
            incident = None
        health.add_sample(s)
        if i % 120 == 0:  # the daemon prunes after every sample; once a simulated hour is the same work
            _sql(h, "COMMIT")  # an hour of samples a transaction: the generator's speed, not the daemon's
            health.prune(policy, at, batches=8)
            _sql(h, "BEGIN")
        at += STEP
        i += 1
    _sql(h, "COMMIT")
    health.prune(policy, now, batches=100)
    return i


def _sql(h: History, statement: str) -> None:
    with h.db.connect() as c:  # the connection held for the generator
        c.execute(statement)


def file_facts(state: Path) -> dict[str, Any]:
    import sqlite3

    db = state / "history.sqlite3"
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("runs", "health_samples", "incidents", "alerts", "alert_deliveries")}
        steps = dict(c.execute("SELECT step, count(*) FROM health_samples GROUP BY step").fetchall())
        free = c.execute("PRAGMA freelist_count").fetchone()[0] * c.execute("PRAGMA page_size").fetchone()[0]
    return {"bytes": db.stat().st_size, "free_bytes": free, "rows": rows, "samples_by_step": steps}


def config(state: Path, path: Path) -> Path:
    path.write_text(f"""[opsd]
state_dir = "{state}"
run_as = "{owner()}"
timezone = "UTC"
[postgres]
host = "{path.parent / 'no-server'}"
""")
    return path


def timed(argv: list[str], conf: Path) -> float:
    env = {**os.environ, "OPSD_CONFIG": str(conf)}
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t0


def commands(now: datetime, out: Path) -> dict[str, list[str]]:
    return {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "status": [*OPSD, "status"],
        "drill list": [*OPSD, "drill", "list"],
        "health incidents --since 30d": [*OPSD, "health", "incidents", "--since", "30d"],
        "report (this month)": [*OPSD, "report", "--month", f"{now:%Y-%m}", "--format", "json", "--output",
                                str(out / "report.json")],
        "metrics": [*OPSD, "metrics"],
    }


def measure(confs: dict[str, Path], now: datetime, work: Path, rounds: int) -> dict[str, dict[str, float]]:
    cmds = commands(now, work)
    times: dict[str, dict[str, list[float]]] = {c: {k: [] for k in confs} for c in cmds}
    for r in range(rounds):
        for name, argv in cmds.items():
            order = list(confs) if r % 2 == 0 else list(reversed(confs))
            for k in order:
                times[name][k].append(timed(argv, confs[k]))
    return {name: {**{k: round(statistics.median(v), 3) for k, v in t.items()},
                   "ratio": round(statistics.median(t["year"]) / statistics.median(t["day"]), 2)}
            for name, t in times.items()}


def machine() -> dict[str, Any]:
    import sqlite3

    return {"host": platform.node(), "cpus": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                     check=False).stdout.strip()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=float, default=365)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--keep", default=DEFAULT_KEEP)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--work", type=Path, help="keep the generated files here; files already there are reused "
                                              "(their generation facts are read from DIR/generated.json)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="opsd-history-"))
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)  # noqa: S103 (opsd runs as run_as, it must reach the state dirs)
    facts = work / "generated.json"
    gen: dict[str, Any] = json.loads(facts.read_text()) if facts.exists() else {}
    now = datetime.fromisoformat(gen["now"]) if gen else datetime.now(UTC)
    gen["now"] = now.isoformat()
    confs = {}
    for name, days in (("day", 1.0), ("year", args.days)):
        state = work / name
        if name not in gen:
            gen[name] = generate(state, days, now, args.keep) | file_facts(state)
            facts.write_text(json.dumps(gen))
        confs[name] = config(state, work / f"{name}.toml")
        print(f"{name}: {json.dumps(gen[name])}", flush=True)
    results = measure(confs, now, work, args.rounds)
    version = [round(timed([*OPSD, "--version"], confs["year"]), 3) for _ in range(args.rounds)]
    data = {"bench": "history", "date": f"{now:%Y-%m-%d}", "machine": machine(), "keep": args.keep,
            "rounds": args.rounds, "generated": gen, "commands_median_seconds": results,
            "version_median_seconds": statistics.median(version), "targets": {
                "ratio_year_day": 1.5, "status_seconds": 0.25, "version_seconds": 0.2}}
    write(args.out, data)


def write(out: Path, data: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"history-{data['date']}"
    Path(f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")
    year = data["generated"]["year"]
    lines = [f"# A year of history, {data['date']}", "", f"Machine: {data['machine']}", "",
             f"`[health] keep = \"{data['keep']}\"`; year file: {year['bytes'] / 2**20:.1f} MiB "
             f"({year['free_bytes'] / 2**20:.1f} MiB free pages), rows {year['rows']}, samples by step "
             f"{year['samples_by_step']}", "",
             f"median of {data['rounds']} alternated rounds, seconds (target: year <= 1.5x day)", "",
             "| command | day | year | year/day |", "|---|---|---|---|"]
    lines += [f"| {n} | {r['day']:.3f} | {r['year']:.3f} | {r['ratio']:.2f}x |"
              for n, r in data["commands_median_seconds"].items()]
    lines += ["", f"`opsd --version`: {data['version_median_seconds']:.3f} s (target 0.2 s); "
                  f"`opsd status` with a year: {data['commands_median_seconds']['status']['year']:.3f} s "
                  "(target 0.25 s)"]
    Path(f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
