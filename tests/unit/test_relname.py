"""--table names (pure): the SQL form read as PostgreSQL reads it, the plain form resolved ignoring case, and the
one-line refusals for names that match nothing, several relations, or a relation that is not a table."""

from __future__ import annotations

import pytest

from opsd.core.relname import FIND, RESTORE, Candidate, RelName, matches, not_found, parse, pick, quote, sql_name
from opsd.errors import ExitCode, RefusedError, UsageError


@pytest.mark.parametrize(("text", "want"), [
    ('"Inventory"."StockMovements"', RelName("Inventory", "StockMovements")),
    ("Inventory.StockMovements", RelName("Inventory", "StockMovements", exact=False)),
    ('Inventory."StockMovements"', RelName("inventory", "StockMovements")),  # unquoted parts fold
    ('"Inventory".StockMovements', RelName("Inventory", "stockmovements")),
    ('  "a b" . "c.d"  ', RelName("a b", "c.d")),  # white space around parts; dots inside quotes
    ('"say ""hi""".t', RelName('say "hi"', "t")),  # "" is one double quote
    ('ÄB."Ü"', RelName("Äb", "Ü")),  # only ASCII letters fold, as parse_ident does in a UTF-8 database
    ("sc.stock_movements", RelName("sc", "stock_movements", exact=False)),
])
def test_names_are_read_as_postgresql_reads_them(text: str, want: RelName) -> None:
    assert parse(text) == want


def test_long_names_are_cut_to_63_bytes_on_a_whole_character() -> None:
    got = parse('s."' + "é" * 40 + '"')
    assert got.name == "é" * 31 and len(got.name.encode()) == 62


@pytest.mark.parametrize("bad", ["orders", "a.b.c", "", ".x", "x.", '"open.t', '"a"x.t', "a b.c", '"".t', "a.\x00"])
def test_malformed_names_are_usage_errors(bad: str) -> None:
    with pytest.raises(UsageError) as e:
        parse(bad)
    assert e.value.exit_code == ExitCode.USAGE and "\n" not in e.value.message


@pytest.mark.parametrize(("schema", "name", "shown"), [
    ("sc", "stock_movements", "sc.stock_movements"), ("Inventory", "StockMovements", '"Inventory"."StockMovements"'),
    ("a b", 'say "hi"', '"a b"."say ""hi"""'), ("s", "1st", 's."1st"'), ("s", "t$1", "s.t$1")])
def test_names_are_shown_in_sql_form_that_reads_back_to_the_same_name(schema: str, name: str, shown: str) -> None:
    assert sql_name(schema, name) == shown
    got = parse(shown)
    assert (got.schema, got.name) == (schema, name)


def test_quote_doubles_quotes() -> None:
    assert quote('a"b') == '"a""b"' and quote("plain") == "plain"


def _c(schema: str, name: str, kind: str = "r", persistence: str = "p", related: list[str] | None = None
       ) -> Candidate:
    return Candidate(16384, schema, name, kind, persistence, related or [])


TWINS = [_c("Inventory", "Pallets"), _c("Inventory", "pallets")]


def test_the_sql_form_matches_exactly_and_the_plain_form_ignoring_case() -> None:
    assert matches(parse('"Inventory"."Pallets"'), TWINS) == TWINS[:1]
    assert matches(parse('"Inventory".pallets'), TWINS) == TWINS[1:]
    assert matches(parse("inventory.PALLETS"), TWINS) == TWINS
    assert pick(parse('"Inventory"."Pallets"'), TWINS, "shop", purpose=FIND) == TWINS[0]


def test_several_matches_are_refused_listing_each_in_sql_form() -> None:
    with pytest.raises(RefusedError) as e:
        pick(parse("Inventory.Pallets"), TWINS, "shop", purpose=RESTORE)
    msg = e.value.message
    assert e.value.exit_code == ExitCode.REFUSED and "\n" not in msg
    assert '"Inventory"."Pallets", "Inventory".pallets' in msg and "--table '\"Inventory\".\"Pallets\"'" in msg


def test_no_match_is_none_and_says_what_the_other_case_would_be() -> None:
    assert pick(parse("sc.nope"), [], "shop", purpose=FIND) is None
    msg = not_found(parse('Inventory."StockMovements"'), [_c("Inventory", "StockMovements")], "shop",
                    "the live catalog")
    assert msg.startswith('no relation inventory."StockMovements" in the live catalog of database shop')
    assert "'\"Inventory\".\"StockMovements\"'" in msg and "fold to lower case" in msg
    assert "check the name and --dbname" in not_found(parse("sc.nope"), [], "shop", "the live catalog")


@pytest.mark.parametrize(("cand", "purpose", "says"), [
    (_c("s", "v", "v", related=["s.a", "s.b"]), FIND, "s.v is a view: it holds no rows of its own; give the "
                                                      "table(s) it reads instead: s.a, s.b"),
    (_c("s", "f", "f", related=["loopback"]), RESTORE, "s.f is a foreign table: its rows live on the foreign server "
                                                       "loopback"),
    (_c("s", "p", "p"), RESTORE, "s.p is a partitioned table without partitions"),
    (_c("s", "m", "m", related=["s.a"]), RESTORE, "REFRESH MATERIALIZED VIEW s.m"),
    (_c("s", "q", "S"), FIND, "s.q is a sequence, not a table"),
    (_c("s", "t", "r", "t"), FIND, "s.t is a temporary table"),
    (_c("s", "u", "r", "u"), FIND, "s.u is UNLOGGED: its row changes are never written to the WAL"),
])
def test_relations_that_are_not_tables_are_refused_saying_what_to_give(cand: Candidate, purpose: str, says: str
                                                                       ) -> None:
    with pytest.raises(RefusedError) as e:
        pick(RelName(cand.schema, cand.name), [cand], "shop", purpose=purpose)
    assert says in e.value.message and "\n" not in e.value.message


@pytest.mark.parametrize(("cand", "purpose"), [
    (_c("s", "p", "p", related=["s.p_2026", "s.p_2027"]), FIND), (_c("s", "p", "p", related=["s.p_2026"]), RESTORE),
    (_c("s", "m", "m"), FIND), (_c("s", "u", "r", "u"), RESTORE), (_c("s", "r"), RESTORE)])
def test_tables_partitioned_tables_and_searchable_relations_are_taken(cand: Candidate, purpose: str) -> None:
    assert pick(RelName(cand.schema, cand.name), [cand], "shop", purpose=purpose) == cand
