"""Console writer for ``opsd indexes``: a summary, then each finding with its size, the write cost it adds and the
statements that fix it (opsd never runs them)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from opsd.core.queries.indexes import span_text
from opsd.core.records.indexes import IndexReport, MissingIndex, UnusedVerdict
from opsd.core.units import human_bytes
from opsd.report.console import table, when


def _writes(n: int | None) -> str:
    return "-" if n is None else f"{n:,} rows"


def _statements(stmts: list[str], indent: str = "    ") -> list[str]:
    return [f"{indent}{s};" for s in stmts]


def summary(r: IndexReport, tz: ZoneInfo) -> list[str]:
    t = r.totals
    unused = (f"{t.unused} unused ({human_bytes(t.unused_bytes)})" if r.unused_verdict.decided
              else "unused: no verdict")
    return [f"indexes: {t.indexes} in {len(r.databases)} database(s), {human_bytes(t.index_bytes)}; window "
            f"{when(r.since, tz)} .. {when(r.until, tz)}",
            f"{t.invalid} invalid, {unused}, {t.redundant} duplicate or covered "
            f"({human_bytes(t.redundant_bytes)}), {t.missing} table(s) missing an index, "
            f"{t.not_valid} constraint(s) not validated"]


def _verdict(v: UnusedVerdict) -> list[str]:
    lines = [f"unused indexes: {v.reason}"]
    for n in v.nodes:
        state = (f"{span_text(n.span_seconds)} ({n.first_at:%Y-%m-%d %H:%M} .. {n.last_at:%Y-%m-%d %H:%M})"
                 if n.read and n.first_at and n.last_at else "unread")
        lines.append(f"  node {n.node}: {state}")
    lines += [f"  undecided: {u}" for u in v.undecided[:20]]
    lines += [f"  kept: {k}" for k in v.kept]
    if len(v.undecided) > 20:
        lines.append(f"  ... and {len(v.undecided) - 20} more undecided")
    return lines


def _missing(m: MissingIndex) -> list[str]:
    lines = [f"{m.dbname}: {m.schema}.{m.table_name}: {m.seq_scan:,} sequential scans of {m.rows_per_scan:,} rows "
             f"each on average ({m.idx_scan:,} index scans), table {human_bytes(m.size_bytes)}"]
    for s in m.statements:
        calls = "" if s.calls is None else f", {s.calls:,} calls"
        lines.append(f"    statement {s.queryid} (role {s.rolname}{calls}): {' '.join(s.text.split())[:160]}")
    if m.note:
        lines.append(f"    {m.note}")
    for a in m.advice:
        size = f", about {human_bytes(a.size_bytes)}" if a.size_bytes is not None else ""
        lines.append(f"  {a.verdict.upper()}: btree ({', '.join(a.columns)}){size}: {a.reason}")
        lines += _statements(a.statements)
    return lines


def _invalid(r: IndexReport) -> list[str]:
    out = ["", "INVALID indexes (every write maintains them, no query uses them):"]
    for i in r.invalid:
        out.append(f"  {i.dbname}: {i.schema}.{i.name} on {i.table_name}, {human_bytes(i.size_bytes)}")
        out += [*_statements(i.statements), f"    -- then, once the cause is fixed: {i.recreate};"]
    return out


def _unused(r: IndexReport) -> list[str]:
    out = ["", *_verdict(r.unused_verdict)]
    if r.unused:
        out.append(table(["database", "index", "table", "size", "writes in window", "seen"], [
            (u.dbname, f"{u.schema}.{u.name}", u.table_name, human_bytes(u.size_bytes), _writes(u.write_rows),
             span_text(u.seen_seconds)) for u in r.unused]))
        out += [f"  {s};" for u in r.unused for s in u.statements]
    return out


def _redundant(r: IndexReport) -> list[str]:
    out = ["", "duplicate and covered indexes:"]
    for d in r.redundant:
        out.append(f"  {d.dbname}: {d.schema}.{d.name} ({human_bytes(d.size_bytes)}, writes "
                   f"{_writes(d.write_rows)}) is {d.kind} by {d.kept}")
        out += [f"    {d.definition}", f"    {d.kept_definition}", *_statements(d.statements)]
    return out


def _not_valid(r: IndexReport) -> list[str]:
    out = ["", "constraints NOT VALID (existing rows never checked):"]
    for c in r.not_valid:
        out.append(f"  {c.dbname}: {c.schema}.{c.table_name} {c.name}: {c.definition}")
        out += _statements(c.statements)
    return out


def render(r: IndexReport, tz: ZoneInfo) -> str:
    out = summary(r, tz) + [f"problem: {p}" for p in r.problems]
    out += (_invalid(r) if r.invalid else []) + _unused(r) + (_redundant(r) if r.redundant else [])
    if r.missing:
        out += ["", "tables read mostly by sequential scans:"]
        out += ["  " + line for m in r.missing for line in _missing(m)]
    out += _not_valid(r) if r.not_valid else []
    if not (r.invalid or r.unused or r.redundant or r.missing or r.not_valid):
        out += ["", "nothing to do"]
    return "\n".join(out)
