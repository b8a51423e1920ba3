"""The fleet's monthly report (docs/reports.md, "The fleet report"): each cluster's verdict row (drills passed and
failed, the last drill's verdict, when and where, the days it was overdue, overdue now) and the month's totals, as
Markdown (charts as SVG files beside it), one self-contained HTML file (the charts inline) and JSON
(docs/schemas/fleet-report.json). Overdue clusters stand out in every format."""

from __future__ import annotations

import html

from opsd.actions.report.rows import Series
from opsd.report import jsonout
from opsd.report.fleet_console import verdict, when
from opsd.report.fleet_views import ClusterVerdict, FleetReportView
from opsd.report.monthly import CSS, _md_table

HEAD = ["cluster", "stanza", "passed", "failed", "last drill", "when", "where", "overdue days", "overdue now"]
CHART_TITLES = {"overdue_days": "Days overdue per cluster", "passed": "Drills passed per cluster",
                "failed": "Drills failed per cluster"}
FLEET_CSS = "tr.overdue td { background: #fdeeee; color: #b71c1c; font-weight: 600; }\n"


def row(c: ClusterVerdict) -> list[str]:
    d = c["last"]
    return [c["cluster"], c["stanza"], str(c["passed"]), str(c["failed"]), verdict(d),
            when(d.finished_at) if d else "-", d.host if d else "-", str(len(c["overdue_days"])),
            "OVERDUE" if c["overdue_now"] else "no"]


def headline(r: FleetReportView) -> str:
    t = r["totals"]
    late = [c["cluster"] for c in r["clusters"] if c["overdue_now"]]
    was = sum(1 for c in r["clusters"] if c["overdue_days"])
    if not r["clusters"]:
        return "No cluster is registered in the fleet."
    state = (f"{len(late)} cluster(s) OVERDUE now: {', '.join(late)}." if late else
             "No cluster is overdue now.")
    return (f"{t['clusters']} cluster(s): {t['passed']} drill(s) passed, {t['failed']} failed this month; "
            f"{was} cluster(s) were overdue on {t['overdue_days']} day(s) in all. {state}")


def totals_rows(r: FleetReportView) -> list[list[str]]:
    t = r["totals"]
    return [["clusters", "drills passed", "drills failed", "overdue days", "overdue now"],
            [str(t["clusters"]), str(t["passed"]), str(t["failed"]), str(t["overdue_days"]), str(t["overdue_now"])]]


def series(r: FleetReportView) -> dict[str, Series]:
    cs = r["clusters"]
    out = {"overdue_days": Series(CHART_TITLES["overdue_days"], "days",
                                  [(c["cluster"], float(len(c["overdue_days"]))) for c in cs]),
           "passed": Series(CHART_TITLES["passed"], "drills", [(c["cluster"], float(c["passed"])) for c in cs])}
    if r["totals"]["failed"]:
        out["failed"] = Series(CHART_TITLES["failed"], "drills", [(c["cluster"], float(c["failed"])) for c in cs])
    return out


def charts(r: FleetReportView) -> dict[str, str]:
    from opsd.report import charts as drawing  # matplotlib: only when a chart is drawn

    drawn = {k: drawing.svg(s, kind="bar") for k, s in series(r).items()} if r["clusters"] else {}
    return {k: v for k, v in drawn.items() if v is not None}


def _meta(r: FleetReportView) -> str:
    return (f"Fleet {r['fleet']}, {r['month']} ({r['timezone']}); every cluster is to be drilled at least every "
            f"{r['drill_every_seconds'] / 86400:g} day(s); generated {when(r['generated_at'])}.")


def markdown(r: FleetReportView, chart_files: dict[str, str]) -> str:
    rows = [HEAD] + [[f"**{x}**" if c["overdue_now"] and x else x for x in row(c)] for c in r["clusters"]]
    lines = [f"# Fleet drill report {r['month']}", "", _meta(r), "", "## Verdict", "", headline(r), "",
             *_md_table(totals_rows(r)), "", "## Clusters", ""]
    lines += [*_md_table(rows), ""] if r["clusters"] else ["No cluster is registered in the fleet.", ""]
    lines += _overdue_days(r)
    if chart_files:
        lines += ["## Charts", "", *(f"![{CHART_TITLES.get(k, k)}]({f})" for k, f in chart_files.items()), ""]
    return "\n".join(lines)


def _overdue_days(r: FleetReportView) -> list[str]:
    late = [c for c in r["clusters"] if c["overdue_days"]]
    if not late:
        return []
    return ["## Days overdue", "", *(f"- {c['cluster']}: {', '.join(c['overdue_days'])}" for c in late), ""]


def _html_table(rows: list[list[str]], overdue: list[bool] | None = None) -> str:
    e = html.escape
    head, *body = rows
    out = ["<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in head) + "</tr></thead><tbody>"]
    for i, cells in enumerate(body):
        cls = ' class="overdue"' if overdue and overdue[i] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    return "".join(out) + "</tbody></table>"


def html_page(r: FleetReportView, drawn: dict[str, str]) -> str:
    e = html.escape
    bad = r["totals"]["overdue_now"] or r["totals"]["failed"]
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>Fleet drill report {e(r['month'])}</title>", f"<style>{CSS}{FLEET_CSS}</style>", "</head>",
           "<body>", f"<h1>Fleet drill report {e(r['month'])}</h1>", f'<p class="meta">{e(_meta(r))}</p>',
           "<h2>Verdict</h2>", f'<p class="verdict {"bad" if bad else "ok"}">{e(headline(r))}</p>',
           _html_table(totals_rows(r)), "<h2>Clusters</h2>"]
    if r["clusters"]:
        out.append(_html_table([HEAD, *(row(c) for c in r["clusters"])], [c["overdue_now"] for c in r["clusters"]]))
    else:
        out.append("<p>No cluster is registered in the fleet.</p>")
    late = [c for c in r["clusters"] if c["overdue_days"]]
    if late:
        out += ["<h2>Days overdue</h2>", "<ul>", *(f"<li>{e(c['cluster'])}: {e(', '.join(c['overdue_days']))}</li>"
                                                   for c in late), "</ul>"]
    if drawn:
        out.append("<h2>Charts</h2>")
        out += [f'<figure aria-label="{e(CHART_TITLES.get(k, k))}">{svg}</figure>' for k, svg in drawn.items()]
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def render(r: FleetReportView, fmt: str, chart_prefix: str = "") -> tuple[str, dict[str, str]]:
    """The document, and for Markdown the chart files it links to (name -> SVG text)."""
    if fmt == "json":
        return jsonout.dump("fleet-report", r) + "\n", {}
    drawn = charts(r)
    if fmt == "html":
        return html_page(r, drawn), {}
    names = {k: f"{chart_prefix}fleet-{r['month']}-{k}.svg" for k in drawn}
    return markdown(r, names), {names[k]: v for k, v in drawn.items()}
