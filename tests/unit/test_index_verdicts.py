"""The pure index verdicts (core/queries/indexes.py, core/queries/missing.py): duplicate and covered indexes, never
one that enforces something; unused only on every node and once every node's statistics cover the minimum span;
invalid ones; missing-index candidates and the statements that create them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from opsd.core.queries import indexes as v
from opsd.core.queries import missing as m
from opsd.core.records.indexes import IndexInfo, Partition, Qual
from opsd.core.records.queries import IndexUse, NodeCoverage, TableActivity

T0 = datetime(2026, 11, 1, tzinfo=UTC)
WEEK = timedelta(days=7)


def ix(name: str, keys: list[str], **kw: Any) -> IndexInfo:
    n = len(keys)
    base: dict[str, Any] = dict(
        dbname="shop", schema="public", table_name="orders", name=name, table_ref="public.orders",
        index_ref=f"public.{name}" if name.islower() else f'public."{name}"', table_kind="r", kind="i",
        method="btree", definition=f"CREATE INDEX {name} ON public.orders USING btree ({', '.join(keys)})",
        keys=keys, included=[], opclasses=[1978] * n, collations=[0] * n, options=[0] * n, predicate=None,
        is_unique=False, is_primary=False, is_exclusion=False, constraints=[], valid=True, ready=True,
        building=False, attached=False, parent=None, root_schema="public", root_table="orders", size_bytes=8192)
    base.update(kw)
    return IndexInfo(**base)


def names(found: list[Any]) -> dict[str, str]:
    return {r.name: r.kept for r in found}


# ------------------------------------------------------------------------------------------ duplicate, covered
def test_exact_duplicates_one_dropped_concurrently_against_the_other() -> None:
    found = v.redundant([ix("b_idx", ["a"]), ix("a_idx", ["a"])], {("shop", "public", "orders"): 500})
    assert names(found) == {"b_idx": "a_idx"}
    assert found[0].kind == "duplicate" and found[0].write_rows == 500
    assert found[0].statements == ["DROP INDEX CONCURRENTLY public.b_idx"]


def test_a_prefix_is_covered_but_not_across_predicate_method_opclass_order_or_include() -> None:
    assert names(v.redundant([ix("one", ["a"]), ix("two", ["a", "b"])], {})) == {"one": "two"}
    assert v.redundant([ix("one", ["a"]), ix("two", ["a", "b"], predicate="b > 0")], {}) == []
    assert v.redundant([ix("one", ["a"], method="hash"), ix("two", ["a", "b"])], {}) == []
    assert v.redundant([ix("one", ["a"], method="gin"), ix("two", ["a", "b"], method="gin")], {}) == []
    assert v.redundant([ix("one", ["a"], opclasses=[10043]), ix("two", ["a", "b"])], {}) == []
    assert v.redundant([ix("one", ["a"], options=[3]), ix("two", ["a", "b"])], {}) == []
    assert v.redundant([ix("one", ["a"], collations=[950]), ix("two", ["a", "b"])], {}) == []
    assert v.redundant([ix("one", ["a"], included=["x"]), ix("two", ["a", "b"])], {}) == []
    assert names(v.redundant([ix("one", ["a"], included=["b"]), ix("two", ["a", "b"])], {})) == {"one": "two"}
    # an expression is a key like any other: lower(email) is not email
    assert v.redundant([ix("one", ["lower(email)"]), ix("two", ["email", "b"])], {}) == []
    # another table's index covers nothing here
    assert v.redundant([ix("one", ["a"]), ix("two", ["a", "b"], table_name="lines")], {}) == []


def test_never_drop_what_enforces_unless_the_kept_one_enforces_the_same() -> None:
    # a unique index on (a) is never "covered" by a plain (a, b): it enforces something (a, b) does not
    assert v.redundant([ix("u", ["a"], is_unique=True), ix("two", ["a", "b"])], {}) == []
    # a plain index duplicating a unique one: the plain one goes, whatever the names
    assert names(v.redundant([ix("a_plain", ["a"]), ix("z_unique", ["a"], is_unique=True)], {})) == \
        {"a_plain": "z_unique"}
    # a unique index duplicating the primary key: the unique one may go (the kept one enforces the same)
    pk = ix("orders_pkey", ["a"], is_unique=True, is_primary=True, constraints=["orders_pkey (p)"])
    assert names(v.redundant([pk, ix("a_uniq", ["a"], is_unique=True)], {})) == {"a_uniq": "orders_pkey"}
    # one that a foreign key references (conindid) or an exclusion constraint uses: never
    fk_ref = ix("a_ref", ["a"], is_unique=True, constraints=["lines_order_fk (f)"])
    assert v.redundant([pk, fk_ref], {}) == []  # both enforce: neither goes
    assert v.redundant([ix("ident", ["a"], is_unique=True, replica_identity=True),
                        ix("z_u", ["a"], is_unique=True)], {})[0].name == "z_u"
    assert v.redundant([ix("ex", ["a"], is_exclusion=True, method="gist"),
                        ix("plain", ["a"], method="gist")], {})[0].name == "plain"


def test_a_chain_drops_both_against_the_widest_and_never_both_of_a_pair() -> None:
    found = v.redundant([ix("i1", ["a"]), ix("i2", ["a", "b"]), ix("i3", ["a", "b", "c"])], {})
    assert names(found) == {"i1": "i3", "i2": "i3"}
    found = v.redundant([ix("x", ["a"]), ix("y", ["a"]), ix("z", ["a", "b"])], {})
    assert names(found) == {"x": "z", "y": "z"} and {f.kind for f in found} == {"covered"}


def test_invalid_and_attached_partitions_are_not_compared_and_partitioned_drop_is_plain() -> None:
    assert v.redundant([ix("bad", ["a"], valid=False), ix("good", ["a", "b"])], {}) == []
    assert v.redundant([ix("leaf", ["a"], attached=True, parent="p"), ix("good", ["a", "b"])], {}) == []
    found = v.redundant([ix("p1", ["a"], kind="I"), ix("p2", ["a", "b"], kind="I")], {})
    assert found[0].statements == ["DROP INDEX public.p1"]


def test_quoted_names_come_through_as_the_server_quoted_them() -> None:
    found = v.redundant([ix("skuIdx", ['"skuId"']), ix("skuWide", ['"skuId"', "qty"])], {})
    assert found[0].statements == ['DROP INDEX CONCURRENTLY public."skuIdx"']


# ------------------------------------------------------------------------------------------ invalid
def test_invalid_indexes_but_not_one_being_built() -> None:
    found = v.invalid([ix("bad", ["a"], valid=False, is_unique=True,
                          definition="CREATE UNIQUE INDEX bad ON public.orders USING btree (a)"),
                       ix("building", ["a"], valid=False, building=True), ix("fine", ["a"])])
    assert [f.name for f in found] == ["bad"]
    assert found[0].statements == ["DROP INDEX CONCURRENTLY public.bad"]
    assert found[0].recreate == "CREATE UNIQUE INDEX CONCURRENTLY bad ON public.orders USING btree (a)"


# ------------------------------------------------------------------------------------------ unused
def cov(node: str, span: timedelta, snapshots: int = 10) -> NodeCoverage:
    return NodeCoverage(node=node, first_at=T0, last_at=T0 + span, snapshots=snapshots)


def use(node: str, name: str, scans: int, span: timedelta = WEEK, schema: str = "public") -> IndexUse:
    return IndexUse(node=node, dbname="shop", schemaname=schema, relname="orders", indexname=name, scans=scans,
                    first_at=T0, last_at=T0 + span, size_bytes=8192)


def test_coverage_short_on_one_node_is_no_verdict_and_says_which() -> None:
    verdict = v.coverage_verdict(["a", "b"], [cov("a", WEEK), cov("b", timedelta(days=2, hours=3))], WEEK)
    assert not verdict.decided
    assert verdict.reason == "no verdict: statistics cover 2 d 3 h of 7 d (b short: 2 d 3 h)"
    assert v.unused([ix("x", ["a"])], [use("a", "x", 0), use("b", "x", 0)], verdict, {}) == ([], [], [])


def test_a_node_unread_is_no_verdict() -> None:
    verdict = v.coverage_verdict(["a", "b"], [cov("a", WEEK)], WEEK)
    assert not verdict.decided and "b unread" in verdict.reason
    one = v.coverage_verdict(["a", "b"], [cov("a", WEEK), cov("b", timedelta(0), snapshots=1)], WEEK)
    assert not one.decided and "b unread" in one.reason  # one snapshot: no delta, nothing counted
    assert not v.coverage_verdict([], [], WEEK).decided


def test_a_node_last_read_before_its_last_snapshot_covers_only_until_that_read() -> None:
    # b's last snapshots could not read it (down): its scans since then are not counted yet
    coverage = v.last_read([cov("a", WEEK), cov("b", WEEK)],
                           [use("a", "x", 0), use("b", "x", 0, timedelta(days=3)), use("b", "y", 0, timedelta(days=2))])
    verdict = v.coverage_verdict(["a", "b"], coverage, WEEK)
    assert not verdict.decided and "b short: 3 d" in verdict.reason


def test_unused_only_when_no_node_scanned_it_and_never_what_enforces() -> None:
    verdict = v.coverage_verdict(["a", "b"], [cov("a", WEEK), cov("b", WEEK)], WEEK)
    assert verdict.decided
    indexes = [ix("dead", ["a"], size_bytes=1 << 20), ix("standby_only", ["b"]),
               ix("orders_pkey", ["id"], is_primary=True, is_unique=True, constraints=["orders_pkey (p)"]),
               ix("uniq", ["c"], is_unique=True), ix("fk_target", ["d"], constraints=["x_fk (f)"]),
               ix("broken", ["e"], valid=False), ix("ident", ["f"], is_unique=True, replica_identity=True)]
    uses = [use(n, i.name, 0) for n in ("a", "b") for i in indexes] + [use("b", "standby_only", 12)]
    found, undecided, _ = v.unused(indexes, uses, verdict, {("shop", "public", "orders"): 70})
    assert [(u.name, u.size_bytes, u.write_rows) for u in found] == [("dead", 1 << 20, 70)]
    assert found[0].statements == ["DROP INDEX CONCURRENTLY public.dead"] and undecided == []


def test_an_index_new_or_unseen_on_a_node_is_undecided() -> None:
    verdict = v.coverage_verdict(["a", "b"], [cov("a", WEEK), cov("b", WEEK)], WEEK)
    found, undecided, _ = v.unused([ix("new", ["a"]), ix("half", ["b"])],
                                [use("a", "new", 0, timedelta(hours=5)), use("b", "new", 0),
                                 use("a", "half", 0)], verdict, {})
    assert found == []
    assert any("public.new: seen for 5 h only" in u for u in undecided)
    assert any("public.half: no statistics from b" in u for u in undecided)


def test_a_partitioned_index_counts_its_partitions_scans() -> None:
    verdict = v.coverage_verdict(["a"], [cov("a", WEEK)], WEEK)
    parent = ix("orders_region_idx", ["region"], kind="I")
    leaves = [ix(f"orders_{y}_region_idx", ["region"], attached=True, parent="orders_region_idx",
                 table_name=f"orders_{y}") for y in (2025, 2026)]
    used = [use("a", "orders_2025_region_idx", 0), use("a", "orders_2026_region_idx", 3)]
    assert v.unused([parent, *leaves], used, verdict, {})[0] == []
    idle = [use("a", "orders_2025_region_idx", 0), use("a", "orders_2026_region_idx", 0)]
    found, _, _ = v.unused([parent, *leaves], idle, verdict, {})
    assert [u.name for u in found] == ["orders_region_idx"] and found[0].statements == \
        ["DROP INDEX public.orders_region_idx"]


def test_an_index_leading_with_a_foreign_keys_columns_is_kept_with_why() -> None:
    verdict = v.coverage_verdict(["a"], [cov("a", WEEK)], WEEK)
    indexes = [ix("by_customer", ["customer_id", "created_at"], foreign_keys=["orders_customer_fk"]),
               ix("plain", ["note"])]
    found, undecided, kept = v.unused(indexes, [use("a", i.name, 0) for i in indexes], verdict, {})
    assert [u.name for u in found] == ["plain"] and undecided == []
    assert kept == ["shop: public.by_customer: never unused: its leading columns are foreign key orders_customer_fk's "
                    "(a DELETE or UPDATE of a referenced row finds the referencing rows by it; without it, each is a "
                    "sequential scan)"]
    scanned = v.unused(indexes[:1], [use("a", "by_customer", 4)], verdict, {})
    assert scanned == ([], [], [])  # scanned: nothing to say


def test_opsds_own_schema_is_never_suggested() -> None:
    verdict = v.coverage_verdict(["a"], [cov("a", WEEK)], WEEK)
    own = [ix("hb_at", ["at"], schema="opsd"), ix("hb_at2", ["at"], schema="opsd")]
    assert v.unused(own, [use("a", i.name, 0, schema="opsd") for i in own], verdict, {}) == ([], [], [])
    assert v.redundant(own, {}) == []


def test_standbys_streaming_that_opsd_does_not_read_mean_no_verdict() -> None:
    assert v.unknown_standbys(None, 0) is None  # a standby: not checked
    assert v.unknown_standbys(1, 1) is None and v.unknown_standbys(0, 2) is None
    assert v.unknown_standbys(3, 1) == ("no verdict: 2 standby(s) stream from this primary that opsd does not read: "
                                        "add them to [queries] standbys (or [patroni] url)")


def test_span_text() -> None:
    assert [v.span_text(timedelta(seconds=s)) for s in (40, 720, 5 * 3600 + 600, 7 * 86400, 2 * 86400 + 3 * 3600)] \
        == ["40 s", "12 min", "5 h 10 min", "7 d", "2 d 3 h"]


# ------------------------------------------------------------------------------------------ missing
def qual(col: str, strategy: int | None, queryid: int = 1, filtered: int = 100, **kw: Any) -> Qual:
    base: dict[str, Any] = dict(dbname="shop", queryid=queryid, rolname="app", schema="public",
                                table_name="stockMovements", table_ref='public."stockMovements"',
                                schema_ref="public", column_name=col, column_ref=f'"{col}"' if col != col.lower()
                                else col, strategy=strategy, executions=10, filtered=filtered)
    base.update(kw)
    return Qual(**base)


def test_candidates_equality_first_then_one_range_merged_across_statements() -> None:
    found = m.candidates([qual("at", 4, filtered=900), qual("skuId", 3), qual("qty", 2, filtered=5),
                          qual("skuId", 3, queryid=2), qual("at", 4, queryid=2), qual("note", None, queryid=3),
                          qual("warehouse", 3, queryid=4, executions=0)])
    assert [(c.columns, c.statements) for c in found] == [(('"skuId"', "at"), ((1, "app"), (2, "app")))]
    assert found[0].definition() == 'CREATE INDEX ON public."stockMovements" USING btree ("skuId", at)'
    assert m.create_statements(found[0], [], set()) == \
        ['CREATE INDEX CONCURRENTLY ON public."stockMovements" USING btree ("skuId", at)']


def test_a_partitioned_table_gets_on_only_then_each_partition_concurrently_then_attach() -> None:
    c = m.candidates([qual("region", 3, table_name="orders", table_ref="public.orders")])[0]
    parts = [Partition(dbname="shop", schema="public", table_name=f"orders_{y}", table_ref=f"public.orders_{y}",
                       schema_ref="public", partitioned=False, parent_ref="public.orders", root_schema="public",
                       root_table="orders") for y in (2025, 2026)]
    assert m.create_statements(c, parts, {"orders_region_idx"}) == [
        'CREATE INDEX "orders_region_idx1" ON ONLY public.orders USING btree (region)',
        'CREATE INDEX CONCURRENTLY "orders_2025_region_idx" ON public.orders_2025 USING btree (region)',
        'ALTER INDEX public."orders_region_idx1" ATTACH PARTITION public."orders_2025_region_idx"',
        'CREATE INDEX CONCURRENTLY "orders_2026_region_idx" ON public.orders_2026 USING btree (region)',
        'ALTER INDEX public."orders_region_idx1" ATTACH PARTITION public."orders_2026_region_idx"']


def test_seq_heavy_sums_partitions_and_needs_many_rows_per_scan() -> None:
    def act(rel: str, seq: int, rows: int, idx: int) -> TableActivity:
        return TableActivity(dbname="shop", schemaname="public", relname=rel, seq_scan=seq, seq_tup_read=rows,
                             idx_scan=idx, n_tup_ins=1, n_tup_upd=2, n_tup_del=3, size_bytes=100)

    parts = [Partition(dbname="shop", schema="public", table_name="orders_2025", table_ref="public.orders_2025",
                       schema_ref="public", partitioned=False, parent_ref="public.orders", root_schema="public",
                       root_table="orders")]
    acts = [act("orders_2025", 10, 300_000, 1), act("orders", 0, 0, 0), act("small", 100, 1000, 0),
            act("hot", 10, 500_000, 50)]
    heavy = m.seq_heavy(m.loads(acts, parts), 10_000)
    assert [(t.table_name, t.rows_per_scan) for t in heavy] == [("orders", 30_000)]
    assert m.writes(acts, parts)[("shop", "public", "orders")] == 6


def test_plan_reading() -> None:
    plan = [{"Plan": {"Total Cost": 215.7, "Plans": [{"Node Type": "Bitmap Heap Scan", "Plans": [
        {"Node Type": "Bitmap Index Scan", "Index Name": "<13556>btree_stockMovements_skuId"}]}]}}]
    assert m.plan_cost(plan) == 215.7
    assert m.plan_indexes(plan) == {"<13556>btree_stockMovements_skuId"}


def test_advice_without_hypopg_or_qualstats_is_a_guess_that_says_why() -> None:
    from opsd.actions.queries.advise import missing_indexes
    from opsd.actions.queries.catalog import Catalog
    from opsd.core.records.indexes import StatementRef

    heavy = [m.TableLoad("shop", "public", "stockMovements", 12, 1_440_000, 1, 1 << 20)]
    texts = {("shop", 1, "app"): StatementRef(queryid=1, rolname="app", calls=12,
                                              text='SELECT count(*) FROM "stockMovements" WHERE "skuId" = $1'),
             ("shop", 2, "app"): StatementRef(queryid=2, rolname="app", calls=3, text="SELECT 1 FROM stockmovements")}
    with_quals = Catalog(databases=["shop"], quals=[qual("skuId", 3)], extensions={"shop": {"pg_qualstats": "public"}})
    found = missing_indexes(None, with_quals, heavy, texts)[0]
    assert found.rows_per_scan == 120_000 and [s.queryid for s in found.statements] == [1]
    assert [(a.verdict, a.reason, a.statements) for a in found.advice] == [
        ("guess", "not asked (--no-advice)",
         ['CREATE INDEX CONCURRENTLY ON public."stockMovements" USING btree ("skuId")'])]
    no_hypopg = missing_indexes(lambda db: None, with_quals, heavy, texts)[0]  # type: ignore[arg-type,return-value]
    assert no_hypopg.advice[0].reason == "hypopg is not installed in shop"
    # without pg_qualstats: no column is known; the statements are those naming the table (quoted: the same case)
    bare = missing_indexes(None, Catalog(databases=["shop"], extensions={"shop": {}}), heavy, texts)[0]
    assert bare.advice == [] and "pg_qualstats is not installed in shop" in bare.note
    assert [s.queryid for s in bare.statements] == [1]  # stockmovements (unquoted) is another table
    lower = m.TableLoad("shop", "public", "stockmovements", 12, 1_440_000, 1, 1 << 20)
    assert [s.queryid for s in missing_indexes(None, Catalog(databases=["shop"], extensions={"shop": {}}), [lower],
                                               texts)[0].statements] == [2]


def test_a_statement_calling_a_function_outside_pg_catalog_is_named() -> None:
    fns = {"audit_touch", "Tally", "hypopg_create_index"}
    assert m.calls_outside("SELECT count(*) FROM t WHERE a = $1 AND lower(b) = $2", fns) is None
    assert m.calls_outside("SELECT * FROM t WHERE public.Audit_Touch (a) AND b IN ($1, $2)", fns) == "audit_touch"
    assert m.calls_outside('SELECT s."Tally"(a) FROM t', fns) == "Tally"
    assert m.calls_outside("SELECT tally(a) FROM t", fns) is None  # unquoted folds: tally is not "Tally"
    assert m.calls_outside("SELECT audit_touch FROM t", fns) is None  # a column of that name: no call


def test_advice_refused_is_a_guess_with_why_and_still_the_statement() -> None:
    from opsd.actions.queries.advise import missing_indexes
    from opsd.actions.queries.catalog import Catalog
    from opsd.actions.queries.indexes import NO_ADVICE_USER
    from opsd.core.records.indexes import StatementRef

    heavy = [m.TableLoad("shop", "public", "stockMovements", 12, 1_440_000, 1, 1 << 20)]
    texts = {("shop", 1, "app"): StatementRef(queryid=1, rolname="app", calls=12,
                                              text='SELECT count(*) FROM "stockMovements" WHERE "skuId" = $1')}
    cat = Catalog(databases=["shop"], quals=[qual("skuId", 3)],
                  extensions={"shop": {"pg_qualstats": "public", "hypopg": "public"}})

    def never(dbname: str) -> Any:
        raise AssertionError("connected though advice was refused")

    found = missing_indexes(never, cat, heavy, texts, refused=NO_ADVICE_USER)[0]
    assert [(a.verdict, a.reason, a.statements) for a in found.advice] == [
        ("guess", NO_ADVICE_USER, ['CREATE INDEX CONCURRENTLY ON public."stockMovements" USING btree ("skuId")'])]
    assert "advice_user is not set" in NO_ADVICE_USER
