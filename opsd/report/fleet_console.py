"""``opsd fleet status`` as text: one row per cluster (its last drill, when it is due or how long overdue, the claim
in flight, too large for every drill host), the drill hosts alive, and a one-line summary. Times are already in
the configured timezone (:func:`opsd.report.fleet_views.status_view`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from opsd.core.records.fleet import DrillHostEntry, DrillSummary
from opsd.core.units import format_duration, human_bytes
from opsd.report.fleet_views import ClusterStatus, FleetStatusView

HEAD = ["CLUSTER", "STANZA", "LAST DRILL", "VERDICT", "RTO", "RPO", "DUE", "IN FLIGHT"]


def when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M %Z") if t is not None else "-"


def verdict(d: DrillSummary | None) -> str:
    if d is None:
        return "never drilled"
    return "passed" if d.passed else d.outcome.upper()


def _secs(s: float | None) -> str:
    return format_duration(s) if s is not None else "-"


def due(c: ClusterStatus) -> str:
    if c["overdue_seconds"] is not None:
        return f"OVERDUE by {format_duration(c['overdue_seconds'])}"
    return f"due {when(c['due_at'])}"


def in_flight(c: ClusterStatus) -> str:
    parts = []
    if c["claim"] is not None:
        parts.append(f"drilled by {c['claim'].host} since {when(c['claim'].started_at)}")
    if c["too_large"]:
        size = f" ({human_bytes(c['database_bytes'])})" if c["database_bytes"] is not None else ""
        parts.append(f"too large for every drill host{size}")
    return "; ".join(parts) or "-"


def cluster_row(c: ClusterStatus) -> list[str]:
    d = c["last_drill"]
    last = f"{when(d.finished_at)} on {d.host}" if d is not None else "-"
    return [c["cluster"], c["stanza"], last, verdict(d), _secs(d.rto_seconds if d else None),
            _secs(d.rpo_seconds if d else None), due(c), in_flight(c)]


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def host_line(h: DrillHostEntry) -> str:
    cap = h.capacity
    doing = f"drilling {', '.join(h.drilling)}" if h.drilling else "idle"
    return (f"  {h.host}: scratch {human_bytes(cap.scratch_bytes)}, {cap.cores} cores, {cap.drills} drill(s) at "
            f"once; {doing} (seen {when(h.updated_at)})")


def summary(v: FleetStatusView) -> str:
    n = len(v["clusters"])
    parts = [f"{n} cluster(s)",
             f"{len(v['overdue'])} overdue" + (f" ({', '.join(v['overdue'])})" if v["overdue"] else ""),
             f"{v['claims']} drill(s) in flight"]
    if v["too_large"]:
        parts.append(f"{len(v['too_large'])} too large for every drill host ({', '.join(v['too_large'])})")
    parts.append(f"{len(v['hosts'])} drill host(s) alive")
    return ", ".join(parts)


def fleet_status(v: FleetStatusView) -> str:
    every = format_duration(v["drill_every_seconds"])
    out = [f"fleet {v['fleet']}: read {when(v['read_at'])} ({v['timezone']}); every cluster is drilled at least "
           f"every {every}", ""]
    if v["clusters"]:
        out += table([HEAD, *(cluster_row(c) for c in v["clusters"])])
    else:
        out.append("no cluster is registered in the fleet")
    out.append("")
    if v["hosts"]:
        out += [f"drill hosts alive ({len(v['hosts'])}):", *(host_line(h) for h in v["hosts"])]
    else:
        out.append("no drill host is alive: no cluster is being drilled")
    out += ["", summary(v)]
    return "\n".join(out) + "\n"
