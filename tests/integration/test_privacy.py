"""Customer data never leaves opsd (issue 33, section 4): on the real stack, a drill's smoke queries hit a unique
and a CHECK constraint on a row of invented personal data; PostgreSQL's errors quote that row (DETAIL: Key
(email)=(...) already exists, Failing row contains (...)). The drill fails naming the constraint and its SQLSTATE,
and the name and email appear nowhere: not in opsd's journal (stderr, JSON events), not in the webhook body, not
in the run history (history.sqlite3 and its WAL, read as bytes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opsd_sandbox import Sandbox
from tests.conftest import opsd
from tests.integration.helpers import switch_and_wait

pytestmark = pytest.mark.integration

NAME, EMAIL = "Jane Quillfeather", "jane.quillfeather@example.org"
SMOKE = """
[[drill.smoke_queries]]
name = "dup-email"
dbname = "privacy"
sql = "INSERT INTO people (id, name, email) SELECT id + 1000, name, email FROM people RETURNING true"

[[drill.smoke_queries]]
name = "bad-email"
dbname = "privacy"
sql = "UPDATE people SET email = 'nowhere' RETURNING true"

[alerts]
webhook_url = "{url}"
"""


def test_a_constraint_violation_on_personal_data_leaves_no_trace(ready_stack: Sandbox, tmp_path: Path,
                                                                  hook: tuple[str, list[dict[str, Any]]]) -> None:
    sb = ready_stack
    url, got = hook
    sb.psql("drop database if exists privacy")
    sb.psql("create database privacy")
    sb.psql("create table people(id int primary key, name text not null, email text unique "
            "check (email like '%@%'))", db="privacy")
    sb.psql(f"insert into people values (1, '{NAME}', '{EMAIL}')", db="privacy")
    # the copy restores with parallel fetches and at normal priority: what leaks does not depend on either
    conf = sb.write_opsd_conf(tmp_path / "opsd.toml", drill={"process_max": 4, "priority": "normal"},
                              extra=SMOKE.format(url=url))
    try:
        res = opsd(conf, "backup", "--type", "full")
        assert res.returncode == 0, res.stderr
        switch_and_wait(sb)
        res = opsd(conf, "drill", "run", "--json", "--target", "latest", timeout=600)
    finally:
        sb.psql("drop database if exists privacy")
    checks = {c["name"]: c for c in json.loads(res.stdout)["checks"]}
    assert res.returncode != 0
    # the violations happened, and what stays is the constraint and the SQLSTATE
    assert "people_email_key" in checks["smoke.dup-email"]["message"], checks["smoke.dup-email"]
    assert "SQLSTATE 23505" in checks["smoke.dup-email"]["message"]
    assert "people_email_check" in checks["smoke.bad-email"]["message"], checks["smoke.bad-email"]
    assert "SQLSTATE 23514" in checks["smoke.bad-email"]["message"]
    # ... and the row they quoted is nowhere
    assert got, "the failed drill raised no alert"
    history = b"".join(p.read_bytes() for p in sb.state_dir.glob("history.sqlite3*"))
    for where, text in (("journal", res.stderr), ("stdout", res.stdout), ("webhook", json.dumps(got)),
                        ("history", history.decode(errors="replace"))):
        for secret in (NAME, EMAIL, "Quillfeather"):
            assert secret not in text, f"{secret!r} in the {where}"
