"""The pure decisions of a migration rehearsal: what each lock mode blocks, samples folded into hold times, the
copy's log read back as statements (literals masked, parameters never read), hazards and their thresholds,
the rollback's comparisons."""

from __future__ import annotations

from opsd.core.records.rehearse import ConstraintAdded, IndexBuilt, LockHeld, Rewrite, Statement
from opsd.core.rehearse import hazards as hz
from opsd.core.rehearse.compare import multiset_diff, normalised, removed_or_added, schema_diff
from opsd.core.rehearse.locks import Sample, Spans, blocks, short
from opsd.core.rehearse.statements import (
    adds_validated_constraint,
    changes_type,
    creates_index,
    dml_verb,
    statements,
)


def test_what_each_lock_blocks() -> None:
    assert blocks("AccessExclusiveLock") == ["reads", "SELECT FOR UPDATE/SHARE", "writes (INSERT, UPDATE, DELETE)",
                                             "autovacuum"]
    assert blocks("ShareLock") == ["writes (INSERT, UPDATE, DELETE)", "autovacuum"]  # CREATE INDEX
    assert blocks("ShareRowExclusiveLock") == ["writes (INSERT, UPDATE, DELETE)", "autovacuum"]  # ADD FOREIGN KEY
    assert blocks("ShareUpdateExclusiveLock") == ["autovacuum"]  # CONCURRENTLY, VALIDATE CONSTRAINT
    assert blocks("ExclusiveLock") == ["SELECT FOR UPDATE/SHARE", "writes (INSERT, UPDATE, DELETE)", "autovacuum"]
    assert blocks("RowExclusiveLock") == [] and blocks("AccessShareLock") == []
    assert short("AccessExclusiveLock") == "ACCESS EXCLUSIVE" and short("ShareLock") == "SHARE"


def test_samples_fold_into_hold_times_per_relation_and_mode() -> None:
    s = Spans(interval=0.1)
    for at in (0.0, 0.1, 0.2):  # held over three samples, then released
        s.add(at, [Sample(at, 7, "sc.t", "AccessExclusiveLock", "ALTER TABLE sc.t ...")])
    s.add(0.3, [])
    s.add(0.4, [Sample(0.4, 7, "sc.t", "AccessExclusiveLock")])  # taken again: the two spans add up
    out = s.finish()
    assert len(out) == 1 and round(out[0].held, 3) == 0.4 and out[0].statement == "ALTER TABLE sc.t ..."


LOG = """\
opsd:1765126800.100:41:postgres:shop:LOG:  duration: 0.2 ms  statement: SET log_min_duration_statement = -1
opsd:1765126800.120:42:shop_owner:shop:LOG:  duration: 31.9 ms  statement: ALTER TABLE "sc"."t" ADD COLUMN "x" int
  DEFAULT 42
opsd:1765126800.130:42:shop_owner:shop:LOG:  duration: 0.1 ms  parse <unnamed>: INSERT INTO m VALUES ($1)
opsd:1765126800.131:42:shop_owner:shop:DETAIL:  parameters: $1 = 'alice@example.com'
opsd:1765126800.132:42:shop_owner:shop:LOG:  duration: 0.4 ms  execute <unnamed>: INSERT INTO m VALUES ($1)
opsd:1765126800.140:42:shop_owner:shop:ERROR:  relation "sc.nope" does not exist at character 13
opsd:1765126800.141:42:shop_owner:shop:STATEMENT:  alter table sc.nope add column note text default 'secret'
"""


def test_the_copys_log_read_back_as_the_roles_statements() -> None:
    got = statements(LOG.splitlines(keepends=True), "shop_owner")
    assert [(g.text, g.ms, g.error) for g in got] == [
        ('ALTER TABLE "sc"."t" ADD COLUMN "x" int DEFAULT ?', 31.9, None),  # two lines, literal masked
        ("INSERT INTO m VALUES ($1)", 0.4, None),  # parse/bind skipped; parameters never read
        ("alter table sc.nope add column note text default ?", None,
         'relation "sc.nope" does not exist at character 13')]
    assert "alice" not in repr(got) and "secret" not in repr(got)


def test_what_a_statement_does() -> None:
    assert creates_index('CREATE INDEX CONCURRENTLY "i" ON t (a)') is True
    assert creates_index("create unique index i on t (a)") is False
    assert creates_index("ALTER TABLE t ADD x int") is None
    assert adds_validated_constraint('ALTER TABLE "t" ADD CONSTRAINT "fk" FOREIGN KEY ("a") REFERENCES "o"("id")')
    assert not adds_validated_constraint("ALTER TABLE t ADD CONSTRAINT c CHECK (a > ?) NOT VALID")
    assert changes_type("ALTER TABLE t ALTER COLUMN a TYPE bigint") and not changes_type("ALTER TABLE t ADD a int")
    assert dml_verb("update sc.orders set status = ?") == "UPDATE" and dml_verb("ALTER TABLE t") is None


MIB = 1024**2


def _lock(rel: str, mode: str, secs: float, size: int | None = 50 * MIB) -> LockHeld:
    return LockHeld(relation=rel, mode=mode, seconds=secs, blocks=blocks(mode), bytes=size, rows=300000)


def test_hazards_name_the_lock_its_time_and_the_table_size_and_stay_quiet_under_the_limits() -> None:
    locks = [_lock("sc.sm", "AccessExclusiveLock", 2.5), _lock("sc.o", "ShareLock", 0.01, 8 * 1024)]
    found = hz.hazards(locks, [Rewrite(relation="sc.sm", kind="table", bytes_before=50 * MIB, bytes_after=60 * MIB)],
                       [IndexBuilt(index="sc.i", table="sc.o", concurrently=False, valid=True)],
                       constraints=[ConstraintAdded(name="fk", table="sc.sm", kind="foreign key", validated=True,
                                                    not_valid=False)],
                       statements=[Statement(text="UPDATE sc.sm SET a = ?", ms=4200.0)], limits=hz.Limits())
    by = {h.code: h for h in found}
    assert set(by) == {"rewrite", "constraint-validated", "long-update"}  # the index on an 8 KiB table: no hazard
    assert "ACCESS EXCLUSIVE held 2.5 s, table 50.0 MiB, ~300,000 rows" in by["rewrite"].message
    assert "NOT VALID" in by["constraint-validated"].advice and "batches" in by["long-update"].advice
    assert hz.verdict([], found) == "HAZARDS" and hz.verdict(["x"], []) == "FAILED" and hz.verdict([], []) == "PASSED"


def test_a_long_lock_without_a_known_cause_and_the_impact_lines() -> None:
    locks = [_lock("sc.sm", "ExclusiveLock", 0.5), _lock("sc.new", "AccessExclusiveLock", 9.0, None)]
    found = hz.hazards(locks, [], [], constraints=[], statements=[], limits=hz.Limits())
    assert [h.code for h in found] == ["long-lock"]  # a relation the migration created blocks nobody
    assert hz.impact(locks) == ["EXCLUSIVE on sc.sm (50.0 MiB, ~300,000 rows) for 0.5 s (migrate): blocks "
                                "SELECT FOR UPDATE/SHARE, writes (INSERT, UPDATE, DELETE), autovacuum"]
    assert "lags by about 1.0 min" in hz.wal_impact(60 * MIB, None, MIB)
    assert "archiving lag unknown" in hz.wal_impact(MIB, None, None)


def test_the_rollbacks_comparisons() -> None:
    dump = ["--", "-- Name: t", "SET x = 1;", "\\restrict abc", "CREATE TABLE sc.t (", "    a int", ");", "",
            "CREATE SCHEMA opsd_amcheck;"]
    assert normalised(dump, ("opsd_amcheck",)) == ["CREATE TABLE sc.t (", "    a int", ");"]
    diff = schema_diff(["CREATE TABLE t (", "    a int", ");"], ["CREATE TABLE t (", "    a int,", "    b text",
                                                                  ");"])
    assert removed_or_added(diff) == ["-    a int", "+    a int,", "+    b text"]
    assert schema_diff(["a"], ["a"]) == []
    assert multiset_diff(iter(["a", "b", "b", "c"]), iter(["b", "c", "d"])) == (4, 3, 2, 1)
    assert multiset_diff(iter([]), iter([])) == (0, 0, 0, 0)
