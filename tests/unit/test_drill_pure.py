"""Drill decisions without processes: target choice, stanza rotation, what marker rows prove, recovery point,
RTO/RPO objectives, restorability in 'opsd check', verify output, config guards, scratch removal."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opsd.actions.checks import restorability_results
from opsd.actions.drill.plan import judge_heartbeats, judge_objective, judge_recovery_point, pick_stanza, pick_target
from opsd.actions.restore.service import _options, default_launch
from opsd.actions.restore.window import compute_window
from opsd.adapters.files import remove_scratch
from opsd.adapters.pgbackrest_verify import parse_verify
from opsd.core.records.checks import CRITICAL, OK, WARNING
from opsd.core.records.drill import DrillResult
from opsd.core.records.runs import Run
from opsd.daemon.jobs import HEARTBEAT, enabled_jobs
from opsd.db.queries import HeartbeatRow
from opsd.errors import ConfigError, OpsdError
from opsd.settings import parse
from opsd_sandbox import records
from tests.unit.test_restore_pure import B1, B2, LAST_COMMIT, SEGS, T0, _commit, _info, _plan, _req

DATA = Path(__file__).resolve().parents[1] / "data"
MINUTE = timedelta(minutes=1)


def _window():  # type: ignore[no-untyped-def]
    return compute_window(_info(B1, B2), SEGS, _commit)


def test_latest_target_is_the_last_archived_commit() -> None:
    t = pick_target("latest", _window(), _info(B1, B2), heartbeat=MINUTE, rng=random.Random(1))
    assert t is not None and t.time == LAST_COMMIT and t.mode == "latest"


def test_random_targets_stay_in_the_window_and_a_heartbeat_after_a_backup_end() -> None:
    rng = random.Random(42)
    seen = set()
    for _ in range(300):
        t = pick_target("random", _window(), _info(B1, B2), heartbeat=MINUTE, rng=rng)
        assert t is not None
        assert B1.stop + MINUTE <= t.time <= LAST_COMMIT
        assert not (B2.stop <= t.time < B2.stop + MINUTE)  # never right after B2 ended
        seen.add(t.time >= B2.stop)
    assert seen == {True, False}  # both backups get drilled


def test_random_target_without_room_falls_back_to_latest_and_no_window_gives_none() -> None:
    t = pick_target("random", _window(), _info(B1, B2), heartbeat=timedelta(days=1), rng=random.Random(1))
    assert t is not None and t.time == LAST_COMMIT
    empty = compute_window(_info(), SEGS, _commit)
    assert pick_target("random", empty, _info(), heartbeat=MINUTE, rng=random.Random(1)) is None


def _run(rid: int, job: str, started: datetime, outcome: str = "ok", stanza: str = "main") -> Run:
    return Run(rid, job, "schedule", "h", 1, started, started + MINUTE, outcome,
               None if outcome == "ok" else "boom", _drilled(stanza, ok=outcome == "ok"))


def test_stanza_rotation_picks_never_drilled_then_the_oldest() -> None:
    runs = [_run(1, "drill", T0, stanza="a"), _run(2, "drill", T0 + MINUTE, stanza="b")]
    assert pick_stanza(["a", "b", "c"], runs) == "c"
    assert pick_stanza(["a", "b"], runs) == "a"
    assert pick_stanza(["a", "b"], [*runs, _run(3, "drill", T0 + 2 * MINUTE, stanza="a")]) == "b"


def _hb(i: int, at: datetime) -> HeartbeatRow:
    return HeartbeatRow(i, at, 1000 + i, "0/1000000")


ROWS = [_hb(i, T0 + i * MINUTE) for i in range(1, 8)]
TARGET = T0 + timedelta(minutes=5, seconds=30)


def test_heartbeats_all_present_none_after() -> None:
    restored = [r for r in ROWS if r.written_at <= TARGET]
    res = judge_heartbeats(restored, ROWS, TARGET, T0, MINUTE)
    assert res.status == OK and res.details["expected_rows"] == 5 and res.details["missing_rows"] == 0


def test_heartbeat_missing_before_target_is_critical() -> None:
    restored = [r for r in ROWS if r.written_at <= TARGET and r.id != 3]
    res = judge_heartbeats(restored, ROWS, TARGET, T0, MINUTE)
    assert res.status == CRITICAL and "1 of 5" in res.message and "id 3" in res.message


def test_heartbeat_after_target_is_critical() -> None:
    res = judge_heartbeats(ROWS[:6], ROWS, TARGET, T0, MINUTE)
    assert res.status == CRITICAL and "after the target" in res.message and "id 6" in res.message


def test_heartbeat_at_the_target_edge_is_not_counted_either_way() -> None:
    edge = _hb(9, TARGET - timedelta(milliseconds=300))  # written just before T, may commit after it
    restored = [r for r in ROWS if r.written_at <= TARGET]
    assert judge_heartbeats(restored, [*ROWS, edge], TARGET, T0, MINUTE).status == OK


def test_heartbeats_without_primary_or_table() -> None:
    restored = [r for r in ROWS if r.written_at <= TARGET]
    res = judge_heartbeats(restored, None, TARGET, T0, MINUTE)
    assert res.status == OK and res.details["compared_with"].startswith("restored copy only")
    stale = judge_heartbeats(restored[:2], None, TARGET, T0, MINUTE)
    assert stale.status == WARNING and "heartbeat job stopped" in stale.message
    assert judge_heartbeats(None, None, TARGET, T0, MINUTE).status == WARNING


def test_recovery_point() -> None:
    assert judge_recovery_point(TARGET - timedelta(seconds=20), TARGET, MINUTE).status == OK
    assert judge_recovery_point(TARGET + timedelta(seconds=1), TARGET, MINUTE).status == CRITICAL
    assert judge_recovery_point(TARGET - timedelta(hours=1), TARGET, MINUTE).status == WARNING


def test_objectives() -> None:
    assert judge_objective("rto", 30.0, MINUTE, "RTO").status == OK
    over = judge_objective("rto", 90.0, MINUTE, "RTO")
    assert over.status == WARNING and "over the target" in over.message


def _drilled(stanza: str, ok: bool = True) -> DrillResult:
    return records.drill(stanza, rto=60.0, rpo=5.0, restore_seconds=40.0, recovery_seconds=10.0,
                         checks=[("amcheck", OK if ok else CRITICAL, "")])


def test_restorability_in_check(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx = fake_ctx()
    now = datetime.now(UTC)
    [res] = [r for r in restorability_results(ctx, now) if r.name == "restorability"]
    assert res.status == WARNING and "no drill has passed" in res.message
    ctx.history.record("drill", "cli", now - timedelta(days=9), now - timedelta(days=9), "ok",
                       details=_drilled("main"))
    [res] = [r for r in restorability_results(ctx, now) if r.name == "restorability"]
    assert res.status == CRITICAL and "restorability stale" in res.message
    ctx.history.record("drill", "cli", now - timedelta(days=1), now - timedelta(days=1), "ok",
                       details=_drilled("main"))
    [res] = [r for r in restorability_results(ctx, now) if r.name == "restorability"]
    assert res.status == OK
    ctx.history.record("drill", "cli", now - timedelta(hours=1), now, "failed", error="amcheck: corrupt",
                       details=_drilled("main", ok=False))
    ctx.history.record("verify", "cli", now, now, "failed", error="repository damaged")
    got = {r.name: r for r in restorability_results(ctx, now)}
    assert got["restorability"].status == CRITICAL and "amcheck: corrupt" in got["restorability"].message
    assert got["repository.verify"].status == CRITICAL


def test_parse_verify_damaged() -> None:
    res = parse_verify((DATA / "verify_damaged.txt").read_text(), (DATA / "verify_damaged.stderr").read_text())
    assert res.stanza == "sandbox" and res.status == "error" and not res.ok
    archive, backup = res.items
    assert (archive.kind, archive.checked, archive.valid, archive.problems["other"]) == ("archive", 6, 5, 1)
    assert (backup.name, backup.status, backup.problems["checksum invalid"]) == ("20261125-200154F", "invalid", 1)
    assert res.damaged[0] == "invalid checksum '20261125-200154F/pg_data/base/1/112.zst'"
    assert len(res.damaged) == 2 and "backup 20261125-200154F (checksum invalid 1)" in res.summary()


def test_parse_verify_ok_and_garbage() -> None:
    ok = parse_verify("stanza: main\nstatus: ok\n  backup: 20261125-200154F, status: valid, total files checked: "
                      "9, total valid files: 9\n    missing: 0, checksum invalid: 0, size invalid: 0, other: 0\n")
    assert ok.ok and ok.items[0].ok
    with pytest.raises(ValueError):
        parse_verify("ERROR: [055]: unable to load info file")


def test_drill_config_never_points_at_production(settings_factory) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as ei:
        settings_factory(postgres={"port": 5432, "data_dir": "/srv/pg/data"},
                         drill={"port": 5432, "scratch_dir": "/srv/pg/data/scratch"})
    problems = ei.value.problems
    assert any(p.startswith("drill.port:") for p in problems)
    assert any(p.startswith("drill.scratch_dir:") for p in problems)
    ok = settings_factory(drill={"smoke_queries": [{"name": "orders", "sql": "select true"}]})
    assert ok.drill.smoke_queries[0].expect == "true" and ok.scratch_dir == ok.opsd.state_dir / "scratch"
    with pytest.raises(ConfigError):
        parse({"drill": {"smoke_queries": [{"name": "no sql"}]}})


def test_remove_scratch_refuses_anything_else(tmp_path: Path) -> None:
    root = tmp_path / "scratch"
    (root / "drill-main-1").mkdir(parents=True)
    (root / "drill-main-1" / "PG_VERSION").write_text("15")
    (tmp_path / "data").mkdir()
    for bad in (tmp_path / "data", root, root / "work", root / "drill-main-1" / ".." / ".." / "data"):
        with pytest.raises(OpsdError):
            remove_scratch(bad, root)
    remove_scratch(root / "drill-main-1", root)
    assert not (root / "drill-main-1").exists() and (tmp_path / "data").exists()


def test_drill_host_schedules_no_backups_and_no_heartbeat(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    primary = [s.job for s in enabled_jobs(fake_ctx(schedule={"drill": "0 3 * * 0"}))]
    assert "backup-full" in primary and "drill" in primary and HEARTBEAT in primary
    host = [s.job for s in enabled_jobs(fake_ctx(opsd={"role": "drill"}))]
    assert host == ["check", "verify", "drill", "report"]


def test_target_at_the_last_commit_stops_at_that_transaction(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    plan = _plan(_req(LAST_COMMIT, start=True))
    assert plan.pin is not None and not plan.refused
    assert any("transaction 900" in v.message and "stops right after it" in v.message for v in plan.verdicts)
    opts = _options(fake_ctx(), plan, default_launch(fake_ctx()))
    assert (opts.target_type, opts.target, opts.target_timeline) == ("xid", "900", "1")
    earlier = _plan(_req(LAST_COMMIT - MINUTE, start=True))
    assert earlier.pin is None
    assert _options(fake_ctx(), earlier, default_launch(fake_ctx())).target_type == "time"


def test_only_failures_about_the_data_count_as_damage() -> None:
    import psycopg

    from opsd.db.drill_reads import _failed
    from opsd.errors import NotChecked

    def failure(state: str) -> psycopg.Error:
        return psycopg.errors.lookup(state)("boom")  # the class psycopg raises for that SQLSTATE

    for state in ("42501", "P0001", "57014", "55P03", "55000", "08006", "38001", "53100"):
        assert isinstance(_failed(failure(state), "query amcheck_btree"), NotChecked), state
    for state in ("XX001", "XX002", "XX000", "58030", "22021"):
        err = _failed(failure(state), "query amcheck_heap")
        assert not isinstance(err, NotChecked) and "failed" in str(err), state
