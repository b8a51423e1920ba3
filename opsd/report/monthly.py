"""The monthly report as Markdown and as one self-contained, printable HTML file. Both render the same
:class:`MonthReport` (JSON is its plain dump); the HTML embeds the SVG charts, Markdown links to them."""

from __future__ import annotations

import html
from typing import Any

from opsd.actions.report.rows import DrillRow, MonthReport
from opsd.core.units import format_duration, human_bytes
from opsd.report import service_section
from opsd.report.tables import html_table, md_table

CHART_TITLES = {"rto": "RTO per drill", "backup_duration": "Backup duration per day",
                "backup_size": "Database size per day", "archive_lag": "Archive lag",
                "pool_waiting": "PgBouncer clients waiting"}


def _d(secs: float | None) -> str:
    return format_duration(secs) if secs is not None else "-"


def _t(v: Any, tz_fmt: str = "%Y-%m-%d %H:%M") -> str:
    return v.strftime(tz_fmt) if hasattr(v, "strftime") else ("-" if v is None else str(v))


Section = tuple[str, list[str], list[list[str]]]


def _verdict(r: MonthReport) -> Section:
    v = r.verdict
    rows = [
        ["figure", "value", "target"],
        ["drills run / passed / failed", f"{v.drills_run} / {v.drills_passed} / {v.drills_failed}", "all pass"],
        ["RTO worst / median", f"{_d(v.rto_worst)} / {_d(v.rto_median)}", _d(v.rto_target)],
        ["RPO exposure, worst", _d(v.rpo_worst), _d(v.rpo_target)],
        ["longest time without a passing drill", _d(v.longest_unproven), f"0 (max age {_d(v.max_age)})"],
        ["age of the last passing drill at month end", _d(v.restorability_age_at_end), f"< {_d(v.max_age)}"],
    ]
    return "Verdict", [v.statement], rows


def _relations(d: DrillRow) -> str:
    """Checked (proven) / skipped (not a problem) / not checked (not proven) / corrupt; '-' before the counts."""
    if d.checked is None:
        return "-"
    return (f"{d.checked} checked, {sum((d.skipped or {}).values())} skipped, {d.not_checked} not checked, "
            f"{d.corrupt} corrupt")


def _drills(r: MonthReport) -> list[Section]:
    drows = [["#", "date", "host", "target", "backup", "RTO", "restore", "recovery", "verify", "replay", "relations",
              "result"]]
    for d in r.drills:
        drows.append([str(d.id), _t(d.started_at), d.host or "-", d.target or "-", d.backup or "-", _d(d.rto),
                      _d(d.restore_seconds), _d(d.recovery_seconds), _d(d.verify_seconds),
                      f"{human_bytes(d.replay_rate or 0)}/s" if d.replay_rate else "-", _relations(d),
                      "passed" if d.passed else f"FAILED: {(d.failure or '')[:160]}"])
    if not r.drills:
        return [("Recovery drills", ["No drill ran this month."], [])]
    checks = sorted({c for d in r.drills for c in d.checks})
    crows = [["#", *checks]] + [[str(d.id), *(d.checks.get(c, "-") for c in checks)] for d in r.drills]
    return [("Recovery drills", [], drows), ("Drill checks", [], crows)]


def _backups(r: MonthReport) -> Section:
    b = r.backups
    brows = [["type", "ok", "failed", "busy", "copied", "largest database", "median duration", "longest"]]
    brows += [[t.type, str(t.ok), str(t.failed), str(t.busy), human_bytes(t.copied), human_bytes(t.largest),
               _d(t.median_duration), _d(t.longest_duration)] for t in b.by_type]
    paras = []
    if b.window:
        w = b.window
        when = "at month end" if w["as_of_month_end"] else f"as of {_t(w['seen_at'])} (the report's time)"
        paras.append(f"Recoverable window {when}: from {_t(w['earliest_recoverable'])}; {w['backups']} backup(s), "
                     f"{w['full_backups']} full (retention-full {w['retention_full'] or 'not set'}).")
    else:
        paras.append("Recoverable window: the repository could not be read when this report was made.")
    paras.append(f"Archiving: {b.archive_checks} checks, {b.archive_critical} critical; longest archive lag "
                 f"{_d(b.longest_archive_lag)}; archive failures this month: "
                 f"{b.archive_failures if b.archive_failures is not None else '-'}.")
    paras.append(f"Repository verify: {b.verify_runs} run(s), {b.verify_failed} found damage."
                 + "".join(f" {_t(x['started_at'])}: {x['error']}" for x in b.verify_damage))
    paras += [f"Failed {f['job']} at {_t(f['started_at'])}: {f['error']}" for f in b.failures]
    return "Backups and WAL", paras, brows


def _window(r: MonthReport) -> list[Section]:
    b = r.backups
    if not b.backup_window:
        return []
    if not b.nights:
        return [("Full backups and the backup window", [f"No full backup ran this month (window "
                                                        f"{b.backup_window})."], [])]
    rows = [["started", "ended", "took", "window closes", "margin"]]
    for n in b.nights:
        margin = n["margin"]
        verdict = ("started outside the window" if margin is None else
                   f"{_d(margin)} to spare" if margin >= 0 else f"OVERRAN by {_d(-margin)}")
        rows.append([_t(n["started_at"]), _t(n["ended_at"]), _d(n["seconds"]),
                     _t(n["window_end"]) if n["window_end"] else "-", verdict])
    late = sum(1 for n in b.nights if n["margin"] is None or n["margin"] < 0)
    return [("Full backups and the backup window",
             [f"Backup window {b.backup_window} ({r.timezone}): {len(b.nights) - late} of {len(b.nights)} full "
              "backup(s) ended inside it."], rows)]


def _health(r: MonthReport) -> Section:
    h = r.health
    hp = [f"Incidents: {h.lock_incidents} lock, {h.pool_incidents} pool, {h.connection_incidents} connection, "
          f"{h.probe_incidents} probe." + (f" Peak connection use {h.connection_peak:.0f}%." if h.connection_peak
                                             else "")]
    hrows = [["root blocker", "incidents", "longest wait", "most waiters", "idle in transaction"]]
    hrows += [[x["who"], str(x["incidents"]), _d(x["longest_wait"]), str(x["most_waiters"]),
               str(x["idle_in_transaction"])] for x in h.top_blockers]
    hp += [f"Pool {p['pool']}: {p['incidents']} incident(s), clients waited up to {_d(p['peak_maxwait'])}."
           for p in h.pool_peaks]
    hp += [f"{_t(w['opened_at'])}: {w['summary']}" for w in h.longest_lock_waits]
    if h.slot_incidents or h.replay_lag_peak is not None:
        hp.append(f"Replication: {h.slot_incidents} slot incident(s)"
                  + "".join(f"; slot {x['slot']} retained up to {human_bytes(x['peak_retained_bytes'])} of WAL"
                            for x in h.slot_peaks)
                  + (f"; longest replay lag seen {_d(h.replay_lag_peak)}" if h.replay_lag_peak is not None else "")
                  + ".")
    return "Health", hp, hrows if h.top_blockers else []


def _rehearsals(r: MonthReport) -> list[Section]:
    """The month's migration rehearsals (docs/rehearse.md); no section in a month without one."""
    if not r.rehearsals:
        return []
    rows = [["when", "database", "verdict", "migration", "hazards", "rollback", "why it failed"]]
    rows += [[_t(x["started_at"]), x["dbname"], x["verdict"], _d(x["migration_seconds"]),
              ", ".join(x["hazards"]) or "-", x["rollback"], x["why"] or "-"] for x in r.rehearsals]
    failed = sum(1 for x in r.rehearsals if x["verdict"] == "FAILED")
    return [("Migration rehearsals", [f"{len(r.rehearsals)} rehearsal(s) on a restored copy, {failed} failed, "
                                      f"{sum(1 for x in r.rehearsals if x['verdict'] == 'HAZARDS')} with hazards."],
             rows)]


def sections(r: MonthReport) -> list[Section]:
    """(title, paragraphs, table rows with the header first) for every section, in order."""
    return [_verdict(r), *_drills(r), _backups(r), *_window(r), _health(r), *_rehearsals(r),
            ("Action items", [] if r.actions else ["None: nothing needs attention."], [])]


def markdown(r: MonthReport, chart_files: dict[str, str]) -> str:
    lines = [f"# Recovery report {r.month}", "",
             f"Period {_t(r.period_start)} .. {_t(r.period_end)} ({r.timezone}); generated {_t(r.generated_at)}.", ""]
    for title, paras, rows in sections(r):
        if title == "Action items" and r.service is not None:
            lines += service_section.markdown(r.service, chart_files)
        lines += [f"## {title}", ""]
        for p in paras:
            lines += [p, ""]
        if rows:
            lines += [*md_table(rows), ""]
        if title == "Action items":
            lines += [f"- {a}" for a in r.actions] + ([""] if r.actions else [])
    trends = _trends(chart_files)
    if trends:
        lines += ["## Trends", ""]
        lines += [f"![{CHART_TITLES.get(k, k)}]({f})" for k, f in trends.items()] + [""]
    return "\n".join(lines)


_md_table = md_table  # the fleet report's tables (report/fleet_report.py)


def _trends(charts: dict[str, str]) -> dict[str, str]:
    """The charts of the Trends section (the Service levels section draws its own where it shows them)."""
    return {k: v for k, v in charts.items() if not k.startswith(service_section.CHART_PREFIX)}


CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
     border-bottom: 1px solid #ccc; padding-bottom: .2rem; }
.meta { color: #555; } table { border-collapse: collapse; width: 100%; margin: .6rem 0; font-size: 12.5px; }
th, td { border: 1px solid #d0d0d0; padding: .25rem .45rem; text-align: left; vertical-align: top; }
th { background: #f2f4f7; } .verdict { font-size: 1.05rem; padding: .6rem .8rem; border-left: 5px solid; }
.ok { border-color: #2e7d32; background: #eef7ee; } .bad { border-color: #c62828; background: #fdeeee; }
.fail { color: #b71c1c; font-weight: 600; } .missing { color: #8a4b00; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; } figure { margin: 1rem 0; } svg { max-width: 100%; height: auto; }
@media print { body { margin: 0; max-width: none; font-size: 11px; } h2 { break-after: avoid; }
  table, figure { break-inside: avoid; } }
"""


def html_page(r: MonthReport, charts: dict[str, str]) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>Recovery report {e(r.month)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
           f"<h1>Recovery report {e(r.month)}</h1>",
           f'<p class="meta">Period {e(_t(r.period_start))} .. {e(_t(r.period_end))} ({e(r.timezone)}); generated '
           f"{e(_t(r.generated_at))} by opsd.</p>"]
    for title, paras, rows in sections(r):
        if title == "Action items" and r.service is not None:
            out += service_section.html_part(r.service, charts)
        out.append(f"<h2>{e(title)}</h2>")
        for i, p in enumerate(paras):
            if title == "Verdict" and i == 0:
                cls = "ok" if r.verdict.recoverable_all_month and not r.verdict.drills_failed else "bad"
                out.append(f'<p class="verdict {cls}">{e(p)}</p>')
            else:
                out.append(f"<p>{e(p)}</p>")
        if rows:
            out.append(html_table(rows))
        if title == "Action items" and r.actions:
            out.append("<ul>" + "".join(f"<li>{e(a)}</li>" for a in r.actions) + "</ul>")
    if trends := _trends(charts):
        out.append("<h2>Trends</h2>")
        for key, svg in trends.items():
            out.append(f'<figure aria-label="{e(CHART_TITLES.get(key, key))}">{svg}</figure>')
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
