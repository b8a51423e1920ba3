"""Why a rehearsal fails (actions/rehearse/after.py): a killed or failed command with the statement that
failed, a command that never reached its copy or reached production instead, a rollback that leaves the
schema different or changes a table the migration never wrote; and the timeout as the command runner
reports it (actions/rehearse/gate.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from opsd.actions.rehearse import gate
from opsd.actions.rehearse.after import Measured, Phased, _failures
from opsd.actions.rehearse.gate import Ran
from opsd.core.records.rehearse import Check, Phase, Statement, TableDiff
from opsd.db.rehearse import Snapshot
from opsd.errors import CommandTimeout


def _phased(name: str = "migrate", code: int | None = 0, copy: int = 1, prod: int = 0,
            statements: list[Statement] | None = None, tail: list[str] | None = None) -> Phased:
    phase = Phase(name=name, command="x", exit_code=code, seconds=1.0, sessions_on_copy=copy,
                  sessions_on_production=prod)
    return Phased(phase, Ran(code, 1.0, tail or []), statements or [], [], None, None)


EMPTY = Snapshot({}, {}, {})


def test_a_failed_command_is_named_with_the_statement_that_failed() -> None:
    bad = Statement(text="alter table sc.nope add column x int", error='relation "sc.nope" does not exist')
    got = _failures(Measured(EMPTY, _phased(code=3, statements=[bad])), [], None, [])
    assert got == ['the migration failed (exit 3): relation "sc.nope" does not exist in: alter table sc.nope add '
                   "column x int"]
    killed = _failures(Measured(EMPTY, _phased(code=None, copy=1)), [], None, [])
    assert killed == ["the migration was killed at the timeout"]


def test_a_command_that_never_reached_its_copy_or_reached_production_fails() -> None:
    assert _failures(Measured(EMPTY, _phased(copy=0)), [], None, []) == [
        "the migration never connected to the copy (no session, no statement of its role there)"]
    got = _failures(Measured(EMPTY, _phased(copy=0, prod=2)), [], None, [])
    assert got == ["the migration reached production, not its copy: production saw 2 new session(s) of its role "
                   "while the copy saw none"]
    assert _failures(Measured(EMPTY, _phased(copy=1, prod=2)), [], None, []) == []  # the application's own sessions


def test_a_rollback_is_judged_by_the_schema_and_by_the_tables_the_migration_never_wrote() -> None:
    m = Measured(EMPTY, _phased(), rollback=_phased("rollback"))
    diff = ["--- before the migration", "+++ after the rollback", "@@ -1 +1,2 @@", " a", "+    channel text"]
    tables = [TableDiff(table="sc.orders", rows_before=5, rows_after=5, missing=1, extra=1, migration_changed=True),
              TableDiff(table="sc.stocks", rows_before=5, rows_after=4, missing=1, extra=0, migration_changed=False),
              TableDiff(table="sc.audit", rows_before=3, rows_after=None, missing=3, extra=0, migration_changed=True)]
    got = _failures(m, [Check(name="indexes", status="failed", message="invalid index(es) left behind: i")], diff,
                    tables)
    assert got == ["check indexes: invalid index(es) left behind: i",
                   "the rollback does not restore the schema: 1 line(s) differ, first: +    channel text",
                   "the rollback changed sc.stocks, which the migration never wrote: 1 row(s) missing, 0 not there "
                   "before",
                   "sc.audit is gone after the rollback (3 row(s) before)"]


def test_the_timeout_kills_the_command_and_is_said() -> None:
    said: list[str] = []

    class Runner:
        def run(self, argv: list[str], **kw: Any) -> Any:
            raise CommandTimeout("sh timed out after 2s and was killed", argv=argv)

    ran = gate.run(SimpleNamespace(runner=Runner()), ["sh", "-c", "sleep 60"], 2.0, said.append)  # type: ignore[arg-type]
    assert ran.exit_code is None and said == ["killed after 2 s (rehearse.timeout / --timeout)"]
