"""Console writers for a migration rehearsal: the plan, and the report a reviewer pastes into a pull request
(Markdown tables: they read as plain text on a terminal too)."""

from __future__ import annotations

from opsd.actions.rehearse.view import RehearsePlanView
from opsd.core.records.rehearse import RehearsalResult
from opsd.core.rehearse.locks import short
from opsd.core.units import human_bytes
from opsd.report.restore_console import plan


def rehearse_plan(v: RehearsePlanView) -> str:
    need = human_bytes(v["scratch_bytes"]) if v["scratch_bytes"] is not None else "-"
    lines = [plan(v["restore"]), "rehearsal",
             f"  database     {v['dbname']} (role: {v['role'] or 'its owner at the target time'})",
             f"  migrate      {v['migrate']}",
             f"  rollback     {v['rollback'] or '- (none given: the rollback is not proven)'}",
             f"  runs as      OS user {v['os_user']} in {v['workdir']}, at most {v['timeout_seconds']:.0f} s each",
             f"  scratch      {v['scratch']} (needs {need}; torn down afterwards)"]
    return "\n".join(lines)


def _md(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return out


def rehearse_result(r: RehearsalResult) -> str:
    out = [f"## Migration rehearsal: {r.verdict}", "",
           f"On a copy of `{r.dbname}` recovered to {r.target} (backup {r.backup}), as role `{r.role}`."]
    out += ["", *_md(["phase", "command", "exit", "time", "WAL", "statements"],
                     [[p.name, f"`{p.command}`", "killed" if p.exit_code is None else str(p.exit_code),
                       f"{p.seconds:.1f} s", human_bytes(p.wal_bytes),
                       str(sum(1 for s in r.statements if s.phase == p.name))] for p in r.phases])]
    if r.failures:
        out += ["", "### Why it failed", *[f"- {f}" for f in r.failures]]
        for p in r.phases:
            if p.exit_code != 0 and p.output_tail:
                out += ["", f"The {p.name}'s last lines (literals masked):", "```", *p.output_tail[-10:], "```"]
    if r.hazards:
        out += ["", "### Hazards", *_md(["hazard", "what happened on the copy", "safer pattern"],
                                         [[h.code, h.message, h.advice] for h in r.hazards])]
    out += _locks(r) + _changes(r)
    out += ["", "### Production impact", *[f"- {line}" for line in r.impact or ["nothing blocks ordinary traffic"]]]
    out += ["", "### Checks on the copy", *[f"- {c.status}: {c.name}: {c.message}" for c in r.checks]]
    out += _rollback(r)
    if r.next_steps:
        out += ["", "### Into production", "```", *r.next_steps, "```"]
    if r.kept:
        out += ["", f"The copy is kept at {r.kept}."]
    return "\n".join(out)


def _locks(r: RehearsalResult) -> list[str]:
    blocking = [lk for lk in r.locks if lk.blocks and lk.bytes is not None]
    if not blocking:
        return []
    return ["", "### Locks on existing tables (what they block on production)",
            *_md(["relation", "mode", "held", "size", "blocks", "phase"],
                 [[lk.relation, short(lk.mode), f"{lk.seconds:.2f} s", human_bytes(lk.bytes or 0),
                   ", ".join(lk.blocks), lk.phase] for lk in blocking])]


def _rollback(r: RehearsalResult) -> list[str]:
    if r.schema_diff is None:
        return []
    out = ["", "### Rollback", "- schema: " + ("identical to before the migration" if not r.schema_diff
                                               else "differs from before the migration:")]
    out += ["```diff", *r.schema_diff, "```"] if r.schema_diff else []
    out += [f"- {t.table}: {t.missing} row(s) missing, {t.extra} not there before"
            + (" (the migration wrote it)" if t.migration_changed else "")
            for t in r.tables if t.missing or t.extra or t.rows_after is None]
    if not any(t.missing or t.extra or t.rows_after is None for t in r.tables):
        out.append(f"- data: the {len(r.tables)} table(s) compared hold the same rows as before the migration")
    return out


def _changes(r: RehearsalResult) -> list[str]:
    rows = [[f"rewrote {w.relation}", f"{human_bytes(w.bytes_before)} -> {human_bytes(w.bytes_after or 0)}"]
            for w in r.rewrites]
    rows += [[f"built index {i.index} on {i.table}", ("concurrently" if i.concurrently else "NOT concurrently") +
              ("" if i.valid else ", INVALID")] for i in r.indexes]
    rows += [[f"added {c.kind} {c.name} on {c.table}", "NOT VALID" if c.not_valid else "validated at once"]
             for c in r.constraints]
    return ["", "### What it changed", *_md(["change", "how"], rows)] if rows else []
