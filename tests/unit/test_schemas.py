"""docs/schemas/ is what scripts/schemas writes from the types every --json prints (a renamed field fails here
until the schema is regenerated and committed), and records written by an older opsd still load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from opsd.core.records.base import Note, Unreadable
from opsd.core.records.drill import DrillResult
from opsd.core.records.health import load_moment
from opsd.core.records.jobs import BackupResult, CheckReport
from opsd.core.records.runs import load_details
from opsd.report.jsonout import OUTPUTS, dump, schema

REPO = Path(__file__).resolve().parent.parent.parent
DOCS = REPO / "docs" / "schemas"


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_each_schema_file_is_current(name: str) -> None:
    path = DOCS / f"{name}.json"
    assert path.exists(), f"{path} missing: run scripts/schemas"
    current = json.dumps(schema(name), indent=2, sort_keys=True) + "\n"
    assert path.read_text() == current, f"{path} is stale: run scripts/schemas and commit the result"
    jsonschema.Draft202012Validator.check_schema(json.loads(current))


def test_no_schema_file_without_an_output() -> None:
    assert sorted(p.stem for p in DOCS.glob("*.json")) == sorted(OUTPUTS)


def test_scripts_schemas_runs() -> None:
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "schemas")], capture_output=True, text=True,
                         cwd=REPO, check=False)
    assert res.returncode == 0 and f"wrote {len(OUTPUTS)} schema(s)" in res.stdout, res.stderr


def test_a_renamed_field_breaks_the_schema_not_a_reader() -> None:
    """The failure mode the typed records exist for: a field the writer renames no longer validates."""
    ok = BackupResult(label="L", type="full", requested_type="full", size=1, delta=1, repo_size=1, repo_delta=1,
                      duration=1.0)
    doc = json.loads(dump("backup", ok))
    jsonschema.validate(doc, schema("backup"))
    doc["seconds"] = doc.pop("duration")
    with pytest.raises(jsonschema.ValidationError, match="duration"):
        jsonschema.validate(doc, schema("backup"))


def test_version_0_rows_load_as_their_records() -> None:
    """Shapes opsd wrote before records were versioned (no kind saved) load as the typed records."""
    check = load_details("check", None, 0, {"results": [
        {"name": "archive.archiver", "status": "critical", "message": "x",
         "details": {"archived_count": 7, "failed_count": 3, "oldest_ready_age": 720.0}},
        {"name": "repository", "status": "ok", "message": "y", "details": {"backups": 2, "lock_held": False,
                                                                           "oldest_backup_stop": 1.5}}],
        "worst": "critical"})
    assert isinstance(check, CheckReport) and check.archiver is not None and check.repository is not None
    assert (check.archiver.oldest_ready_age, check.archiver.failed_count, check.repository.backups) == (720.0, 3, 2)
    drill = load_details("drill", None, 0, {"stanza": "main", "target_mode": "random", "passed": True,
                                            "phases": {"restore_seconds": 2.0}, "failed_checks": []})
    assert isinstance(drill, DrillResult) and drill.phases.restore_seconds == 2.0
    early = load_details("drill", None, 0, {"hint": "see docs"})
    assert isinstance(early, Note) and early.hint == "see docs"
    assert load_moment({"tree": None, "_rank": [3, 1.5]}, 0).rank == (3.0, 1.5)


def test_a_kind_from_a_newer_opsd_keeps_what_every_run_has() -> None:
    got = load_details("backup-full", "snapshot", 1, {"hint": "h", "whatever": 1})
    assert isinstance(got, Note) and got.hint == "h"


def test_a_damaged_record_is_unreadable_not_an_exception() -> None:
    got = load_details("backup-full", "backup", 1, {"label": "L", "size": "lots"})
    assert isinstance(got, Unreadable) and "backup record" in got.problem
