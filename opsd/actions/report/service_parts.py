"""The parts of the "Service levels" section built from what was gathered (pure): recovery tests and rehearsals
from the report's own rows, integrity and storage from the index report (or why it is missing), and the answer to
each success metric of the platform."""

from __future__ import annotations

from datetime import datetime

from opsd.actions.report.rows import MonthReport
from opsd.core.records.indexes import IndexReport
from opsd.core.records.service import (
    MEASURED,
    MET,
    MISSED,
    NO_DATA,
    NOT_PROVEN,
    AmcheckRun,
    Answer,
    IndexProblem,
    Integrity,
    ObjectiveMonth,
    RecoveryTests,
    Rehearsals,
    ServiceLevels,
    Storage,
    TableGrowth,
)
from opsd.core.units import format_duration, human_bytes
from opsd.settings import Settings

LARGEST = 10  # tables shown in Storage


def recovery(r: MonthReport) -> RecoveryTests:
    v = r.verdict
    return RecoveryTests(drills_run=v.drills_run, drills_passed=v.drills_passed, drills_failed=v.drills_failed,
                         recoverable_all_month=v.recoverable_all_month, longest_unproven=v.longest_unproven,
                         statement=v.statement)


def rehearsals(r: MonthReport) -> Rehearsals:
    verdicts = [x["verdict"] for x in r.rehearsals]
    return Rehearsals(rehearsed=len(verdicts), passed=verdicts.count("PASSED"), hazards=verdicts.count("HAZARDS"),
                      failed=verdicts.count("FAILED"))


def _amcheck(r: MonthReport) -> list[AmcheckRun]:
    return [AmcheckRun(drill_id=d.id, started_at=d.started_at, status=d.checks.get("amcheck", "not run"),
                       corrupt=d.corrupt, not_checked=d.not_checked) for d in r.drills]


def integrity(ix: IndexReport | str, r: MonthReport, end: datetime) -> Integrity:
    amcheck = _amcheck(r)
    missing = [] if amcheck else ["no drill ran amcheck this month: the data's integrity is not proven"]
    if isinstance(ix, str):
        return Integrity(read_at=None, amcheck=amcheck, missing=[
            *missing, f"invalid indexes and constraints not validated: the catalogs could not be read when the "
                      f"report was made ({ix})"])
    invalid = [IndexProblem(dbname=i.dbname, schema_name=i.schema, table_name=i.table_name, name=i.name,
                            kind="invalid index", size_bytes=i.size_bytes, statements=[*i.statements, i.recreate])
               for i in ix.invalid]
    not_valid = [IndexProblem(dbname=c.dbname, schema_name=c.schema, table_name=c.table_name, name=c.name,
                              kind=f"NOT VALID {c.kind}", statements=c.statements) for c in ix.not_valid]
    missing += [f"catalog: {p}" for p in ix.problems]
    if ix.generated_at >= end:
        missing.append(f"invalid indexes and constraints as read when the report was made "
                       f"({ix.generated_at:%Y-%m-%d %H:%M}), after the month's end: the month's own state is not "
                       "kept")
    return Integrity(read_at=ix.generated_at, invalid_indexes=invalid, not_valid=not_valid, amcheck=amcheck,
                     missing=missing)


def storage(ix: IndexReport | str, tables: list[TableGrowth], missing: list[str]) -> Storage:
    last_day = max((t.last_day for t in tables), default=None)
    present = [t for t in tables if t.last_day == last_day]  # a table dropped before it is not storage now
    largest = sorted(present, key=lambda t: -t.size_last)[:LARGEST]
    total = sum(t.size_last for t in present) if present else None
    if isinstance(ix, str):
        return Storage(tables=largest, tables_bytes=total, missing=[
            *missing, f"bytes in unused and redundant indexes: the catalogs could not be read ({ix})"])
    v = ix.unused_verdict
    t = ix.totals
    return Storage(tables=largest, tables_bytes=total, unused_indexes=t.unused if v.decided else None,
                   unused_bytes=t.unused_bytes if v.decided else None, unused_decided=v.decided,
                   unused_why=v.reason, redundant_indexes=t.redundant, redundant_bytes=t.redundant_bytes,
                   missing=[*missing, *([] if v.decided else [f"unused indexes: {v.reason}"])])


def _pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def threshold(secs: float) -> str:
    """100 ms, 5 s, 1.5 s: an objective's threshold as the platform states it."""
    return f"{secs * 1000:.0f} ms" if secs < 1 else f"{secs:g} s"


def _objective(o: ObjectiveMonth) -> Answer:
    who = "".join(f" of {k} {v}" for k, v in (("database", o.database), ("role", o.role)) if v)
    metric = f"{_pct(o.target, 0)} of statements{who} complete in < {threshold(o.threshold_seconds)} ({o.name})"
    if o.verdict == NO_DATA:
        measured = "no statement counted"
    else:
        measured = (f"{_pct(o.share_under, 2)} under the threshold over the month ({o.calls:,} statements, "
                    f"{o.over:,} over); days met {o.days_met}, missed {o.days_missed}, unknown {o.days_unknown}")
    return Answer(key=f"objective:{o.name}", metric=metric, measured=measured,
                  target=f"{_pct(o.target, 0)} each day", verdict=o.verdict, missing=o.missing)


def _availability(s: Settings, lv: ServiceLevels) -> Answer:
    a = lv.availability
    target = _pct(s.queries.availability_target, 1)
    if a is None or a.verdict == NO_DATA:
        return Answer(key="availability", metric=f"{target} availability", measured="not measured", target=target,
                      verdict=NO_DATA, missing=lv.availability_missing)
    measured = (f"{_pct(a.measured_share, 3)} up of the time measured, at least {_pct(a.lower_bound, 3)} of the "
                f"month; down {format_duration(a.down_seconds)} in {len(a.outages)} outage(s), unknown "
                f"{format_duration(a.unknown_seconds)}")
    return Answer(key="availability", metric=f"{target} availability", measured=measured, target=target,
                  verdict=a.verdict, missing=lv.availability_missing)


def _recovery(s: Settings, lv: ServiceLevels, r: MonthReport) -> Answer:
    x = lv.recovery
    verdict = NO_DATA if not r.verdict.has_data else MET if x.recoverable_all_month else (
        NOT_PROVEN if x.drills_failed == 0 else MISSED)
    unproven = (f"; unproven for {format_duration(x.longest_unproven)}" if x.longest_unproven else "")
    return Answer(key="recovery", metric="recovery tested: backups proven restorable by drills",
                  measured=f"{x.drills_run} drill(s), {x.drills_passed} passed, {x.drills_failed} failed{unproven}",
                  target=f"a passing drill younger than {format_duration(s.drill.max_age)} at every moment",
                  verdict=verdict, missing=[] if r.verdict.has_data else [r.verdict.statement])


def _migrations(lv: ServiceLevels) -> Answer:
    x = lv.rehearsals
    measured = (f"{x.rehearsed} rehearsed: {x.passed} passed, {x.hazards} with hazards, {x.failed} failed"
                if x.rehearsed else "no migration rehearsed this month (opsd cannot see migrations run unrehearsed)")
    return Answer(key="migrations", metric="migrations rehearsed on a restored copy", measured=measured,
                  target="every migration rehearsed", verdict=MEASURED)


def _integrity(lv: ServiceLevels) -> Answer:
    i = lv.integrity
    corrupt = sum(a.corrupt or 0 for a in i.amcheck)
    failed = sum(1 for a in i.amcheck if a.status == "critical")
    read = i.read_at is not None
    measured = (f"amcheck in {len(i.amcheck)} drill(s): {failed} found corruption"
                + (f" ({corrupt} relation(s))" if corrupt else "") + "; "
                + (f"{len(i.invalid_indexes)} invalid index(es), {len(i.not_valid)} constraint(s) not validated"
                   if read else "catalogs not read"))
    if failed or i.invalid_indexes:
        verdict = MISSED
    elif i.missing or i.not_valid:
        verdict = NOT_PROVEN
    else:
        verdict = MET
    return Answer(key="integrity", metric="integrity: no corruption, no invalid index, every constraint validated",
                  measured=measured, target="none of each", verdict=verdict,
                  missing=i.missing + ([f"{len(i.not_valid)} constraint(s) NOT VALID: rows older than the "
                                        "constraint were never checked"] if i.not_valid else []))


def _storage(lv: ServiceLevels) -> Answer:
    st = lv.storage
    grown = sum(t.growth_bytes for t in st.tables)
    parts = [f"largest {len(st.tables)} table(s) {human_bytes(sum(t.size_last for t in st.tables))}, grew "
             f"{human_bytes(grown)}" if st.tables else "table sizes not recorded"]
    parts.append(f"{human_bytes(st.unused_bytes)} in {st.unused_indexes} unused index(es)"
                 if st.unused_bytes is not None else "unused indexes not decided")
    if st.redundant_bytes is not None:
        parts.append(f"{human_bytes(st.redundant_bytes)} in {st.redundant_indexes} duplicate or covered index(es)")
    verdict = NO_DATA if not st.tables and st.unused_bytes is None else MEASURED
    return Answer(key="storage", metric="optimal storage usage: growth, bytes in indexes that give nothing",
                  measured="; ".join(parts), target="-", verdict=verdict, missing=st.missing)


def answers(s: Settings, lv: ServiceLevels, r: MonthReport) -> list[Answer]:
    return [*map(_objective, lv.objectives), _availability(s, lv), _recovery(s, lv, r), _migrations(lv),
            _integrity(lv), _storage(lv)]


def action_items(lv: ServiceLevels) -> list[str]:
    """What the section asks of the DBA lead: each missed metric, one line."""
    out = []
    for o in lv.objectives:
        missed = [d.day for d in o.days if d.verdict == MISSED]
        if missed:
            out.append(f"Query objective {o.name} ({_pct(o.target, 0)} under {threshold(o.threshold_seconds)}) missed "
                       f"on {len(missed)} day(s): {', '.join(missed[:5])}{' ...' if len(missed) > 5 else ''}; the "
                       f"statements behind it: opsd queries --month {missed[0][:7]} --objective {o.name}.")
    av = lv.availability
    if av is not None and av.verdict == MISSED:
        out.append(f"Availability {_pct(av.measured_share, 3)} is under the target {_pct(av.target, 1)}: "
                   f"{len(av.outages)} outage(s), see Service levels.")
    out += [f"Invalid index {p.schema_name}.{p.name} in {p.dbname} (a failed CREATE INDEX CONCURRENTLY): writes "
            f"maintain it, no query uses it; fix what failed it, then: {' then '.join(p.statements)}"
            for p in lv.integrity.invalid_indexes]
    return out
