"""Row data that PostgreSQL's errors quote (DETAIL, CONTEXT, Failing row contains, Key (...)=(...)) never reaches an
error message or a log event: the psycopg helper, the stderr scrubber, the runner and log.py's last line of
defence. The SQLSTATE, the primary message and the relation/constraint names stay."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import structlog

from opsd import log
from opsd.adapters.runner import ProcessRunner
from opsd.core.pgtext import last_line, pg_error, scrub

NAME, EMAIL = "Jane Doe", "jane.doe@example.org"
PSQL_STDERR = (
    'psql:/tmp/dump.sql:40: ERROR:  new row for relation "people" violates check constraint "people_email_check"\n'
    f"DETAIL:  Failing row contains (1, {NAME}, {EMAIL}).\n"
    f'CONTEXT:  COPY people, line 1: "1\t{NAME}\t{EMAIL}"\n'
)
UNIQUE = (f'duplicate key value violates unique constraint "people_email_key"\nDETAIL:  Key (email)=({EMAIL}) '
          "already exists.")


@dataclass
class Diag:
    message_primary: str | None
    table_name: str | None = None
    constraint_name: str | None = None


class FakePgError(Exception):
    """What psycopg's errors look like to pg_error: str() with DETAIL, ``diag``, ``sqlstate``."""

    def __init__(self, text: str, diag: Diag | None, sqlstate: str | None) -> None:
        super().__init__(text)
        self.diag = diag
        self.sqlstate = sqlstate


def test_a_psycopg_error_keeps_sqlstate_message_and_names_never_the_row() -> None:
    e = FakePgError(UNIQUE, Diag('duplicate key value violates unique constraint "people_email_key"', "people",
                                 "people_email_key"), "23505")
    got = pg_error(e)
    assert EMAIL not in got and "DETAIL" not in got and "\n" not in got
    assert got == ('duplicate key value violates unique constraint "people_email_key" (relation people, '
                   "SQLSTATE 23505)")


def test_an_error_without_diag_is_its_first_line_scrubbed() -> None:
    assert pg_error(FakePgError(UNIQUE, None, None)) == (
        'duplicate key value violates unique constraint "people_email_key"')
    assert EMAIL not in pg_error(FakePgError(f"failed: Key (email)=({EMAIL}) already exists", None, None))
    assert pg_error(FakePgError("", None, None)) == "FakePgError"


def test_psql_stderr_loses_detail_and_context_and_its_last_line_is_the_error() -> None:
    """The old ``_last(stderr)`` picked the CONTEXT line: the whole COPY line, name and email."""
    assert NAME not in scrub(PSQL_STDERR) and EMAIL not in scrub(PSQL_STDERR)
    assert last_line(PSQL_STDERR).endswith('violates check constraint "people_email_check"')


@pytest.mark.parametrize("text", [
    f"DETAIL:  Failing row contains (1, {NAME},\n{EMAIL}).\nCONTEXT:  x",  # a value with a newline in it
    f"load failed: ERROR: dup DETAIL: Key (email)=({EMAIL}) already exists.",  # joined onto one line
    f"Failing row contains (1, {NAME}, {EMAIL}).",
    f"HINT:  the value '{EMAIL}' is not allowed",
    f"LINE 1: INSERT INTO people VALUES ('{NAME}', '{EMAIL}')\n                                   ^",
    f"STATEMENT:  INSERT INTO people VALUES ('{NAME}', '{EMAIL}')",
])
def test_every_shape_of_quoted_data_goes(text: str) -> None:
    assert NAME not in scrub(text) and EMAIL not in scrub(text)


def test_lines_that_quote_nothing_stay() -> None:
    text = ("P00  ERROR: [028]: backup and archive info files exist but do not match the database\n"
            "HINT: is this the correct stanza?\nERROR:  relation \"x\" does not exist")
    assert scrub(text) == text


def test_the_runner_keeps_row_data_out_of_stderr_and_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    log.configure("info", json=True)
    res = ProcessRunner().run(["sh", "-c", f"printf '%s' '{PSQL_STDERR}' >&2; exit 3"], timeout=10)
    err = capsys.readouterr().err
    assert res.returncode == 3 and "people_email_check" in res.stderr
    for text in (res.stderr, err):
        assert NAME not in text and EMAIL not in text


def test_log_events_lose_row_data_whatever_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    log.configure("info", json=True)
    structlog.get_logger().error("job.failed", error=UNIQUE, nested={"why": [PSQL_STDERR]})
    err = capsys.readouterr().err
    event = json.loads(err.strip().splitlines()[-1])
    assert NAME not in err and EMAIL not in err
    assert event["error"].startswith('duplicate key value violates unique constraint "people_email_key"')
