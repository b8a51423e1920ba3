"""The query objectives counted (pure verdicts, the store's reads and writes, the report): executions over each
threshold by selector, days met / missed / unknown / incomplete / no statements, gaps, contributors, hidden texts,
and the log positions saved with the counts."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from opsd.actions.queries.objectives import objective_report
from opsd.adapters.stores.objectives import LogMark, ObjectiveStore
from opsd.context import Context
from opsd.core.queries.logline import LogPosition, SlowExec, log_source
from opsd.core.queries.objectives import Target, count_over, days_of, judge, judge_days, state_of
from opsd.core.records.objectives import Window
from opsd.errors import UsageError

PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 11, 3, 23, 0, tzinfo=UTC)  # midnight in Paris
TOL = timedelta(minutes=10)


def _ex(qid: int, ms: float, db: str = "shop", role: str = "app") -> SlowExec:
    return SlowExec(at=None, queryid=qid, dbname=db, rolname=role, application="x", duration_ms=ms)


def test_count_over_by_threshold_and_selector() -> None:
    all_ = Target("all", 100.0, 0.95)
    rep = Target("reporting", 5000.0, 0.95, role="reporting")
    shop = Target("shop", 100.0, 0.99, database="shop")
    execs = [_ex(1, 100.0), _ex(1, 99.999), _ex(2, 6000, role="reporting"), _ex(3, 250, db="other"),
             _ex(2, 4999.9, role="reporting")]
    assert count_over(execs, [all_, rep, shop]) == {
        ("all", 1, "shop", "app"): 1, ("all", 2, "shop", "reporting"): 2, ("all", 3, "other", "app"): 1,
        ("reporting", 2, "shop", "reporting"): 1, ("shop", 1, "shop", "app"): 1, ("shop", 2, "shop", "reporting"): 2}


def test_state_rules() -> None:
    assert state_of(100, 5, 0.95, False, False) == "met"  # exactly at the target
    assert state_of(100, 6, 0.95, False, False) == "missed"
    assert state_of(10, 1, 0.9, False, False) == "met"  # 0.9 as written, not the float under it
    assert state_of(0, 0, 0.95, False, False) == "no_statements"
    assert state_of(0, 3, 0.95, False, False) == "missed"
    assert state_of(100, 0, 0.95, True, True) == "unknown"
    assert state_of(100, 0, 0.95, False, True) == "incomplete"


def _w(i: int, minutes: int, calls: int = 100, over: int = 0, **kw: Any) -> Window:
    return Window(**{"snapshot_id": i, "taken_at": T0 + timedelta(minutes=minutes),
                     "since": T0 + timedelta(minutes=minutes - 5), "statements": True, "reset": False,
                     "dealloc": 0, "log_state": "complete", "calls": calls, "over": over, **kw})


def _day(n: int, **bad: dict[int, dict[str, Any]]) -> list[Window]:
    """A whole day of 5-minute windows, from snapshot n * 1000."""
    return [_w(n * 1000 + k, n * 1440 + 5 * k, **bad.get("at", {}).get(k, {})) for k in range(1, 289)]


def test_a_whole_day_met_then_one_missed() -> None:
    ws = _day(0) + _day(1, at={7: {"over": 2000}})
    days = judge_days(ws, T0, T0 + timedelta(days=2), 0.95, zone=PARIS, tolerance=TOL)
    assert [(d.day, d.calls, d.over, d.state) for d in days] == [("2026-11-04", 28700, 0, "met"),
                                                                ("2026-11-05", 28800, 2000, "missed")]
    assert days[1].share_over == pytest.approx(2000 / 28800) and days[0].reasons == []


def test_unknown_log_beats_incomplete_and_says_why() -> None:
    ws = _day(0, at={3: {"log_state": "unknown", "problems": ["x.json was rotated away"]},
                     4: {"log_state": "unknown", "problems": ["x.json was rotated away"]},
                     9: {"dealloc": 4}})
    calls, _over, state, why = judge(ws, T0, T0 + timedelta(days=1), 0.95, zone=PARIS, tolerance=TOL)
    assert state == "unknown" and calls == 28800
    assert why == ["duration log unknown: x.json was rotated away (2 windows from 2026-11-04 00:15)",
                   "pg_stat_statements evicted statements (pg_stat_statements_info.dealloc; raise "
                   "pg_stat_statements.max)"]


@pytest.mark.parametrize(("bad", "says"), [
    ({"statements": False}, "pg_stat_statements could not be read"),
    ({"reset": True}, "the counters restarted"),
    ({"dealloc": 1}, "evicted"),
])
def test_incomplete_windows(bad: dict[str, Any], says: str) -> None:
    ws = _day(0, at={100: bad})
    _, _, state, why = judge(ws, T0, T0 + timedelta(days=1), 0.95, zone=PARIS, tolerance=TOL)
    assert state == "incomplete" and says in why[0]


def test_gaps_and_windows_that_straddle_midnight() -> None:
    ws = [w for w in _day(0) if not 60 <= w.snapshot_id % 1000 < 90]  # 2.5 h without a snapshot...
    ws = [w if w.snapshot_id % 1000 != 90 else _w(90, 450, since=T0 + timedelta(minutes=295)) for w in ws]
    _, _, state, why = judge(ws, T0, T0 + timedelta(days=1), 0.95, zone=PARIS, tolerance=TOL)
    assert state == "met" and why == []  # ...covered by the window after it: nothing lost
    late = _day(0)[12:]  # opsd started at 01:00
    _, _, state, why = judge(late, T0, T0 + timedelta(days=1), 0.95, zone=PARIS, tolerance=TOL)
    assert state == "incomplete" and why == ["no snapshot from 2026-11-04 00:00 to 2026-11-04 01:00"]
    straddle = [_w(1, 1440 + 5, since=T0 + timedelta(hours=20)), *_day(1)[1:]]
    days = judge_days(straddle, T0 + timedelta(days=1), T0 + timedelta(days=2), 0.95, zone=PARIS, tolerance=TOL)
    assert days[0].state == "incomplete"
    assert days[0].reasons == ["the first window also counts the calls from 2026-11-04 20:00 to 2026-11-05 00:00"]
    empty = judge_days([], T0, T0 + timedelta(hours=2), 0.95, zone=PARIS, tolerance=TOL)
    assert [(d.state, d.reasons) for d in empty] == [("unknown", ["no snapshot from 2026-11-04 00:00 to "
                                                                  "2026-11-04 02:00"])]


def test_days_follow_the_timezone_across_dst() -> None:
    start = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # Paris: 25 October, the day of 25 hours
    days = days_of(start, start + timedelta(hours=49), PARIS)
    assert [(d, (hi - lo).total_seconds() / 3600) for d, lo, hi in days] == [
        ("2026-10-25", 25.0), ("2026-10-26", 24.0)]


def test_log_source_decisions() -> None:
    good = {"log_destination": "stderr,jsonlog", "logging_collector": "on", "log_min_duration_statement": "100",
            "data_directory": "/var/lib/postgresql/15/main", "log_directory": "log", "lc_messages": "C.UTF-8",
            "log_timezone": "Etc/UTC"}
    src = log_source(good, directory=None, fmt="auto", lowest_ms=100.0)
    assert (src.directory, src.fmt, src.problems) == ("/var/lib/postgresql/15/main/log", "jsonlog", ())
    assert log_source({**good, "log_directory": "/var/log/pg"}, directory=None, fmt="auto",
                      lowest_ms=100).directory == "/var/log/pg"
    assert log_source(good, directory="/srv/log", fmt="auto", lowest_ms=100).directory == "/srv/log"
    bad = log_source({**good, "log_destination": "stderr", "logging_collector": "off", "lc_messages": "fr_FR.UTF-8",
                      "log_min_duration_statement": "250", "data_directory": ""}, directory=None, fmt="auto",
                     lowest_ms=100)
    assert bad.fmt is None and bad.directory is None and len(bad.problems) == 5
    assert "log_min_duration_statement is 250 ms, above the lowest objective threshold (100 ms)" in bad.problems[0]
    assert log_source({**good, "log_min_duration_statement": "-1"}, directory=None, fmt="csvlog",
                      lowest_ms=100).problems == ("log_min_duration_statement is -1 (no duration logged)",
                                                  "log_destination 'stderr,jsonlog' has no csvlog")


@pytest.mark.parametrize("change", [
    {"log_min_duration_statement": "101"}, {"log_min_duration_statement": "100"}, {"logging_collector": "off"},
    {"log_destination": "stderr"}, {"log_destination": "csvlog"}, {"lc_messages": "de_DE.UTF-8"},
    {"lc_messages": "en_US.UTF-8"}, {"lc_messages": ""}, {"compute_query_id": "off"},
    {"pg_stat_statements.track": "none"}, {"pg_stat_statements.track_utility": "off"},
])
def test_the_log_reader_and_the_check_judge_alike(change: dict[str, str]) -> None:
    """One rule (core/queries/counting.log_faults): what makes the snapshot's window unknown is what the
    queries check warns about, word for word."""
    from opsd.actions.queries.prereq import Facts, missing

    ready = {"shared_preload_libraries": "pg_stat_statements", "compute_query_id": "auto",
             "log_min_duration_statement": "100", "logging_collector": "on", "log_destination": "stderr,jsonlog",
             "lc_messages": "C", "track_io_timing": "on", "data_directory": "/d", "log_directory": "log"}
    server = {**ready, **change}
    src = log_source(server, directory=None, fmt="auto", lowest_ms=100.0)
    found = missing(Facts(settings=server, extension=True, read_all_stats=True), timedelta(milliseconds=100), "auto")
    assert list(src.problems) == [m.what for m in found]


def test_overrides_that_cover_a_selector() -> None:
    from opsd.core.queries.counting import override_faults, overrides_of

    found = [*overrides_of("shop", None, ["lc_messages=fr_FR.UTF-8", "work_mem=64MB"]),
             *overrides_of(None, "reporting", ["log_min_duration_statement=10s"]),
             *overrides_of(None, "batch", ["log_min_duration_statement=-1", "pg_stat_statements.track=none"]),
             *overrides_of("shop", "app", ["pg_stat_statements.track_utility=off", "log_duration=on"]),
             *overrides_of("crm", None, ["log_min_duration_statement=50"])]  # lower: logs more, fine
    assert override_faults(found, 100, "crm", "app") == []
    assert override_faults(found, 100, "crm", "reporting") == [
        "ALTER ROLE reporting SET log_min_duration_statement = 10s: log_min_duration_statement is 10s, above the "
        "threshold (100 ms)"]
    assert override_faults(found, 10_000, "crm", "reporting") == []  # the reporting objective's own threshold
    assert len(override_faults(found, 100, None, None)) == 5  # every statement: each override covers some
    assert override_faults(found, 100, "shop", "app") == [
        "ALTER DATABASE shop SET lc_messages = fr_FR.UTF-8: the duration log of those sessions is translated",
        "ALTER ROLE app IN DATABASE shop SET pg_stat_statements.track_utility = off: utility statements' calls are "
        "not counted"]
    assert override_faults(found, 100, "crm", "batch") == [
        "ALTER ROLE batch SET log_min_duration_statement = -1: log_min_duration_statement is -1 (no duration logged)",
        "ALTER ROLE batch SET pg_stat_statements.track = none: pg_stat_statements counts no calls"]


def test_a_changed_definition_is_unknown_before_it_was_counted() -> None:
    """An objective added, its threshold lowered or its selector changed: the windows counted under another
    definition are unknown for it, never met."""
    ws = _day(0, at={k: {"counted": False} for k in range(1, 145)})
    _, _, state, why = judge(ws, T0, T0 + timedelta(days=1), 0.95, zone=PARIS, tolerance=TOL,
                             described="50 ms, every database, every role")
    assert state == "unknown"
    assert why == ["not counted under this definition (50 ms, every database, every role) before 2026-11-04 12:00: "
                   "the objective was added or changed then"]
    ws = _day(0, at={7: {"count_problem": "ALTER ROLE batch SET log_min_duration_statement = -1: ..."}})
    _, _, state, why = judge(ws, T0, T0 + timedelta(days=1), 0.95, zone=PARIS, tolerance=TOL)
    assert state == "unknown" and why == ["not counted exactly: ALTER ROLE batch SET log_min_duration_statement = "
                                          "-1: ..."]


def test_a_day_missed_misses_the_period() -> None:
    """Each day of a month met but one, the month's share still over the target: the month is missed (the
    monthly report's rule, and opsd queries --month's)."""
    from opsd.core.queries.objectives import period_state

    ws = _day(0) + _day(1, at={7: {"over": 2000}}) + _day(2) + _day(3)
    lo, hi = T0, T0 + timedelta(days=4)
    calls, over, total, _ = judge(ws, lo, hi, 0.95, zone=PARIS, tolerance=TOL)
    assert total == "met" and over / calls < 0.05
    days = judge_days(ws, lo, hi, 0.95, zone=PARIS, tolerance=TOL)
    assert period_state(total, days) == "missed"


# ------------------------------------------------------------------------------------------- the store and report
def _snapshot(c: Any, node: str, taken: datetime, since: datetime | None, **kw: Any) -> int:
    cur = c.execute("INSERT INTO query_snapshots (node, taken_at, since, statements, reset, dealloc, log_state, "
                    "problems) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (node, taken.isoformat(), since.isoformat() if since else None, kw.get("statements", 1),
                     kw.get("reset", 0), kw.get("dealloc", 0), kw.get("log_state", "complete"),
                     json.dumps(kw.get("problems", []))))
    return int(cur.lastrowid)


def _stat(c: Any, sid: int, qid: int, calls: int, total_ms: float, db: str = "shop", role: str = "app") -> None:
    c.execute("INSERT INTO query_stats VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
              (sid, qid, db, role, calls, total_ms, calls * 2, 10, 3, 0, 1, 512))


def _names(monkeypatch: pytest.MonkeyPatch, databases: set[str], roles: set[str]) -> Callable[..., Any]:
    """The server's databases and roles, as the selectors' check reads them (opsd.db.objectives.names)."""
    import contextlib

    monkeypatch.setattr("opsd.db.objectives.names", lambda _conn: (databases, roles))
    return lambda *_a, **_k: contextlib.nullcontext()


@pytest.fixture
def filled(fake_ctx: Callable[..., Context], monkeypatch: pytest.MonkeyPatch) -> tuple[Context, list[int]]:
    ctx = fake_ctx(opsd={"timezone": "Europe/Paris"},
                   queries={"objectives": [{"name": "all", "threshold": "100ms", "target": 0.95},
                                           {"name": "rep", "threshold": "5s", "target": 0.9, "role": "reporting"}]})
    ctx.now = lambda: T0 + timedelta(minutes=61)
    store = ObjectiveStore(ctx.history.db)
    ids = []
    with ctx.history.db.connect() as c:
        ids.append(_snapshot(c, "pg1", T0 - timedelta(minutes=5), None))
        for k in range(1, 13):
            ids.append(_snapshot(c, "pg1", T0 + timedelta(minutes=5 * k), T0 + timedelta(minutes=5 * (k - 1))))
            _stat(c, ids[-1], 11, 100, 900.0)  # fast
            _stat(c, ids[-1], 22, 2, 600.0)  # slow: 300 ms
            _stat(c, ids[-1], 33, 1, 7000.0, role="reporting")
            _stat(c, ids[-1], 0, 5, 50.0, role="other")  # hidden from opsd's role
        c.execute("INSERT INTO query_texts VALUES (22, 'shop', 'app', 'select * from \"stockMovements\" where "
                  "sku = $1', ?)", (T0.isoformat(),))
        _snapshot(c, "standby", T0 + timedelta(minutes=30), T0)  # another node's: not counted
    counted = {("all", Target("all", 100, 0.95).definition): "",
               ("rep", Target("rep", 5000, 0.9, role="reporting").definition): ""}
    for k, sid in enumerate(ids[1:]):
        store.record(sid, "pg1", {("all", 22, "shop", "app"): 2, ("all", 33, "shop", "reporting"): 1,
                                  ("rep", 33, "shop", "reporting"): 1, ("all", 44, "shop", "app"): 0},
                     LogPosition("/log/a.json", 7, 100 * k), T0,
                     mark=LogMark(None, counted=counted, seen={("/log/a.json", 7): 100 * k}))
    ctx.connect = _names(monkeypatch, {"shop"}, {"app", "reporting"})  # type: ignore[method-assign]
    return ctx, ids


def test_store_positions_and_windows(filled: tuple[Context, list[int]]) -> None:
    ctx, ids = filled
    store = ObjectiveStore(ctx.history.db)
    assert store.position("pg1") == LogPosition("/log/a.json", 7, 1100) and store.log_node() == "pg1"
    assert store.snapshot_node(ids[0]) == ("pg1", None)
    store.record(ids[-1], "pg1", {}, None, T0)  # a problem: no position, the node still known
    assert store.position("pg1") is None and store.log_node() == "pg1"
    ws = store.windows("pg1", Target("all", 100, 0.95), T0, T0 + timedelta(minutes=61))
    assert len(ws) == 12 and all(w.calls == 108 and w.over == 3 for w in ws)
    rep = store.windows("pg1", Target("rep", 5000, 0.9, role="reporting"), T0, T0 + timedelta(minutes=61))
    assert {(w.calls, w.over) for w in rep} == {(1, 1)}


def test_report(filled: tuple[Context, list[int]]) -> None:
    ctx, _ = filled
    rep = objective_report(ctx, T0, T0 + timedelta(days=1))
    assert rep.node == "pg1" and rep.timezone == "Europe/Paris"
    everything, reporting = rep.objectives
    assert (everything.calls, everything.over, everything.state) == (12 * 108, 36, "met")
    assert [d.day for d in everything.days] == ["2026-11-04"]  # cut at now: 01:00 in Paris
    top = everything.top
    assert [(c.queryid, c.over, c.calls) for c in top] == [(22, 24, 24), (33, 12, 12)]
    assert top[0].text == 'select * from "stockMovements" where sku = $1' and top[0].mean_ms == 300.0
    assert (top[0].rows, top[0].shared_read, top[0].shared_hit, top[0].wal_bytes) == (48, 36, 120, 6144)
    assert top[1].text is None
    assert (reporting.calls, reporting.over, reporting.state) == (12, 12, "missed")
    assert any("lacks pg_read_all_stats" in n for n in rep.notes)
    only = objective_report(ctx, T0, T0 + timedelta(days=1), "rep")
    assert [o.name for o in only.objectives] == ["rep"] and not only.all_met
    with pytest.raises(UsageError, match="no objective named 'nope'"):
        objective_report(ctx, T0, T0 + timedelta(days=1), "nope")


def _unreachable(*_a: Any, **_k: Any) -> Any:
    from opsd.errors import DatabaseError

    raise DatabaseError("connection refused")


def test_report_before_any_snapshot(fake_ctx: Callable[..., Context]) -> None:
    ctx = fake_ctx()
    ctx.connect = _unreachable  # type: ignore[method-assign]
    rep = objective_report(ctx, ctx.now() - timedelta(hours=24), ctx.now())
    assert rep.node is None and [o.state for o in rep.objectives] == ["unknown", "unknown"]
    assert "no snapshot has read the duration log yet" in rep.objectives[0].reasons[0]
    assert rep.notes == ["the objectives' database/role selectors could not be checked (the server: connection "
                         "refused)"]


def test_a_selector_naming_nothing_is_not_clean(filled: tuple[Context, list[int]],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """role = "reportng": no statement ever matches; that is not "no statements" (exit 0) but unmatched."""
    ctx, _ = filled
    ctx.connect = _names(monkeypatch, {"shop"}, {"app", "reporting"})  # type: ignore[method-assign]
    object.__setattr__(ctx.settings.queries.objectives[1], "role", "reportng")
    with ctx.history.db.connect() as c:  # configured so from the start: counted, nothing over
        c.execute("UPDATE query_counted SET definition = ? WHERE objective = 'rep'",
                  (Target("rep", 5000, 0.9, role="reportng").definition,))
        c.execute("DELETE FROM query_over WHERE objective = 'rep'")
    rep = objective_report(ctx, T0, T0 + timedelta(days=1))
    assert rep.objectives[1].state == "unmatched" and not rep.all_met
    assert rep.objectives[1].reasons[0] == ("the selector names role 'reportng', which the server does not have "
                                            "([queries] objectives): it matches no statement")
    assert rep.objectives[0].state == "met"


def test_console(filled: tuple[Context, list[int]]) -> None:
    from opsd.report.queries_console import report

    ctx, _ = filled
    text = report(objective_report(ctx, T0, T0 + timedelta(days=1)), PARIS)
    assert "objective all: 95% under 100 ms, every statement: MET (97.22% under; 36 of 1296 executions at or over)" \
        in text
    assert "objective rep: 90% under 5 s, role reporting: MISSED (0.00% under; 12 of 12 executions at or over)" in text
    assert '1: select * from "stockMovements" where sku = $1' in text and "2: (text hidden or not seen)" in text
    assert "2026-11-04  1296   36    97.22%  MET" in text


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from opsd.cli import main

    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return int(e.value.code or 0), out.out, out.err


def test_cli_exit_codes(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import _me

    conf = tmp_path / "opsd.toml"
    head = f'[opsd]\nstate_dir = "{tmp_path}"\nrun_as = "{_me()}"\n'
    conf.write_text(head + "[queries]\nenabled = false\n")
    code, _, err = _cli(["--config", str(conf), "queries"], capsys)
    assert code == 3 and "opsd: error: [queries] is turned off (enabled = false)" in err
    conf.write_text(head + "[queries]\nobjectives = []\n")
    assert _cli(["--config", str(conf), "queries"], capsys)[0] == 3
    conf.write_text(head)
    code, _, err = _cli(["--config", str(conf), "queries", "--since", "1h", "--month", "2026-11"], capsys)
    assert code == 2 and "--since and --month cannot be given together" in err
    code, _, err = _cli(["--config", str(conf), "queries", "--objective", "nope"], capsys)
    assert code == 2 and "no objective named 'nope' in [queries] objectives (there are: all, reporting)" in err
    code, out, err = _cli(["--config", str(conf), "queries", "--month", "2026-11", "--json"], capsys)
    assert code == 1 and "objective(s) not met: all unknown, reporting unknown" in err
    rep = json.loads(out)
    assert rep["since"].startswith("2026-11-01T00:00:00") and rep["objectives"][0]["state"] == "unknown"
    assert len(rep["objectives"][0]["days"]) == 30


def test_a_window_owes_lines_it_did_not_read_whole(filled: tuple[Context, list[int]]) -> None:
    """The read stopped at the limit, or opsd stopped between a snapshot and its log: the next window counts
    lines of an earlier one, so it is unknown too (the position remembers for which snapshot it was read)."""
    from opsd.actions.queries.slowlog import _owed

    ctx, ids = filled
    store = ObjectiveStore(ctx.history.db)
    pos = LogPosition("/log/a.json", 7, 5)
    store.record(ids[5], "pg1", {}, pos, T0, mark=LogMark(pos, seen={("/log/a.json", 7): 5}))
    mark = store.mark("pg1")
    assert (mark.position, mark.snapshot_id, mark.owed, dict(mark.seen)) == (pos, ids[5], "", {("/log/a.json", 7): 5})
    assert _owed(store, "pg1", ids[6], mark) == []  # read for the snapshot just before: whole
    assert "not read for the previous snapshot" in _owed(store, "pg1", ids[7], mark)[0]  # ids[6] never read
    store.record(ids[6], "pg1", {}, pos, T0, mark=LogMark(pos, owed="the duration log is 3.0 MiB behind"))
    assert _owed(store, "pg1", ids[7], store.mark("pg1")) == ["the duration log is 3.0 MiB behind"]


def test_since_zero_is_a_usage_error(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import _me

    conf = tmp_path / "opsd.toml"
    conf.write_text(f'[opsd]\nstate_dir = "{tmp_path}"\nrun_as = "{_me()}"\n')
    code, _, err = _cli(["--config", str(conf), "queries", "--since", "0s"], capsys)
    assert code == 2 and "--since 0s is an empty period" in err


def test_the_definitions_of_pruned_snapshots_go(filled: tuple[Context, list[int]]) -> None:
    ctx, ids = filled
    with ctx.history.db.connect() as c:
        c.execute("DELETE FROM query_snapshots WHERE id <= ?", (ids[3],))
    ObjectiveStore(ctx.history.db).record(ids[-1], "pg1", {}, None, T0)
    with ctx.history.db.connect() as c:
        assert tuple(c.execute("SELECT min(snapshot_id), count(*) FROM query_counted").fetchone()) == (ids[4], 2 * 9)


def test_a_merged_hour_is_as_incomplete_as_its_worst_part(fake_ctx: Callable[..., Context]) -> None:
    """Thinning by the hour: a part where pg_stat_statements was not read leaves the hour incomplete, a part not
    counted under a definition leaves it unknown for that objective; a node's first snapshot (no window) does
    not count against it."""
    from opsd.adapters.stores.queries import QueryStore

    ctx = fake_ctx()
    a, b = Target("a", 100, 0.95), Target("b", 50, 0.95)
    store = ObjectiveStore(ctx.history.db)
    with ctx.history.db.connect() as c:
        first = _snapshot(c, "pg1", T0 + timedelta(minutes=1), None, statements=0)
        parts = [_snapshot(c, "pg1", T0 + timedelta(minutes=5 * k), T0 + timedelta(minutes=5 * k - 5),
                           statements=0 if k == 3 else 1) for k in range(1, 12)]
        _snapshot(c, "pg2", T0 + timedelta(minutes=1), None, statements=0)
        for k in range(1, 12):
            _snapshot(c, "pg2", T0 + timedelta(minutes=5 * k), T0 + timedelta(minutes=5 * k - 5))
    for sid in (first, *parts):
        defs = {("a", a.definition): ""} | ({} if sid == parts[4] else {("b", b.definition): ""})
        store.record(sid, "pg1", {}, None, T0, mark=LogMark(None, counted=defs))
    QueryStore(ctx.history.db).thin(T0 + timedelta(days=3), UTC)
    [hour_a] = store.windows("pg1", a, T0, T0 + timedelta(hours=1))
    [hour_b] = store.windows("pg1", b, T0, T0 + timedelta(hours=1))
    assert hour_a.snapshot_id == parts[-1] and hour_a.since == T0 + timedelta(minutes=1)
    assert not hour_a.statements and hour_a.counted and not hour_b.counted
    [other] = store.windows("pg2", a, T0, T0 + timedelta(hours=1))  # a first snapshot does not spoil its hour
    assert other.statements and other.log_state == "complete" and other.since == T0 + timedelta(minutes=1)
