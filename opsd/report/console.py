"""Console writers: plain, aligned text tables for a terminal (and for logs/mail when piped)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from opsd.core.units import format_duration, human_bytes

if TYPE_CHECKING:  # annotations only: 'opsd status' renders without importing the backup actions
    from opsd.actions.backup.setup import SetupResult
    from opsd.actions.status import JobStatus
    from opsd.adapters.pgbackrest import StanzaInfo
    from opsd.core.records.checks import CheckResult
    from opsd.core.records.fleet import FleetState
    from opsd.core.records.runs import Run
    from opsd.core.role import NodeRole
    from opsd.core.wal import Switch

MARK = {"ok": "OK", "warning": "WARN", "critical": "CRIT", "skipped": "SKIP",
        "changed": "CHANGED", "pending": "PENDING", "note": "NOTE"}


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def when(t: datetime | None, tz: ZoneInfo) -> str:
    return t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S%z") if t else "-"


def checks(results: Sequence[CheckResult]) -> str:
    return table(["check", "status", "detail"], [(r.name, MARK.get(r.status, r.status), r.message) for r in results])


def setup(result: SetupResult) -> str:
    rows = [(s.name, MARK.get(s.status, s.status), s.message) for s in result.steps]
    text = table(["step", "status", "detail"], rows)
    verdict = "setup complete" if result.complete else "setup NOT complete: PostgreSQL restart needed"
    return f"{text}\n\n{verdict}"


def run_line(run: Run | None, tz: ZoneInfo) -> str:
    if run is None:
        return "never"
    dur = f", {format_duration(run.duration)}" if run.duration is not None else ""
    where = f" on {run.host}" if run.trigger == "fleet" else ""  # a drill host's drill, imported from the repository
    return f"{when(run.started_at, tz)} {run.outcome}{dur}{where}"


def status(rows: Sequence[JobStatus], tz: ZoneInfo) -> str:
    body = []
    for s in rows:
        manual = s.job == "rehearse"  # run by hand (actions/status.py MANUAL_JOBS): its verdict instead of an error
        state = "manual" if manual else "disabled" if not s.enabled else ("OVERDUE" if s.overdue else "ok")
        err = s.last.error if s.last and s.last.error else ""
        if manual and s.last is not None and not err:
            err = f"verdict {getattr(s.last.details, 'verdict', '?')}"
        body.append((s.job, s.schedule or "-", state, run_line(s.last, tz), run_line(s.last_ok, tz),
                     when(s.next_due, tz), err[:80]))
    return table(["job", "schedule", "state", "last run", "last success", "next", "last error"], body)


def waiting_alerts(count: int, oldest_since: datetime | None, now: datetime, tz: ZoneInfo) -> str:
    """Alert messages not delivered yet (docs/alerts.md): kept and retried by later runs."""
    if not count or oldest_since is None:
        return "\nalerts waiting for delivery: none"
    return (f"\nalerts waiting for delivery: {count}, oldest since {when(oldest_since, tz)} "
            f"({format_duration((now - oldest_since).total_seconds())} ago); see docs/alerts.md")


def fleet(state: FleetState | None, name: str, tz: ZoneInfo) -> str:
    """This host's view of its fleet, as the daemon's fleet job last saw it (fleet.json; docs/fleet.md)."""
    if state is None:
        return f"\nfleet {name}: not checked yet (the daemon's fleet job writes fleet.json)"
    head = f"\nfleet {state.fleet} ({state.role} {state.host}), checked {when(state.checked_at, tz)}: "
    if not state.reachable:
        return head + f"ETCD UNREACHABLE: {state.error}"
    if state.error:
        return head + f"NOT PUBLISHED: {state.error}"
    over = f"{len(state.overdue)} overdue ({', '.join(state.overdue)})" if state.overdue else "none overdue"
    own = {True: "; THIS CLUSTER IS OVERDUE", False: "; this cluster drilled in time", None: ""}
    return head + (f"{state.clusters} cluster(s), {over}, {state.claims} drill(s) in flight, "
                   f"{state.drill_hosts} drill host(s)") + own[state.this_cluster_overdue]


def role(node: NodeRole, undecided_for: float | None) -> str:
    """This node's role, what each source said, and for how long it has been undecided (docs/ha.md)."""
    out = [f"\nrole: {node.role}" + (" (cluster paused: maintenance mode)" if node.paused else "")
           + (f", undecided for {format_duration(undecided_for)}" if undecided_for is not None else "")]
    out += [f"  {s}" for s in node.sources] or [f"  {node.why}"]
    if node.split_brain:
        out.append(f"  SPLIT BRAIN: {node.split_brain}; no repository writes until it is decided")
    elif node.role == "unknown":
        out.append(f"  why: {node.why}")
    return "\n".join(out)


def info(st: StanzaInfo, tz: ZoneInfo, recent: Sequence[Run],
         timelines: tuple[int, Sequence[Switch]] = (1, ())) -> str:
    rows = [(b.label, b.type, when(b.start, tz), format_duration(b.duration), human_bytes(b.size),
             human_bytes(b.repo_delta), f"{b.wal_start or '-'}..{b.wal_stop or '-'}") for b in st.backups]
    out = [f"stanza {st.name}: {st.status_message}" + ("  (backup running)" if st.lock_held else "")]
    out.append(table(["label", "type", "started", "took", "db size", "stored", "WAL"], rows) if rows
               else "no backups yet")
    for a in st.archives:
        out.append(f"WAL archive {a.id}: {a.min or '-'} .. {a.max or '-'}")
    current, switches = timelines
    out.append(f"timeline {current}" + "".join(
        f"; {sw.parent} -> {sw.timeline} at {sw.lsn}" + (f" ({when(sw.at, tz)})" if sw.at else "")
        for sw in switches))
    if recent:
        out.append("")
        out.append("recent opsd runs:")
        out.append(table(["job", "trigger", "started", "outcome", "error"],
                         [(r.job, r.trigger, when(r.started_at, tz), r.outcome, (r.error or "")[:80]) for r in recent]))
    return "\n".join(out)


def config(data: dict[str, dict[str, Any]]) -> str:
    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        for k, v in values.items():
            shown: object
            if isinstance(v, list | dict):
                shown = json.dumps(v)
            else:
                shown = str(v).lower() if isinstance(v, bool) else (v if isinstance(v, int) else f'"{v}"')
            lines.append(f"{k} = {shown}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
