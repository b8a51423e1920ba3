"""``opsd fleet status`` as text and JSON from a hand-made fleet: an overdue cluster is marked, a claim in flight
names its host, a cluster too large for every drill host is named, times are in the configured timezone, the
JSON is what docs/schemas/fleet-status.json documents; and the command's exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from opsd.actions.fleet.view import ClusterRow, FleetView
from opsd.cli import main
from opsd.core.fleet.pick import Drills
from opsd.core.records.fleet import Capacity, Claim, ClusterEntry, DrillHostEntry, DrillSummary, Repository
from opsd.report.fleet_console import fleet_status
from opsd.report.fleet_views import status_view
from tests.conftest import assert_documented

NOW = datetime(2026, 11, 14, 11, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
WEEK = timedelta(days=7)
GiB = 1024**3


def entry(name: str, *, size: int = 10 * GiB, joined: datetime = NOW - timedelta(days=60)) -> ClusterEntry:
    return ClusterEntry(cluster=name, stanza=f"{name}-stanza", repository=Repository(name="s3-eu", location="b/p"),
                        host=f"{name}-db1", database_bytes=size, registered_at=joined, updated_at=NOW)


def drill(host: str, finished: datetime, outcome: str = "ok") -> DrillSummary:
    return DrillSummary(host=host, started_at=finished - timedelta(minutes=12), finished_at=finished,
                        outcome=outcome, rto_seconds=610.0, rpo_seconds=4.5, claim=41)


def fleet_view() -> FleetView:
    """main: passed 2 days ago; analytics: last passed 9 days ago, failed since, drilled now by drill-b;
    warehouse: too large for every drill host, never drilled (registered 3 days ago: not overdue yet)."""
    main_d = drill("drill-a", NOW - timedelta(days=2))
    ana_ok, ana_bad = drill("drill-a", NOW - timedelta(days=9)), drill("drill-b", NOW - timedelta(days=1), "failed")
    claim = Claim(cluster="analytics", host="drill-b", pid=4242, lease=77, started_at=NOW - timedelta(minutes=20))
    rows = (
        ClusterRow(entry("analytics"), Drills(ana_bad, ana_ok), ana_ok.finished_at + WEEK, timedelta(days=2),
                   claim, False),
        ClusterRow(entry("main"), Drills(main_d, main_d), main_d.finished_at + WEEK, None, None, False),
        ClusterRow(entry("warehouse", size=900 * GiB, joined=NOW - timedelta(days=3)), Drills(),
                   NOW + timedelta(days=4), None, None, True),
    )
    hosts = (DrillHostEntry(host="drill-a", capacity=Capacity(scratch_bytes=500 * GiB, cores=8), updated_at=NOW),
             DrillHostEntry(host="drill-b", capacity=Capacity(scratch_bytes=200 * GiB, cores=4, drills=2),
                            drilling=["analytics"], updated_at=NOW))
    return FleetView("prod", NOW, WEEK, rows, hosts)


def test_overdue_claim_and_too_large_are_said_in_the_rows_and_the_summary() -> None:
    text = fleet_status(status_view(fleet_view(), BERLIN))
    lines = text.splitlines()
    ana = next(x for x in lines if x.startswith("analytics"))
    assert "OVERDUE by 2d" in ana and "FAILED" in ana and "drilled by drill-b since 2026-11-14 11:40 CET" in ana
    main_row = next(x for x in lines if x.startswith("main"))
    assert "passed" in main_row and "due 2026-11-19 12:00 CET" in main_row and "OVERDUE" not in main_row
    assert "on drill-a" in main_row and "10m10s" in main_row and "4.5s" in main_row
    wh = next(x for x in lines if x.startswith("warehouse"))
    assert "never drilled" in wh and "too large for every drill host (900.0 GiB)" in wh
    assert "drill-b: scratch 200.0 GiB, 4 cores, 2 drill(s) at once; drilling analytics" in text
    assert lines[-1] == ("3 cluster(s), 1 overdue (analytics), 1 drill(s) in flight, 1 too large for every drill "
                         "host (warehouse), 2 drill host(s) alive")


def test_times_are_in_the_configured_timezone() -> None:
    text = fleet_status(status_view(fleet_view(), BERLIN))
    assert "read 2026-11-14 12:00 CET (Europe/Berlin)" in text and "every 7d" in text
    utc = fleet_status(status_view(fleet_view(), ZoneInfo("UTC")))
    assert "read 2026-11-14 11:00 UTC (UTC)" in utc


def test_an_empty_fleet_says_so() -> None:
    text = fleet_status(status_view(FleetView("prod", NOW, WEEK, (), ()), BERLIN))
    assert "no cluster is registered in the fleet" in text and "no drill host is alive" in text


def test_status_json_is_documented_and_in_the_timezone() -> None:
    from opsd.report import jsonout

    out = jsonout.dump("fleet-status", status_view(fleet_view(), BERLIN))
    assert_documented(["fleet", "status", "--json"], out)
    data = json.loads(out)
    assert data["overdue"] == ["analytics"] and data["too_large"] == ["warehouse"] and data["claims"] == 1
    ana = data["clusters"][0]
    assert ana["overdue"] and ana["overdue_seconds"] == 2 * 86400 and ana["claim"]["host"] == "drill-b"
    assert ana["last_drill"]["finished_at"].endswith("+01:00") and data["read_at"] == "2026-11-14T12:00:00+01:00"


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as ei:
        main(argv)
    out, err = capsys.readouterr()
    return int(ei.value.code or 0), out, err


def _conf(tmp_path: Path, fleet: str) -> str:
    from tests.conftest import _me

    conf = tmp_path / "opsd.toml"
    conf.write_text(f'[opsd]\nstate_dir = "{tmp_path / "state"}"\nrun_as = "{_me()}"\n{fleet}')
    return str(conf)


@pytest.mark.parametrize("cmd", [["status"], ["status", "--json"], ["report", "--month", "2026-10"]])
def test_no_fleet_configured_exits_3_in_one_line(tmp_path: Path, capsys, cmd: list[str]) -> None:  # type: ignore[no-untyped-def]
    code, out, err = _cli(["--config", _conf(tmp_path, ""), "fleet", *cmd], capsys)
    assert code == 3 and out == ""
    assert err.splitlines()[0] == "opsd: error: no fleet: [fleet] endpoints is empty"


def test_etcd_unreachable_exits_1_in_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    conf = _conf(tmp_path, '[fleet]\nendpoints = ["http://127.0.0.1:9"]\ntimeout = "1s"\n')
    code, out, err = _cli(["--config", conf, "fleet", "status"], capsys)
    assert code == 1 and out == ""
    first = [x for x in err.splitlines() if x.startswith("opsd:")]
    assert len(first) == 1 and first[0].startswith("opsd: error: ") and "Traceback" not in err


def test_a_bad_month_is_a_usage_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    conf = _conf(tmp_path, '[fleet]\nendpoints = ["http://127.0.0.1:9"]\ntimeout = "1s"\n')
    code, _out, err = _cli(["--config", conf, "fleet", "report", "--month", "2026-13"], capsys)
    assert code == 2 and "invalid month '2026-13'" in err
