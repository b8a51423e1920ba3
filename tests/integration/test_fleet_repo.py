"""A fleet drill's result in the drilled cluster's repository, on the real stack (TLS S3 endpoint, pgBackRest):
written under ``<repo1-path>/opsd/drills/<stanza>/`` with the keys of pgbackrest.conf, beside and never inside
pgBackRest's archive/ and backup/ (pgBackRest still checks the repository clean); imported by the cluster's own
opsd into a fresh history, where ``opsd drill list``/``show``, ``status`` and the monthly report show it with the
drill host's name; a second import adds nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opsd import settings as settings_mod
from opsd.actions.fleet.repo_results import import_results, publish
from opsd.adapters.pgbackrest_conf import option
from opsd.adapters.s3 import repo_client
from opsd.context import build
from opsd.core.records.checks import OK, CheckResult
from opsd.core.records.drill import DrillResult
from opsd.core.records.fleet import DrillSummary, FleetDrill
from opsd_sandbox import Sandbox
from tests.conftest import opsd
from tests.integration.helpers import pgbackrest

pytestmark = pytest.mark.integration

HOST = "drill-far.example"


def _ok(res: Any) -> Any:
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def _fleet_drill(sb: Sandbox, started: datetime) -> FleetDrill:
    res = DrillResult(stanza=sb.stanza, target_mode="latest", backup="20261102-010000F", rto_seconds=123.0,
                      rpo_seconds=4.0, log_file="/var/log/opsd/drill.log",
                      checks=[CheckResult("databases", OK, "every database answered")])
    summary = DrillSummary(host=HOST, started_at=started, finished_at=started + timedelta(minutes=2), outcome="ok",
                           summary=res.summary(), run_id=4242, rto_seconds=123.0, rpo_seconds=4.0, claim=7)
    return FleetDrill(fleet="prod", cluster="sandbox", stanza=sb.stanza, drill=summary, result=res)


def _keys(sb: Sandbox) -> list[str]:
    conf = sb.pgbackrest_conf
    bucket = option(conf, sb.stanza, "repo1-s3-bucket")
    pages = repo_client(conf, sb.stanza).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [str(o["Key"]) for p in pages for o in p.get("Contents", [])]


@pytest.fixture
def published(ready_stack: Sandbox) -> Iterator[tuple[Sandbox, FleetDrill, str]]:
    sb = ready_stack
    fd = _fleet_drill(sb, datetime.now(UTC).replace(microsecond=123456) - timedelta(minutes=5))
    where = publish(sb.pgbackrest_conf, sb.stanza, fd)
    yield sb, fd, where
    bucket, _, key = where.removeprefix("s3://").partition("/")
    repo_client(sb.pgbackrest_conf, sb.stanza).delete_object(Bucket=bucket, Key=key)


def test_result_in_the_repository_and_in_the_clusters_own_opsd(published: tuple[Sandbox, FleetDrill, str]
                                                                ) -> None:
    sb, fd, where = published
    repo_path = (option(sb.pgbackrest_conf, sb.stanza, "repo1-path") or "/").strip("/")
    name = where.rsplit("/", 1)[-1]
    assert where.startswith("s3://") and where.endswith(f"/{repo_path}/opsd/drills/{sb.stanza}/{name}")
    assert "key" not in where.lower() and "secret" not in where.lower()
    ours = [k for k in _keys(sb) if k.endswith(name)]
    assert ours == [f"{repo_path}/opsd/drills/{sb.stanza}/{name}"]
    # pgBackRest sees it where we put it (relative to repo1-path), and nowhere in its own trees
    listed = json.loads(pgbackrest(sb, "--output=json", "--recurse", "repo-ls", f"opsd/drills/{sb.stanza}"))
    assert name in listed
    for own in ("archive", "backup"):
        assert not [k for k in json.loads(pgbackrest(sb, "--output=json", "--recurse", "repo-ls", own))
                    if "opsd" in k]
    pgbackrest(sb, "check")  # each raises on a non-zero exit
    pgbackrest(sb, "verify")

    state = sb.root / f"fleet-repo-state-{name}"
    # the cluster drills only through the fleet: its weekly drill is done by the imported one
    conf = sb.write_opsd_conf(sb.root / "fleet-repo.toml", state_dir=state,
                              schedule={"full": "", "check": "", "drill": "0 3 * * 0"})
    ctx = build(settings_mod.load(str(conf)))
    first = import_results(ctx)
    assert len(first.imported) == 1 and not first.problems, first
    [run_id] = first.imported

    listed_drills = json.loads(_ok(opsd(conf, "drill", "list", "--json")).stdout)
    [drill] = [d for d in listed_drills if d["id"] == run_id]
    assert (drill["host"], drill["trigger"], drill["outcome"], drill["stanza"]) == (HOST, "fleet", "ok", sb.stanza)
    assert datetime.fromisoformat(drill["started_at"]) == fd.drill.started_at
    assert HOST in _ok(opsd(conf, "drill", "list")).stdout
    shown = _ok(opsd(conf, "drill", "show", str(run_id))).stdout
    assert "PASSED" in shown and f"{HOST}:/var/log/opsd/drill.log" in shown
    [row] = [r for r in _ok(opsd(conf, "status")).stdout.splitlines() if r.startswith("drill ")]
    assert f"ok, 2m on {HOST}" in row and "OVERDUE" not in row, row
    [view] = [v for v in json.loads(_ok(opsd(conf, "status", "--json")).stdout) if v["job"] == "drill"]
    assert view["overdue"] is False and view["last"]["host"] == HOST
    month = fd.drill.started_at.strftime("%Y-%m")
    report = json.loads(_ok(opsd(conf, "report", "--month", month, "--format", "json")).stdout)
    assert run_id in [d["id"] for d in report["drills"]] and report["verdict"]["drills_passed"] >= 1

    second = import_results(build(settings_mod.load(str(conf))))
    assert (second.imported, second.already) == ([], first.found)
    assert len(json.loads(_ok(opsd(conf, "drill", "list", "--json")).stdout)) == len(listed_drills)


def test_listing_a_stanza_without_results_is_empty(ready_stack: Sandbox, tmp_path: Path) -> None:
    from opsd.adapters import repo_files

    assert repo_files.listing(ready_stack.pgbackrest_conf, ready_stack.stanza, "opsd/drills/no-such-stanza") == []
