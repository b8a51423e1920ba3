"""Console writers for drills and verify: one drill in full, a list of drills, a verify result."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from opsd.core.records.drill import DrillResult
from opsd.core.records.jobs import VerifyResult
from opsd.core.records.runs import Run
from opsd.core.units import format_duration, human_bytes
from opsd.report.console import MARK, table, when


def _secs(v: float | None) -> str:
    return format_duration(v) if v is not None else "-"


def drill(d: DrillResult, outcome: str, run_id: int | None = None, error: str | None = None) -> str:
    """One drill: verdict, target, timings, then every check."""
    verdict = "PASSED" if d.passed and d.checks else "FAILED"  # a drill that ran has checks
    head = f"drill #{run_id} " if run_id is not None else "drill "
    lines = [f"{head}of stanza {d.stanza or '-'}: {verdict} ({outcome})"]
    if error and verdict == "FAILED":
        lines.append(f"  {error}")
    lines += _timings(d)
    if d.cleaned:
        lines.append(f"  cleaned     {', '.join(d.cleaned)} (left by an earlier run)")
    if d.log_file:
        lines.append(f"  server log  {d.log_file}")
    lines += ["", table(["check", "status", "detail"],
                        [(c.name, MARK.get(c.status, c.status), c.message) for c in d.checks])]
    if d.databases:
        lines += ["", relations(d)]
    return "\n".join(lines)


def _timings(d: DrillResult) -> list[str]:
    p = d.phases
    return [
        f"  target      {d.target or '-'} ({d.target_mode or '-'}: {d.target_why})",
        f"  backup      {d.backup or '-'} ({d.backup_type or '-'})",
        f"  scratch     {d.scratch or '-'} port {d.port}" + ("  (kept running)" if d.kept else "  (removed)"),
        f"  RTO         {_secs(d.rto_seconds)} = plan {_secs(p.plan_seconds)} + restore "
        f"{_secs(p.restore_seconds)} + recovery {_secs(p.recovery_seconds)}",
        f"  restore     {human_bytes(p.restore_bytes or 0)} at {human_bytes(p.restore_rate or 0)}/s; "
        f"WAL replay {human_bytes(p.wal_bytes or 0)} at {human_bytes(p.replay_rate or 0)}/s",
        f"  verify      {_secs(p.verify_seconds)}; total {_secs(p.total_seconds)}",
        f"  RPO         {_secs(d.rpo_seconds)} (newest archived commit vs now)",
    ]


def relations(d: DrillResult) -> str:
    """Per database: relations checked, skipped by reason, not checked (a gap), corrupt."""
    rows = []
    for c in d.databases:
        skipped = ", ".join(f"{r} {n}" for r, n in sorted(c.skipped.items())) or "-"
        if c.refused:
            skipped = f"whole database: {c.refused}"
        rows.append((c.database, c.checked, skipped, c.not_checked if not c.error else f"? ({c.error[:60]})",
                     c.corrupt))
    return table(["database", "checked", "skipped (reason count)", "not checked", "corrupt"], rows)


def drills(runs: Sequence[Run], tz: ZoneInfo) -> str:
    if not runs:
        return "no drills yet (run 'opsd drill run')"
    rows = []
    for r in runs:
        d = r.details_as(DrillResult) or DrillResult(stanza="-", target_mode="")
        failed = ", ".join(d.failed_checks) or ("" if r.outcome == "ok" else (r.error or "")[:60])
        rows.append((r.id, when(r.started_at, tz), r.host, d.stanza, r.outcome, d.target or "-", d.backup or "-",
                     _secs(d.rto_seconds), _secs(d.rpo_seconds), failed))
    return table(["id", "started", "host", "stanza", "outcome", "target", "backup", "RTO", "RPO", "failed checks"],
                 rows)


def verify(result: VerifyResult) -> str:
    rows = [(i.kind, i.name, i.status, i.checked, i.valid,
             ", ".join(f"{k} {v}" for k, v in i.problems.items() if v) or "-") for i in result.items]
    lines = [f"stanza {result.stanza}: {result.status.upper()}",
             table(["kind", "name", "status", "checked", "valid", "problems"], rows)]
    if result.damaged:
        lines += ["", "damaged files:", *(f"  {d}" for d in result.damaged)]
    return "\n".join(lines)
