"""Fleet drill results in the cluster's repository (a posix repository in tmp_path): opsd's files only under
``opsd/``, written atomically 0640, listed and read back; the cluster's import into a real SQLite history is
idempotent, names the files it cannot read, and the drill list, show and status say where an imported drill ran."""

from __future__ import annotations

import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from opsd.actions.fleet import repo_results
from opsd.adapters import repo_files
from opsd.adapters.stores.runs import History
from opsd.context import Context
from opsd.core.records.checks import CRITICAL, OK, CheckResult
from opsd.core.records.drill import DrillResult
from opsd.core.records.fleet import DrillSummary, FleetDrill
from opsd.errors import OpsdError
from opsd.report import console, drill_console
from opsd.report.jsonout import drill_run_view
from tests.conftest import _me

T0 = datetime(2026, 11, 3, 2, 0, 0, 123456, tzinfo=UTC)
UTC_TZ = ZoneInfo("UTC")


def _conf(tmp_path: Path, *lines: str) -> Path:
    conf = tmp_path / "pgbackrest.conf"
    conf.write_text("\n".join(["[global]", *lines, "", "[main]", "pg1-path=/nowhere", ""]))
    return conf


@pytest.fixture
def posix(tmp_path: Path) -> Path:
    (tmp_path / "repo").mkdir()
    return _conf(tmp_path, f"repo1-path={tmp_path / 'repo'}", "repo1-cipher-type=aes-256-cbc")


@pytest.fixture
def cluster(posix: Path, fake_ctx: Callable[..., Context]) -> Context:
    return fake_ctx(pgbackrest={"config": str(posix), "stanza": "main"})


def _fd(host: str, at: datetime, outcome: str = "ok", *, run_id: int | None = 7, stanza: str = "main",
        result: bool = True) -> FleetDrill:
    status = OK if outcome == "ok" else CRITICAL
    res = DrillResult(stanza=stanza, target_mode="random", target=at.isoformat(), backup="20261102-010000F",
                      rto_seconds=300.0, rpo_seconds=42.0, scratch="/srv/scratch/main", log_file="/srv/log/pg.log",
                      checks=[CheckResult("databases", status, "3 databases")])
    summary = DrillSummary(host=host, started_at=at, finished_at=at + timedelta(minutes=6), outcome=outcome,
                           summary=res.summary(), run_id=run_id, rto_seconds=300.0, rpo_seconds=42.0, claim=11)
    return FleetDrill(fleet="prod", cluster="main", stanza=stanza, drill=summary, result=res if result else None)


def test_posix_write_list_read(posix: Path, tmp_path: Path) -> None:
    where = repo_files.write(posix, "main", "opsd/drills/main/a.json", b'{"a": 1}')
    path = tmp_path / "repo" / "opsd" / "drills" / "main" / "a.json"
    assert where == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    repo_files.write(posix, "main", "opsd/drills/main/a.json", b'{"a": 2}')  # replaced whole
    repo_files.write(posix, "main", "opsd/other/b.json", b"{}")
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]  # no temporary file left
    assert repo_files.listing(posix, "main", "opsd/drills/main/") == ["opsd/drills/main/a.json"]
    assert repo_files.listing(posix, "main", "opsd") == ["opsd/drills/main/a.json", "opsd/other/b.json"]
    assert repo_files.listing(posix, "main", "opsd/drills/none") == []
    assert repo_files.read(posix, "main", "opsd/drills/main/a.json") == b'{"a": 2}'


@pytest.mark.parametrize("relpath", ["archive/main/x.json", "backup/main/x.json", "opsd/../archive/main/x",
                                     "/opsd/x.json", "opsd//x.json", "opsd/./x.json", "opsd", "opsd/", "x",
                                     "opsd/a/..", "opsd\\..\\archive"])
def test_refuses_paths_outside_opsd(posix: Path, tmp_path: Path, relpath: str) -> None:
    with pytest.raises(OpsdError, match="refusing repository path"):
        repo_files.write(posix, "main", relpath, b"{}")
    with pytest.raises(OpsdError, match="refusing repository path"):
        repo_files.read(posix, "main", relpath)
    assert not (tmp_path / "repo" / "archive").exists()


def test_listing_refuses_prefix_outside_opsd(posix: Path) -> None:
    for prefix in ("archive", "opsd/..", "", "backup/main"):
        with pytest.raises(OpsdError, match="refusing"):
            repo_files.listing(posix, "main", prefix)


@pytest.mark.parametrize("kind", ["azure", "gcs", "sftp"])
def test_other_repository_types_refused_in_one_line(tmp_path: Path, kind: str) -> None:
    conf = _conf(tmp_path, f"repo1-type={kind}", "repo1-path=/repo")
    with pytest.raises(OpsdError) as e:
        repo_files.write(conf, "main", "opsd/drills/main/a.json", b"{}")
    assert f"{kind!r}" in str(e.value) and "not supported" in str(e.value) and "\n" not in str(e.value)


def test_s3_keys_follow_pgbackrest(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "repo1-type=s3", "repo1-path=/repo", "repo1-s3-bucket=bk", "repo1-s3-key=AKIA",
                 "repo1-s3-key-secret=SECRET")
    repo = repo_files._Repo(conf, "main")
    assert repo.key("opsd/drills/main/a.json") == "repo/opsd/drills/main/a.json"
    assert repo.where("opsd/x.json") == "s3://bk/repo/opsd/x.json"  # no secret in it
    conf.write_text(conf.read_text().replace("repo1-path=/repo", "repo1-path=/"))
    assert repo_files._Repo(conf, "main").key("opsd/x.json") == "opsd/x.json"


def test_publish_names_the_file_by_start_host_and_run(posix: Path, tmp_path: Path) -> None:
    where = repo_results.publish(posix, "main", _fd("drill-a.example", T0))
    assert where == str(tmp_path / "repo/opsd/drills/main/20261103T020000123456Z-drill-a.example-7.json")
    assert repo_results.decode(Path(where).read_bytes()) == _fd("drill-a.example", T0)
    with pytest.raises(OpsdError, match="stanza"):
        repo_results.publish(posix, "other", _fd("drill-a", T0))


def test_import_is_idempotent_and_names_unreadable_files(cluster: Context, posix: Path) -> None:
    repo_results.publish(posix, "main", _fd("drill-a", T0))
    repo_results.publish(posix, "main", _fd("drill-b", T0 + timedelta(days=1), "failed", result=False, run_id=None))
    repo_files.write(posix, "main", "opsd/drills/main/garbage.json", b"{not json")
    repo_files.write(posix, "main", "opsd/drills/main/other-kind.json", b'{"kind": "drill", "version": 1}')
    foreign = repo_results.encode(_fd("drill-c", T0, stanza="other"))
    repo_files.write(posix, "main", "opsd/drills/main/foreign.json", foreign)

    first = repo_results.import_results(cluster)
    assert (first.found, len(first.imported), first.already) == (5, 2, 0)
    assert sorted(n for n, _ in first.problems) == ["opsd/drills/main/foreign.json", "opsd/drills/main/garbage.json",
                                                    "opsd/drills/main/other-kind.json"]
    assert "stanza 'other'" in dict(first.problems)["opsd/drills/main/foreign.json"]

    again = repo_results.import_results(cluster)
    assert (len(again.imported), again.already, len(again.problems)) == (0, 2, 3)
    fresh = History(cluster.settings.opsd.state_dir, _me())  # another process: the history itself remembers
    assert len(fresh.runs("drill")) == 2

    failed, passed = fresh.runs("drill")
    assert (passed.host, passed.trigger, passed.outcome, passed.pid) == ("drill-a", "fleet", "ok", 0)
    assert passed.started_at == T0 and passed.finished_at == T0 + timedelta(minutes=6)
    result = passed.details_as(DrillResult)
    assert result is not None and result.rto_seconds == 300.0
    assert result.log_file == "drill-a:/srv/log/pg.log" and result.scratch == "drill-a:/srv/scratch/main"
    assert (failed.host, failed.outcome, failed.details_as(DrillResult)) == ("drill-b", "failed", None)
    assert failed.error and "FAILED" in failed.error


def test_file_renamed_by_hand_is_still_imported_once(cluster: Context, posix: Path) -> None:
    data = repo_results.encode(_fd("drill-a", T0))
    repo_files.write(posix, "main", "opsd/drills/main/copy-1.json", data)
    repo_files.write(posix, "main", "opsd/drills/main/copy-2.json", data)
    rep = repo_results.import_results(cluster)
    assert (len(rep.imported), rep.already, rep.problems) == (1, 1, [])


def test_readers_say_where_an_imported_drill_ran(cluster: Context, posix: Path) -> None:
    repo_results.publish(posix, "main", _fd("drill-a", T0))
    repo_results.import_results(cluster)
    [run] = cluster.history.runs("drill")
    assert "drill-a" in drill_console.drills([run], UTC_TZ)
    view: Any = drill_run_view(run)
    assert (view.host, view.trigger, view.outcome, view.stanza) == ("drill-a", "fleet", "ok", "main")
    assert console.run_line(run, UTC_TZ).endswith(" on drill-a")
    shown = drill_console.drill(run.details_as(DrillResult) or DrillResult(stanza="", target_mode=""), run.outcome,
                                run.id)
    assert "drill-a:/srv/log/pg.log" in shown and "PASSED" in shown


def test_history_record_once(tmp_path: Path) -> None:
    h = History(tmp_path / "state", _me())
    local = h.record("drill", "cli", T0, T0 + timedelta(minutes=1), "ok")
    first = h.record_once("drill", "fleet", T0, T0 + timedelta(minutes=5), "ok", host="drill-a")
    assert first is not None and first != local
    assert h.record_once("drill", "fleet", T0.astimezone(ZoneInfo("Europe/Paris")), T0, "failed",
                         host="drill-a") is None  # the same instant, whatever its offset
    assert h.started("drill", "fleet") == {("drill-a", T0)}
    with pytest.raises(ValueError, match="outcome"):
        h.record_once("drill", "fleet", T0, T0, "maybe", host="drill-a")
    assert [r.id for r in h.runs("drill")] == [first, local] or [r.id for r in h.runs("drill")] == [local, first]
