"""The monthly report's "Service levels" section in Markdown and HTML (JSON is the plain dump of
:class:`ServiceLevels`): the platform's success metrics answered one by one, then the query objectives per day,
availability with its outages, recovery tests, migrations rehearsed, integrity and storage. Every figure here is
a field of the JSON; the charts (objective per day, availability per day) are drawn from the same fields."""

from __future__ import annotations

import html
from datetime import datetime

from opsd.actions.report.rows import Series
from opsd.actions.report.service_parts import threshold
from opsd.core.records.service import (
    MISSED,
    NO_DATA,
    Availability,
    Integrity,
    ObjectiveMonth,
    ServiceLevels,
    Storage,
)
from opsd.core.units import format_duration, human_bytes
from opsd.report.tables import html_table, md_table

TITLE = "Service levels"
CHART_PREFIX = "service_"
# a block: (title, paragraphs, table rows with the header first, paragraphs after the table, the chart keys drawn
# under it)
Block = tuple[str, list[str], list[list[str]], list[str], list[str]]


def pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def _d(secs: float | None) -> str:
    return "-" if secs is None else format_duration(secs)


def _t(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M}"


def _verdict(v: str) -> str:
    return v.upper() if v == MISSED else v


def _answers(lv: ServiceLevels) -> Block:
    rows = [["metric", "measured", "target", "verdict"]]
    rows += [[a.metric, a.measured, a.target, _verdict(a.verdict)] for a in lv.answers]
    paras = ["Each success metric of the platform, answered with what opsd measured this month; the parts below "
             "show the figures behind each answer. Where a figure is missing, its part says what and why: such a "
             "metric has no clean verdict (no data, not proven)."]
    return TITLE, paras, rows, [], []


def _objectives(lv: ServiceLevels) -> Block:
    objs = lv.objectives
    if not objs:
        return "Query objectives per day", ["No objective is configured ([queries] objectives)."], [], [], []
    days = sorted({d.day for o in objs for d in o.days})
    rows = [["day", *(f"{o.name}: under {threshold(o.threshold_seconds)} (target {pct(o.target, 0)})"
                      for o in objs)]]
    for day in days:
        rows.append([day, *(_objective_cell(o, day) for o in objs)])
    paras = [f"{o.name}: {pct(o.share_under)} of {o.calls:,} statements under {threshold(o.threshold_seconds)} "
             f"over the month ({o.over:,} at or over it); days met {o.days_met}, missed {o.days_missed}, unknown "
             f"{o.days_unknown}." if o.calls else f"{o.name}: no statement counted." for o in objs]
    after = [f"Missing for {o.name}: {m}" for o in objs for m in o.missing]
    return ("Query objectives per day", paras, rows if days else [], after,
            [f"{CHART_PREFIX}objective_{o.name}" for o in objs])


def _objective_cell(o: ObjectiveMonth, day: str) -> str:
    d = next((x for x in o.days if x.day == day), None)
    if d is None:
        return "-"
    if d.share_under is None:
        return f"unknown{': ' + d.why if d.why else ''}"
    flag = "MISSED " if d.verdict == MISSED else ""
    tail = f" ({d.verdict}: {d.why})" if d.verdict not in ("met", MISSED) and d.why else ""
    return f"{flag}{pct(d.share_under)} of {d.calls:,} ({d.over:,} over){tail}"


def _availability(a: Availability | None, missing: list[str]) -> Block:
    title = "Availability"
    if a is None or a.verdict == NO_DATA:
        return title, ["Not measured."], [], [f"Missing: {m}" for m in missing], []
    paras = [f"{pct(a.measured_share, 3)} up of the time measured (up / (up + down)); at least "
             f"{pct(a.lower_bound, 3)} of the period (unknown time counted as down). Target {pct(a.target, 1)}: "
             f"verdict {_verdict(a.verdict)}. Up {_d(a.up_seconds)}, down {_d(a.down_seconds)}, unknown "
             f"{_d(a.unknown_seconds)}; the downtime budget of the period is {_d(a.budget_seconds)}.",
             "Measured by the health probe (every [schedule] health): down when opsd could not connect, the probe "
             "timed out or its connection broke; time without a probe is unknown, never up."]
    rows = [["start", "end", "down for", "ended", "what failed"]]
    rows += [[_t(o.start), _t(o.end), _d(o.seconds), o.ended, o.what or "-"] for o in a.outages]
    if not a.outages:
        paras.append("No outage was seen.")
    return title, paras, rows if a.outages else [], [f"Missing: {m}" for m in missing], [f"{CHART_PREFIX}availability"]


def _recovery(lv: ServiceLevels) -> Block:
    x = lv.recovery
    return ("Recovery tests", [f"{x.drills_run} drill(s): {x.drills_passed} passed, {x.drills_failed} failed. "
                               f"{x.statement}"], [], [], [])


def _rehearsals(lv: ServiceLevels) -> Block:
    x = lv.rehearsals
    text = (f"{x.rehearsed} migration(s) rehearsed on a restored copy: {x.passed} passed, {x.hazards} with hazards, "
            f"{x.failed} failed (see Migration rehearsals)." if x.rehearsed else
            "No migration was rehearsed this month (opsd rehearse).")
    return "Migrations rehearsed", [text], [], [], []


def _integrity(i: Integrity) -> list[Block]:
    paras = [f"Catalogs read {_t(i.read_at)}: {len(i.invalid_indexes)} invalid index(es), {len(i.not_valid)} "
             "constraint(s) NOT VALID." if i.read_at else "The catalogs could not be read."]
    rows = [["drill", "date", "amcheck", "corrupt", "not checked"]]
    rows += [[f"#{a.drill_id}", _t(a.started_at), a.status, _n(a.corrupt), _n(a.not_checked)] for a in i.amcheck]
    blocks: list[Block] = [("Integrity", paras, rows if i.amcheck else [], [f"Missing: {m}" for m in i.missing], [])]
    problems = i.invalid_indexes + i.not_valid
    if problems:
        prow = [["database", "table", "name", "what", "size", "to do"]]
        prow += [[p.dbname, f"{p.schema_name}.{p.table_name}", p.name, p.kind,
                  "-" if p.size_bytes is None else human_bytes(p.size_bytes), " ; ".join(p.statements)]
                 for p in problems]
        blocks.append(("Invalid indexes and constraints not validated", [], prow, [], []))
    return blocks


def _n(v: int | None) -> str:
    return "-" if v is None else str(v)


def _storage(st: Storage) -> Block:
    paras = []
    if st.tables_bytes is not None and st.tables:
        paras.append(f"Every table on {st.tables[0].last_day} (heap, TOAST and indexes, as the daily size "
                     f"snapshots saw them): {human_bytes(st.tables_bytes)}; the {len(st.tables)} largest below, with "
                     "their growth over the month.")
    paras.append(f"Unused indexes (no scan on any node in the window): {st.unused_indexes} holding "
                 f"{human_bytes(st.unused_bytes)}." if st.unused_bytes is not None else
                 f"Unused indexes: not decided ({st.unused_why or 'no index report'}).")
    if st.redundant_bytes is not None:
        paras.append(f"Duplicate or covered indexes: {st.redundant_indexes} holding {human_bytes(st.redundant_bytes)}.")
    rows = [["table", "first day", "size", "last day", "size", "growth", "growth %"]]
    rows += [[f"{t.dbname}: {t.schema_name}.{t.table_name}", t.first_day, human_bytes(t.size_first), t.last_day,
              human_bytes(t.size_last), human_bytes(t.growth_bytes), pct(t.growth_share, 1)] for t in st.tables]
    return "Storage", paras, rows if st.tables else [], [f"Missing: {m}" for m in st.missing], []


def blocks(lv: ServiceLevels) -> list[Block]:
    return [_answers(lv), _objectives(lv), _availability(lv.availability, lv.availability_missing),
            _recovery(lv), _rehearsals(lv), *_integrity(lv.integrity), _storage(lv.storage)]


def markdown(lv: ServiceLevels, chart_files: dict[str, str]) -> list[str]:
    lines: list[str] = []
    for i, (title, paras, rows, after, charts) in enumerate(blocks(lv)):
        lines += [f"{'##' if i == 0 else '###'} {title}", ""]
        for p in paras:
            lines += [p, ""]
        if rows:
            lines += [*md_table(rows), ""]
        for p in after:
            lines += [p, ""]
        lines += [f"![{title}: {k.removeprefix(CHART_PREFIX)}]({chart_files[k]})" for k in charts if k in chart_files]
        if any(k in chart_files for k in charts):
            lines.append("")
    return lines


def html_part(lv: ServiceLevels, charts: dict[str, str]) -> list[str]:
    e = html.escape
    out: list[str] = []
    for i, (title, paras, rows, after, keys) in enumerate(blocks(lv)):
        out.append(f"<h2>{e(title)}</h2>" if i == 0 else f"<h3>{e(title)}</h3>")
        out += [f"<p>{e(p)}</p>" for p in paras]
        if rows:
            out.append(html_table(rows, bad=("MISSED", "critical", "FAILED")))
        out += [f'<p class="missing">{e(p)}</p>' for p in after]
        out += [f'<figure aria-label="{e(title)}: {e(k.removeprefix(CHART_PREFIX))}">{charts[k]}</figure>'
                for k in keys if k in charts]
    return out


def charts(lv: ServiceLevels) -> dict[str, str]:
    """SVG per chart key: each objective's share under its threshold per day met or missed (with its target), and
    time down and unknown per day (with the daily downtime budget). A chart without data is left out."""
    from opsd.report import charts as draw  # matplotlib: imported only when a chart is drawn

    out: dict[str, str] = {}
    for o in lv.objectives:
        pts = [(d.day, 100 * d.share_under) for d in o.days  # an unknown or incomplete day's share is not a figure
               if d.share_under is not None and d.verdict in ("met", MISSED)]
        title = f"{o.name}: share under {threshold(o.threshold_seconds)} per day"
        svg = draw.svg(Series(title, "%", pts, 100 * o.target))
        if svg is not None:
            out[f"{CHART_PREFIX}objective_{o.name}"] = svg
    a = lv.availability
    if a is not None and a.days and a.verdict != NO_DATA:
        svg = draw.stacked("Time not up per day", "min", [d.day for d in a.days], [
            ("down", [d.down_seconds / 60 for d in a.days], "#c62828"),
            ("unknown", [d.unknown_seconds / 60 for d in a.days], "#9e9e9e")], target=(1 - a.target) * 1440,
            target_label="daily downtime budget")
        if svg is not None:
            out[f"{CHART_PREFIX}availability"] = svg
    return out
