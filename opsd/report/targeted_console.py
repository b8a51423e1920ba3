"""Console writers for targeted recovery: restore points, the transactions of a table, a table restore."""

from __future__ import annotations

import shlex
from zoneinfo import ZoneInfo

from opsd.actions.targeted.view import TablePlanView
from opsd.core.records.targeted import RestorePoint, TableComparison, TableRestoreResult, WalChange
from opsd.core.timeparse import show
from opsd.core.units import human_bytes
from opsd.report.console import table
from opsd.report.restore_console import LEVEL, plan


def points(found: list[RestorePoint], tz: ZoneInfo) -> str:
    if not found:
        return "no restore points (opsd restore-point create NAME makes one)"
    rows = [(p.name, p.lsn, p.timeline, show(p.time, tz) if p.time else "-",
             "yes" if p.recoverable else f"no: {p.why}" if p.recoverable is False else "?", p.source) for p in found]
    return table(["name", "LSN", "timeline", "time", "recoverable", "known from"], rows)


def none_found(table: str, searched: str, min_rows: int) -> str:
    """A search of a table that resolved and had no change in the range (not an error, not a guess)."""
    rows = f" of {min_rows} row(s) or more" if min_rows else ""
    return f"no committed transaction{rows} changed {table} in the range: {searched}"


def changes(found: list[WalChange], tz: ZoneInfo) -> str:
    if not found:
        return "no committed transaction changed it in the range read"
    rows = [(c.xid, show(c.commit_time, tz), c.lsn, c.timeline, c.inserts, c.updates, c.deletes, _flags(c))
            for c in found]
    out = [table(["xid", "commit time", "commit LSN", "TL", "inserts", "updates", "deletes", "also"], rows)]
    notes = sorted({c.note for c in found if c.note})
    out += [f"note: {n}" for n in notes]
    named = found[0].table
    arg = shlex.quote(named) if named else "SCHEMA.TABLE"  # the name as --table reads it back, for the shell
    out.append(f"undo one: opsd restore --table {arg} --before-xid XID --into-schema NAME (--dry-run first)")
    return "\n".join(out)


def _flags(c: WalChange) -> str:
    flags = [f for f, on in (("truncated", c.truncated), ("dropped", c.dropped),
                             ("rewritten", c.rewritten and not c.truncated)) if on]
    if c.file_nodes and c.table is None:
        flags.append("file nodes " + " ".join(c.file_nodes))
    return ", ".join(flags) or "-"


def table_plan(v: TablePlanView) -> str:
    lines = [plan(v["restore"]), "table restore"]
    for t in v["tables"]:
        size = human_bytes(t["live_bytes"]) if t["live_bytes"] is not None else "not in the live catalog"
        lines.append(f"  table        {t['table']} (live: {size})")
    lines.append(f"  scratch      {v['scratch']} ({_needs(v)}; torn down afterwards)")
    into = (f"new schema {v['into_schema']} of {v['dbname']}, in one transaction" if v["into_schema"]
            else f"the file {v['into_file']} (production untouched)")
    lines.append(f"  into         {into}")
    lines += [f"    {LEVEL.get(x['level'], x['level']):<6} {x['message']}" for x in v["verdicts"]]
    return "\n".join(lines)


def _needs(v: TablePlanView) -> str:
    """The scratch space: a copy of one database says its files against the cluster's, and the WAL."""
    need, whole, wal = v["scratch_bytes"], v["restore"]["backup_size"], v["restore"]["wal"]["bytes"]
    if need is None:
        return "needs -"
    if whole is None or need == whole:
        return f"needs {human_bytes(need)}"
    return (f"needs {human_bytes(need)}: {human_bytes(need - wal)} of the cluster's {human_bytes(whole)} restored, "
            f"up to {human_bytes(wal)} of WAL")


def table_result(r: TableRestoreResult) -> str:
    lines = [r.summary()]
    if r.created_as:
        lines.append(f"  created, filled and loaded as {r.created_as}, the tables' owner (their CHECKs and index "
                     "expressions ran with the owner's rights, never opsd's)")
    elif r.not_as_owner:
        lines.append(f"  not as the owner ({r.not_as_owner}): the copies carry no owner code")
    lines += [f"  dropped: {d}" for d in r.dropped]
    lines += [f"  WARNING: {w}" for w in r.warnings]
    for c in r.comparisons:
        lines += _comparison(c)
    return "\n".join(lines)


def _comparison(c: TableComparison) -> list[str]:
    if not c.matched:
        return [f"  {c.recovered_as}: {c.recovered_rows} row(s); not compared with {c.table}: {c.why_unmatched}"]
    lines = [f"  {c.recovered_as}: {c.recovered_rows} row(s) against {c.table} ({c.live_rows} live), by "
             f"{', '.join(c.key)}: {c.missing_from_live} missing from live, {c.only_in_live} only in live, "
             f"{c.changed} changed"]
    if c.victims is not None:
        lines.append(f"  {c.victims} row(s) deleted or changed by the bad transaction, as they were: {c.victims_table}")
    wanted = c.victims if c.put_back_scope == "victims" else c.missing_from_live
    if wanted and c.put_back_sql:
        lines.append("  to put them back (opsd does not run it; the live table's triggers fire):")
        lines += [f"    note: {n}" for n in c.put_back_notes]
        lines += [f"    {line}" for line in c.put_back_sql.splitlines()]
    return lines
