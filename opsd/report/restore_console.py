"""Console writers for the recoverable window and the restore plan."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from opsd.actions.restore.view import PlanView
from opsd.actions.restore.window import Window
from opsd.core.timeparse import show
from opsd.core.units import human_bytes
from opsd.report.console import table

LEVEL = {"ok": "OK", "warning": "WARN", "refuse": "REFUSE"}


def window(w: Window, tz: ZoneInfo) -> str:
    out = []
    if w.intervals:
        rows = [(i.timeline, show(i.earliest.time, tz), i.earliest.source, show(i.latest.time, tz), i.latest.source,
                 f"{i.wal_first}..{i.wal_last}") for i in w.intervals]
        out.append(table(["timeline", "earliest", "from", "latest", "from", "WAL"], rows))
    else:
        out.append("no recoverable window: no usable backup with its WAL in the archive")
    if w.gaps:
        out.append("")
        out.append("gaps in the WAL archive:")
        out += [f"  timeline {g.timeline}: {g.missing_from.name} .. {g.missing_to.name} ({g.count} missing)"
                for g in w.gaps]
    else:
        out.append("no gaps in the WAL archive")
    for sw in w.switches:
        when = f", archived {show(sw.at, tz)}" if sw.at else ""
        out.append(f"timeline switch: {sw.timeline} branched off timeline {sw.parent} at {sw.lsn}{when} ({sw.reason})")
    if w.unusable:
        out.append(f"backups without their WAL in the archive (not usable): {', '.join(w.unusable)}")
    return "\n".join(out)


def plan(p: PlanView) -> str:
    t, wal, dest = p["target"], p["wal"], p["destination"]
    where = f"{dest['path']} (in place" + (", --delta" if dest["delta"] else ", old directory moved aside") + ")" \
        if dest["in_place"] else f"{dest['path']} on port {dest['port']}, archive_mode=off (side restore)"
    size = human_bytes(p["backup_size"]) if p["backup_size"] is not None else "-"
    lines = [
        "restore plan",
        f"  target       {t['type']}: {t['value']}  (timeline {t['timeline']})",
        f"  backup set   {p['backup'] or '-'} ({p['backup_type'] or '-'}, {size}): {p['why'] or '-'}",
        f"  WAL replay   {wal['from'] or '-'} .. {wal['to'] or '-'}: up to {wal['segments']} segment(s), "
        f"{human_bytes(wal['bytes'])}",
        f"  estimate     {p['estimate'] or 'unknown'} ({p['estimate_source']})",
        f"  destination  {where}",
    ]
    for ts in p["tablespaces"]:
        size = human_bytes(ts["size"]) if ts["size"] is not None else "size unknown"
        lines.append(f"  tablespace   {ts['name']} ({ts['source']}, {size}) -> {ts['destination']}: {ts['how']}")
    lines += ["  verdicts"]
    lines += [f"    {LEVEL.get(v['level'], v['level']):<6} {v['message']}" for v in p["verdicts"]]
    return "\n".join(lines)
