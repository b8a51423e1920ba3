"""Where opsd's time over bare pgBackRest goes, measured in one run on a throwaway sandbox (pgbench --scale):

1. full backup: bare `pgbackrest backup` vs `opsd backup`                                   (target <= 1.05x)
2. restore to a time: bare `pgbackrest restore` vs opsd's own restore argv run by hand (the exact argv opsd
   logged, same user, no opsd) vs `opsd restore --to-time`                                  (target <= 1.05x)
3. the parts of opsd's restore: the plan alone (`--dry-run`), Python start-up with the restore command imported
   (warm and after the page cache was dropped), the pgBackRest restore inside opsd (from its own log)
4. the drill's RTO (plan + restore + recovery) vs bare restore + recovery, with `[drill] priority` normal and
   low (nice 10, ionice idle: what a copy beside production runs under)                     (target <= 1.10x)

Before every timed run the previous run's dirty pages are written out and the page cache is dropped (settle), so
neither side pays for the other's writeback. Rounds alternate and the order inside a round turns (bare first,
then opsd first), best and median kept. Results go to bench/results/overhead-<date>.{json,md}.
    .venv/bin/python bench/overhead.py [--scale 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backup_restore import PG_BIN, bare_recover, fresh, machine, opsd, pgbr, save, target_time, timed

from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, free_port, run


def settle() -> None:
    """Before each timed run: the previous run's dirty pages written out and the page cache dropped."""
    subprocess.run(["sync"], check=True)
    with contextlib.suppress(OSError):  # not root: sync alone
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def logged_argv(stderr: str, last: str) -> list[str]:
    """The argv opsd logged for its command ending in ``last`` (JSON log lines)."""
    for line in stderr.splitlines():
        if line.startswith("{") and '"command.started"' in line:
            argv = json.loads(line).get("argv") or []
            if argv and argv[-1] == last:
                return list(argv)
    raise SystemExit(f"opsd logged no {last} command")


def pgbr_seconds(stderr: str, last: str) -> float:
    for line in stderr.splitlines():
        if line.startswith("{") and '"command.finished"' in line:
            d = json.loads(line)
            if (d.get("argv") or [""])[-1] == last:
                return float(d["duration"])
    return float("nan")


def ordered(i: int, pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return pairs if i % 2 == 0 else list(reversed(pairs))


def backups(sb: Sandbox, rounds: int) -> dict[str, Any]:
    got: dict[str, list[float]] = {"bare": [], "opsd": [], "opsd_pgbackrest": []}
    for i in range(rounds):
        for name, fn in ordered(i, [("bare", lambda: pgbr(sb, "--type=full", "--start-fast", "backup")),
                                    ("opsd", lambda: opsd(sb, "--log-level", "info", "--log-format", "json",
                                                          "backup", "--type", "full"))]):
            settle()
            t, res = fn()
            assert res.returncode == 0, res.stderr[-2000:]
            got[name].append(t)
            if name == "opsd":
                got["opsd_pgbackrest"].append(pgbr_seconds(res.stderr, "backup"))
        print(f"  backup bare {got['bare'][-1]:.2f}s, opsd {got['opsd'][-1]:.2f}s", flush=True)
    return got


def restores(sb: Sandbox, rounds: int, target: str, label: str) -> dict[str, Any]:
    port = free_port()
    got: dict[str, list[float]] = {"bare": [], "by_hand": [], "by_hand_warn": [], "opsd": [], "opsd_pgbackrest": []}
    argv: list[str] = []
    for i in range(rounds):
        def bare() -> tuple[float, Any]:
            d = fresh(sb.root / "bare")
            return pgbr(sb, f"--pg1-path={d}", f"--set={label}", "--type=time", f"--target={target}",
                        "--target-action=promote", "--archive-mode=off", "restore")

        def via() -> tuple[float, Any]:
            fresh(sb.root / "opsd").rmdir()
            t, res = opsd(sb, "--log-level", "debug", "--log-format", "json", "restore", "--to-time", target,
                          "--target-dir", str(sb.root / "opsd"), "--port", str(port), "--set", label)
            argv[:] = [a.replace(str(sb.root / "opsd"), str(sb.root / "hand")) for a in logged_argv(res.stderr,
                                                                                                   "restore")]
            got["opsd_pgbackrest"].append(pgbr_seconds(res.stderr, "restore"))
            return t, res

        def by_hand() -> tuple[float, Any]:
            fresh(sb.root / "hand")
            return timed(as_pg(argv), timeout=3600)

        def by_hand_warn() -> tuple[float, Any]:  # without the per-file lines opsd reads for its progress
            fresh(sb.root / "hand")
            return timed(as_pg([a.replace("--log-level-console=detail", "--log-level-console=warn") for a in argv]),
                         timeout=3600)

        hand = [("by_hand", by_hand), ("by_hand_warn", by_hand_warn)]
        for name, fn in [*ordered(i, [("bare", bare), ("opsd", via)]), *ordered(i, hand)]:
            settle()
            t, res = fn()
            assert res.returncode == 0, res.stderr[-2000:]
            got[name].append(t)
        print(f"  restore bare {got['bare'][-1]:.2f}s, opsd's argv by hand {got['by_hand'][-1]:.2f}s, "
              f"opsd {got['opsd'][-1]:.2f}s", flush=True)
    for d in ("bare", "opsd", "hand"):
        fresh(sb.root / d)
    return {**got, "opsd_argv": argv}


def parts(sb: Sandbox, rounds: int, target: str, label: str) -> dict[str, list[float]]:
    """The plan alone and Python's start-up with the restore command imported, warm and cold."""
    port = free_port()
    got: dict[str, list[float]] = {"plan": [], "import_warm": [], "import_cold": [], "version": []}
    imp = [sys.executable, "-c", "import opsd.cli.restore_cmd"]
    for _ in range(rounds):
        settle()
        got["import_cold"].append(timed(imp)[0])
        got["import_warm"].append(timed(imp)[0])
        got["version"].append(timed([sys.executable, "-m", "opsd", "--version"])[0])
        t, res = opsd(sb, "restore", "--to-time", target, "--target-dir", str(sb.root / "plan-only"), "--port",
                      str(port), "--set", label, "--dry-run")
        assert res.returncode == 0, res.stderr[-2000:]
        got["plan"].append(t)
    return got


def drills(sb: Sandbox, rounds: int, target: str, label: str) -> dict[str, Any]:
    got: dict[str, Any] = {"bare_restore": [], "bare_recovery": [], "normal": [], "low": []}
    for i in range(rounds):
        settle()
        d = fresh(sb.root / "bare-drill")
        t, res = pgbr(sb, f"--pg1-path={d}", f"--set={label}", "--type=time", f"--target={target}",
                      "--target-action=promote", "--archive-mode=off", "restore")
        assert res.returncode == 0, res.stderr[-2000:]
        got["bare_restore"].append(t)
        got["bare_recovery"].append(bare_recover(sb, d, free_port()))
        fresh(d)
        for prio in ordered(i, [("normal", 0), ("low", 0)]):
            sb.write_opsd_conf(drill={"process_max": 2, "priority": prio[0]})
            settle()
            _, res = opsd(sb, "drill", "run", "--target", target, "--json")
            assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
            got[prio[0]].append(json.loads(res.stdout)["rto_seconds"])
        print(f"  drill rto normal {got['normal'][-1]:.2f}s, low {got['low'][-1]:.2f}s; bare "
              f"{got['bare_restore'][-1] + got['bare_recovery'][-1]:.2f}s", flush=True)
    sb.write_opsd_conf(drill={"process_max": 2})
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    # opsd's modules byte-compiled, as a pip install leaves them (PYTHONDONTWRITEBYTECODE would otherwise make every
    # opsd command compile them again)
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(Path(__file__).resolve().parents[1] /
                                                                          "opsd")], check=True, capture_output=True)
    sb = Sandbox.create(prefix="opsd-bench-ovh-", archiving=True)
    sb.up()
    r: dict[str, Any] = {"started": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
                         "settings": {"pgbench_scale": args.scale, "rounds": args.rounds, "compress_type": "zst",
                                      "process_max": 2, "repo": "S3 (moto behind nginx TLS, loopback)",
                                      "load_before": Path("/proc/loadavg").read_text().split()[:3]}}
    try:
        sb.write_opsd_conf(drill={"process_max": 2})
        assert opsd(sb, "setup")[1].returncode == 0
        t0 = time.perf_counter()
        run(as_pg([str(PG_BIN / "pgbench"), "-h", str(sb.socket_dir), "-p", str(sb.pg_port), "-i", "-q", "-s",
                   str(args.scale), "postgres"]), timeout=3600)
        print(f"pgbench -i -s {args.scale}: {time.perf_counter() - t0:.0f}s", flush=True)
        r["backup"] = backups(sb, args.rounds)
        label = json.loads(pgbr(sb, "--output=json", "info")[1].stdout)[0]["backup"][-1]["label"]
        target = target_time(sb)
        r["restore"] = restores(sb, args.rounds, target, label)
        r["parts"] = parts(sb, args.rounds, target, label)
        r["drill"] = drills(sb, args.rounds, target, label)
        r["settings"]["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
    finally:
        sb.down(remove=True)
    save("overhead", r, markdown)


def _row(name: str, opsd_s: list[float], bare_s: list[float], target: str) -> str:
    best, med = min(opsd_s) / min(bare_s), statistics.median(opsd_s) / statistics.median(bare_s)
    return (f"| {name} | {min(opsd_s):.2f}s vs {min(bare_s):.2f}s (medians {statistics.median(opsd_s):.2f} vs "
            f"{statistics.median(bare_s):.2f}) | {best:.3f}x best, {med:.3f}x median | {target} |")


def markdown(r: dict[str, Any]) -> str:
    m, b, rs, p, d = r["machine"], r["backup"], r["restore"], r["parts"], r["drill"]
    bare_rto = [x + y for x, y in zip(d["bare_restore"], d["bare_recovery"], strict=True)]
    med = statistics.median
    return "\n".join([
        f"# Where opsd's time over bare pgBackRest goes ({r['started']})", "",
        f"Machine: {m['cores']} cores, {m['memory_gib']} GiB; {m['postgres']}; {m['pgbackrest']}; {m['opsd']}; "
        f"Python {m['python']}. Load average before/after: {' '.join(r['settings']['load_before'])} / "
        f"{' '.join(r['settings']['load_after'])}.",
        f"Data: pgbench scale {r['settings']['pgbench_scale']}; {r['settings']['repo']}; zst, process-max 2; "
        f"{r['settings']['rounds']} rounds, order turned each round, page cache dropped before each timed run.", "",
        "| measure | opsd vs bare | ratio | target |", "|---|---|---|---|",
        _row("full backup", b["opsd"], b["bare"], "<= 1.05x"),
        _row("restore --to-time", rs["opsd"], rs["bare"], "<= 1.05x"),
        _row("opsd's restore argv, run by hand (no opsd)", rs["by_hand"], rs["bare"], "-"),
        _row("the same with --log-level-console=warn (no progress lines)", rs["by_hand_warn"], rs["bare"], "-"),
        _row("drill RTO, priority normal", d["normal"], bare_rto, "<= 1.10x"),
        _row("drill RTO, priority low (nice 10, ionice idle)", d["low"], bare_rto, "-"), "",
        "Parts (median s): "
        f"pgBackRest backup inside opsd {med(b['opsd_pgbackrest']):.2f}; "
        f"pgBackRest restore inside opsd {med(rs['opsd_pgbackrest']):.2f}; "
        f"restore plan alone (--dry-run, whole process) {med(p['plan']):.2f}; "
        f"Python + restore command imported {med(p['import_warm']):.2f} warm, {med(p['import_cold']):.2f} after the "
        f"page cache was dropped; `opsd --version` {med(p['version']):.2f}.", "",
    ])


if __name__ == "__main__":
    main()
