"""``opsd queries`` on a terminal: each objective over the period, its days, the statements contributing most to
its misses (normalised text only), and what the reader must know."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from opsd.core.records.objectives import Contributor, ObjectiveReport, ObjectiveResult
from opsd.core.units import human_bytes
from opsd.report.console import table

TEXT_WIDTH = 100


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.0f} ms" if v < 1000 else f"{v / 1000:.1f} s"


def _threshold(ms: float) -> str:
    return f"{ms:g} ms" if ms < 1000 else f"{ms / 1000:g} s"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _state(s: str) -> str:
    return s.replace("_", " ").upper()


def _selector(o: ObjectiveResult) -> str:
    parts = [f"database {o.database}" if o.database else "", f"role {o.role}" if o.role else ""]
    return ", ".join(p for p in parts if p) or "every statement"


def _text(c: Contributor) -> str:
    if c.text is None:
        return "(text hidden or not seen)"
    one = re.sub(r"\s+", " ", c.text).strip()
    return one if len(one) <= TEXT_WIDTH else one[:TEXT_WIDTH - 3] + "..."


def _top(o: ObjectiveResult) -> list[str]:
    if not o.top:
        return [f"  no execution at or over {_threshold(o.threshold_ms)} in the period"]
    rows = [(i, c.over, c.calls, _ms(c.total_ms), _ms(c.mean_ms), c.rows, c.shared_read, c.shared_hit,
             c.temp_read + c.temp_written, human_bytes(c.wal_bytes), f"{c.dbname}/{c.rolname}", c.queryid)
            for i, c in enumerate(o.top, 1)]
    out = [f"  statements with the most executions at or over {_threshold(o.threshold_ms)}:"]
    out += ["  " + line for line in table(["#", "over", "calls", "total", "mean", "rows", "read", "hit", "temp",
                                           "WAL", "db/role", "queryid"], rows).splitlines()]
    out += [f"  {i}: {_text(c)}" for i, c in enumerate(o.top, 1)]
    return out


def objective(o: ObjectiveResult) -> list[str]:
    head = (f"objective {o.name}: {100 * o.target:g}% under {_threshold(o.threshold_ms)}, {_selector(o)}: "
            f"{_state(o.state)}")
    if o.calls or o.over:
        head += f" ({_pct(o.share_under)} under; {o.over} of {o.calls} executions at or over)"
    out = [head]
    out += [f"  - {r}" for r in o.reasons]
    if o.days:
        rows = [(d.day, d.calls, d.over, _pct(d.share_under), _state(d.state)) for d in o.days]
        out += ["  " + line for line in table(["day", "calls", "over", "under", "state"], rows).splitlines()]
    return [*out, *_top(o)]


def report(rep: ObjectiveReport, tz: ZoneInfo) -> str:
    span = f"{rep.since.astimezone(tz):%Y-%m-%d %H:%M} to {rep.until.astimezone(tz):%Y-%m-%d %H:%M} ({rep.timezone})"
    out = [f"query objectives, {span}" + (f", node {rep.node}" if rep.node else ""), ""]
    for o in rep.objectives:
        out += [*objective(o), ""]
    if rep.notes:
        out += ["notes:", *(f"  - {n}" for n in rep.notes)]
    return "\n".join(out).rstrip() + "\n"
