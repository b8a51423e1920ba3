"""Console writers for drills and verify: one drill in full, a list of drills, a verify result."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from opsd.adapters.pgbackrest_verify import VerifyResult
from opsd.core.records import Run
from opsd.core.units import format_duration, human_bytes
from opsd.report.console import MARK, table, when


def _secs(v: Any) -> str:
    return format_duration(float(v)) if isinstance(v, int | float) else "-"


def drill(details: dict[str, Any], outcome: str, run_id: int | None = None, error: str | None = None) -> str:
    """One drill: verdict, target, timings, then every check."""
    p = details.get("phases") or {}
    verdict = "PASSED" if details.get("passed") else "FAILED"
    head = f"drill #{run_id} " if run_id is not None else "drill "
    lines = [f"{head}of stanza {details.get('stanza')}: {verdict} ({outcome})"]
    if error and not details.get("passed"):
        lines.append(f"  {error}")
    lines += [
        f"  target      {details.get('target') or '-'} ({details.get('target_mode')}: {details.get('target_why')})",
        f"  backup      {details.get('backup') or '-'} ({details.get('backup_type') or '-'})",
        f"  scratch     {details.get('scratch') or '-'} port {details.get('port')}"
        + ("  (kept running)" if details.get("kept") else "  (removed)"),
        f"  RTO         {_secs(details.get('rto_seconds'))} = plan {_secs(p.get('plan_seconds'))} + restore "
        f"{_secs(p.get('restore_seconds'))} + recovery {_secs(p.get('recovery_seconds'))}",
        f"  restore     {human_bytes(p.get('restore_bytes') or 0)} at {human_bytes(p.get('restore_rate') or 0)}/s; "
        f"WAL replay {human_bytes(p.get('wal_bytes') or 0)} at {human_bytes(p.get('replay_rate') or 0)}/s",
        f"  verify      {_secs(p.get('verify_seconds'))}; total {_secs(p.get('total_seconds'))}",
        f"  RPO         {_secs(details.get('rpo_seconds'))} (newest archived commit vs now)",
    ]
    if details.get("cleaned"):
        lines.append(f"  cleaned     {', '.join(details['cleaned'])} (left by an earlier run)")
    if details.get("log_file"):
        lines.append(f"  server log  {details['log_file']}")
    checks = details.get("checks") or []
    lines += ["", table(["check", "status", "detail"],
                        [(c["name"], MARK.get(c["status"], c["status"]), c["message"]) for c in checks])]
    return "\n".join(lines)


def drills(runs: Sequence[Run], tz: ZoneInfo) -> str:
    if not runs:
        return "no drills yet (run 'opsd drill run')"
    rows = []
    for r in runs:
        d = r.details
        failed = ", ".join(d.get("failed_checks") or []) or ("" if r.outcome == "ok" else (r.error or "")[:60])
        rows.append((r.id, when(r.started_at, tz), d.get("stanza", "-"), r.outcome, d.get("target") or "-",
                     d.get("backup") or "-", _secs(d.get("rto_seconds")), _secs(d.get("rpo_seconds")), failed))
    return table(["id", "started", "stanza", "outcome", "target", "backup", "RTO", "RPO", "failed checks"], rows)


def verify(result: VerifyResult) -> str:
    rows = [(i.kind, i.name, i.status, i.checked, i.valid,
             ", ".join(f"{k} {v}" for k, v in i.problems.items() if v) or "-") for i in result.items]
    lines = [f"stanza {result.stanza}: {result.status.upper()}",
             table(["kind", "name", "status", "checked", "valid", "problems"], rows)]
    if result.damaged:
        lines += ["", "damaged files:", *(f"  {d}" for d in result.damaged)]
    return "\n".join(lines)
