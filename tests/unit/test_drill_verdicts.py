"""The drill's verdict per relation (pure): checked, skipped for a reason that is not a problem, not checked (a
gap in opsd's own tooling, never damage), corrupt; counted per database, judged, and read back from old
records."""

from __future__ import annotations

import pytest

from opsd.actions.drill import classify
from opsd.actions.drill.classify import Plan, Verdict, plan, skip_reason
from opsd.actions.drill.pool import Tally
from opsd.actions.drill.verify import Listing, Verification, coverage
from opsd.core.records.checks import CRITICAL, OK, WARNING
from opsd.core.records.drill import DatabaseCounts, DrillResult
from opsd.db.queries import RelationRow
from opsd.report.drill_console import relations


def _rel(kind: str = "r", *, name: str = "public.t", persistence: str = "p", populated: bool = True,
         am: str = "", valid: bool = True) -> RelationRow:
    return RelationRow(name, kind, "public", 1, persistence=persistence, populated=populated, am=am, valid=valid)


@pytest.mark.parametrize(("rel", "reason"), [
    (_rel("r"), None),
    (_rel("m"), None),
    (_rel("t"), None),
    (_rel("S"), None),
    (_rel("i", am="btree"), None),
    (_rel("p"), "no_storage"),  # partitioned parent: its partitions hold the rows
    (_rel("I", am="btree", valid=False), "no_storage"),  # partitioned index (valid only once all attach)
    (_rel("v"), "no_storage"),
    (_rel("c"), "no_storage"),
    (_rel("f"), "foreign_table"),
    (_rel("r", persistence="u"), "unlogged"),
    (_rel("i", persistence="u", am="hash"), "unlogged"),  # the first reason in SKIP_REASONS order
    (_rel("t", persistence="u"), "unlogged"),
    (_rel("m", populated=False), "not_populated"),
    (_rel("i", am="btree", populated=False), "not_populated"),  # an index of a matview WITH NO DATA
    (_rel("i", am="btree", valid=False), "invalid_index"),
    (_rel("i", am="hash", valid=False), "invalid_index"),
    (_rel("i", am="gin"), "access_method"),
    (_rel("i", am="brin"), "access_method"),
])
def test_skip_reasons(rel: RelationRow, reason: str | None) -> None:
    assert skip_reason(rel) == reason


def test_what_each_kind_gets() -> None:
    assert plan(_rel("r")) == Plan(amcheck=True, read=True)
    assert plan(_rel("m")) == Plan(amcheck=True, read=True)
    assert plan(_rel("S")) == Plan(amcheck=True, read=True)
    assert plan(_rel("t")) == Plan(amcheck=True, read=False)  # read through its table (detoasted)
    assert plan(_rel("i", am="btree")) == Plan(amcheck=True, read=False)
    assert plan(_rel("f")) == Plan(skip="foreign_table")


def test_corrupt_wins_over_a_gap_which_wins_over_checked() -> None:
    p = Plan(amcheck=True, read=True)
    assert classify.verdict(p, damaged=True, gap=True) is Verdict.CORRUPT
    assert classify.verdict(p, damaged=False, gap=True) is Verdict.NOT_CHECKED
    assert classify.verdict(p, damaged=False, gap=False) is Verdict.CHECKED
    assert classify.verdict(Plan(skip="unlogged"), damaged=False, gap=True) is Verdict.SKIPPED


def _verification(rels: list[tuple[str, RelationRow]], *, no_amcheck: frozenset[str] = frozenset(),
                  refused: tuple[str, ...] = ()) -> Verification:
    v = Verification(lambda _db: None)  # type: ignore[arg-type,return-value]  # never connects here
    v.listing = Listing(rels=[(db, r, plan(r)) for db, r in rels], dbs=sorted({db for db, _ in rels}),
                        refused=list(refused), no_amcheck=set(no_amcheck))
    return v


def _tally(damaged: set[tuple[str, str]] | None = None, gaps: set[tuple[str, str]] | None = None) -> Tally:
    return Tally(total=0, jobs=1, damaged=damaged or set(), gaps=gaps or set())


def test_counts_per_database_from_what_each_pass_found() -> None:
    rels = [("shop", _rel(name="public.orders")), ("shop", _rel("i", name="public.orders_pkey", am="btree")),
            ("shop", _rel("r", name="public.cache", persistence="u")), ("shop", _rel("i", name="public.g", am="gin")),
            ("shop", _rel(name="public.notes")), ("crm", _rel(name="public.people"))]
    v = _verification(rels, refused=("template0",))
    v.tallies = {"amcheck": _tally(damaged={("shop", "public.orders_pkey")}, gaps={("shop", "public.notes")}),
                 "read": _tally()}
    counts = {c.database: c for c in v.counts()}
    assert counts["shop"] == DatabaseCounts(database="shop", checked=1, corrupt=1, not_checked=1,
                                            skipped={"unlogged": 1, "access_method": 1})
    assert counts["crm"].checked == 1 and counts["crm"].relations == 1
    assert counts["template0"].refused == "no_connections" and counts["template0"].relations == 0
    assert list(counts) == ["crm", "shop", "template0"]


def test_a_pass_that_did_not_run_or_a_database_without_amcheck_leaves_gaps_not_damage() -> None:
    rels = [("ro", _rel(name="public.r")), ("ro", _rel("i", name="public.r_pkey", am="btree"))]
    v = _verification(rels, no_amcheck=frozenset({"ro"}))
    v.tallies = {"read": _tally()}
    c = v.counts()[0]
    assert (c.checked, c.not_checked, c.corrupt) == (0, 2, 0)
    v.tallies = {}
    assert v.counts()[0].not_checked == 2


def test_coverage_is_critical_for_corruption_a_warning_for_gaps_and_ok_otherwise() -> None:
    ok = DatabaseCounts(database="a", checked=10, skipped={"unlogged": 2})
    refused = DatabaseCounts(database="template0", refused="no_connections")
    got = coverage([ok, refused])
    assert got.status == OK and "12 relation(s) in 1 database(s): 10 checked, 2 skipped (unlogged 2)" in got.message
    assert "template0" in got.message and got.details["refused"] == ["template0"]
    gap = DatabaseCounts(database="b", checked=1, not_checked=3)
    assert coverage([ok, gap]).status == WARNING and "3 not checked" in coverage([ok, gap]).message
    unlisted = DatabaseCounts(database="c", error="cannot connect")
    assert coverage([ok, unlisted]).status == WARNING and "cannot connect" in coverage([ok, unlisted]).message
    bad = DatabaseCounts(database="b", checked=1, corrupt=1, not_checked=3)
    assert coverage([ok, bad]).status == CRITICAL


def test_old_drill_records_without_counts_still_load_and_render() -> None:
    old = DrillResult.load({"stanza": "main", "target_mode": "latest", "checks": []}, 1)
    assert old.databases == [] and old.total("checked") == 0 and old.skipped() == {}
    new = DrillResult(stanza="main", target_mode="latest",
                      databases=[DatabaseCounts(database="shop", checked=5, skipped={"unlogged": 1}),
                                 DatabaseCounts(database="template0", refused="no_connections")])
    back = DrillResult.load(new.as_json(), 1)
    assert back.databases == new.databases and back.total("checked") == 5 and back.skipped() == {"unlogged": 1}
    text = relations(back)
    assert "shop" in text and "unlogged 1" in text and "whole database: no_connections" in text


def test_the_report_counts_only_checked_relations_as_proven(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    from opsd.actions.report.job import make_report
    from opsd.core.records.checks import WARNING as WARN
    from opsd_sandbox import records

    ctx = fake_ctx(opsd={"timezone": "UTC"})
    nov = datetime(2026, 11, 1, tzinfo=UTC)
    old = DrillResult(stanza="main", target_mode="random", checks=[])  # recorded before the counts
    for day, details in ((1, old), (5, records.drill("main", rto=60.0, rpo=5.0, restore_seconds=40.0,
                                                     recovery_seconds=10.0, checks=[("coverage", WARN, "gap")]))):
        at = nov + timedelta(days=day)
        if day == 5:
            details.databases[0].not_checked = 3
        ctx.history.record("drill", "schedule", at, at + timedelta(minutes=2), "ok", details=details)
    ctx.now = lambda: datetime(2026, 11, 20, tzinfo=UTC)
    r = make_report(ctx, 2026, 11, with_repository=False)
    assert [d.checked for d in r.drills] == [None, 2300] and r.drills[1].not_checked == 3
    assert (r.verdict.relations_proven, r.verdict.relations_unproven) == (2300, 3)
    assert "3 relation(s) of the last drill are not proven" in r.verdict.statement


def test_metrics_carry_the_counts_per_database_and_verdict() -> None:
    from prometheus_client.core import GaugeMetricFamily

    from opsd.metrics import _relation_metrics

    g = GaugeMetricFamily("opsd_drill_relations", "", labels=["database", "verdict", "reason"])
    _relation_metrics(g, DrillResult(stanza="main", target_mode="latest", databases=[
        DatabaseCounts(database="shop", checked=7, corrupt=1, skipped={"unlogged": 2}),
        DatabaseCounts(database="template0", refused="no_connections")]))
    got = {tuple(s.labels.values()): s.value for s in g.samples}
    assert got[("shop", "checked", "")] == 7 and got[("shop", "corrupt", "")] == 1
    assert got[("shop", "not_checked", "")] == 0 and got[("shop", "skipped", "unlogged")] == 2
    assert got[("template0", "skipped", "no_connections")] == 1
    _relation_metrics(g, None)  # no drill yet: nothing added, nothing raised
