"""bench/scale.py's results as Markdown (also: python bench/scale.py --markdown results/scale-<date>.json)."""

from __future__ import annotations

import statistics
from typing import Any

GIB = 2**30


def _m(xs: list[float]) -> float:
    return statistics.median(xs)


def _rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    fb, rs, v, dr, w, p, st = (r["full_backup"], r["restore"], r["verification"], r["drill"], r["wal_replay"],
                               r["probe"], r.get("startup_after") or r["startup"])
    vb, vo = _m([x["seconds"] for x in v["bare"]]), _m([x["seconds"] for x in v["opsd"]])
    sync = _m([x["recovery_seconds"] for x in w["sync"]])
    pre = _m([x["recovery_seconds"] for x in w["prefetch"]])
    rate_s = _m([x["replay_rate"] for x in w["sync"]]) / 2**20
    rate_p = _m([x["replay_rate"] for x in w["prefetch"]]) / 2**20
    one = v.get("opsd_one_connection")
    return [
        ("full backup: opsd vs bare pgbackrest", f"{_m(fb['opsd_seconds']):.1f}s vs {_m(fb['bare_seconds']):.1f}s",
         f"{fb['ratio']:.3f}x", "<= 1.03x"),
        ("restore --to-time: opsd vs bare pgbackrest", f"{_m(rs['opsd_seconds']):.1f}s vs "
         f"{_m(rs['bare_seconds']):.1f}s", f"{rs['ratio']:.3f}x", "<= 1.03x"),
        ("restore plan alone (--dry-run)", f"{rs['opsd_plan_only_seconds']:.2f}s", "-", "-"),
        (f"drill verification ({v['jobs']} connections) vs pg_amcheck --jobs={v['jobs']} --heapallindexed + "
         "parallel COPY", f"{vo:.1f}s vs {vb:.1f}s", f"{v['ratio']:.3f}x", "<= 1.2x"),
        ("drill verification on one connection (before verify_jobs)",
         f"{one['seconds']:.1f}s" if one else "-", f"{one['seconds'] / vo:.2f}x slower" if one else "-", "-"),
        ("drill RTO (plan+restore+recovery) vs bare restore+recovery",
         f"{dr['drill_rto_seconds']:.1f}s vs {dr['bare_restore_plus_recovery_seconds']:.1f}s",
         f"{dr['rto_ratio']:.3f}x", "-"),
        ("drill total (with verification) vs bare restore+recovery",
         f"{dr['drill_wall_seconds']:.1f}s vs {dr['bare_restore_plus_recovery_seconds']:.1f}s",
         f"{dr['total_ratio']:.3f}x", "-"),
        (f"WAL replay of {w['wal_bytes'] / GIB:.2f} GiB: recovery with prefetch vs synchronous archive-get",
         f"{pre:.1f}s ({rate_p:.0f} MiB/s) vs {sync:.1f}s ({rate_s:.0f} MiB/s)", f"{w['speedup']:.2f}x faster",
         ">= 1.5x"),
        ("health probe p95 with 1000 idle connections (p50)", f"{p['p95_ms_1000']:.2f} ms ({p['p50_ms_1000']:.2f} ms)",
         f"{p['p95_ms_1000'] / p['p95_ms_10']:.2f}x of 10 connections", "<= 5 ms"),
        ("opsd --version / opsd status start-up", f"{st['version_seconds']:.3f}s / {st['status_seconds']:.3f}s", "-",
         "<= 0.25s"),
        (f"idle daemon over {r['idle_daemon']['seconds']:.0f}s", f"CPU {r['idle_daemon']['cpu_percent']:.2f}%, RSS "
         f"{r['idle_daemon']['rss_mib_peak']:.0f} MiB peak", "-", "-"),
    ]


def markdown(r: dict[str, Any]) -> str:
    m, s = r["machine"], r["settings"]
    v = r["verification"]
    lines = [
        f"# opsd at scale ({r['started']})",
        "",
        f"Machine: {m['cores']} cores, {m['memory_gib']} GiB, /tmp {m['disk_tmp_total_gib']} GiB; {m['postgres']}; "
        f"{m['pgbackrest']}; {m['opsd']}; Python {m['python']}.",
        f"Data: pgbench scale {s['pgbench_scale']} ({r['database']['bytes'] / GIB:.2f} GiB); {s['repo']}; "
        f"compress-type {s['compress_type']}, process-max {s['process_max']}, verify_jobs {s['verify_jobs']}; "
        f"{s['rounds']} alternated rounds, medians compared.",
        "",
        "| measure | values | ratio | target |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in _rows(r)),
        "",
        "Verification, seconds (amcheck + reads): bare "
        + ", ".join(f"{x['amcheck_seconds']} + {x['reads_seconds']}" for x in v["bare"])
        + "; opsd " + ", ".join(f"{x['amcheck_seconds']} + {x['reads_seconds']}" for x in v["opsd"]) + ".",
        "Drill phases (s): " + ", ".join(f"{k.removesuffix('_seconds')} {val}" for k, val in
                                         r["drill"]["drill_phases"].items() if k.endswith("_seconds")),
        "",
    ]
    return "\n".join(lines)
