"""A year of history costs nothing: ``[health] keep`` (parsing, the deprecated ``sample_retention``), which samples
thinning keeps (the worst of each figure, the first of a bucket, whole buckets only, the horizon), pruning in
bounded batches, and the queries the read paths make use an index (EXPLAIN QUERY PLAN on a few thousand rows,
not timings)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opsd import settings as settings_mod
from opsd.adapters.stores.health import HealthStore
from opsd.adapters.stores.runs import History
from opsd.core.records.health import ConnectionReport, HealthSample, LockReport
from opsd.core.thinning import DEFAULT_KEEP, SampleFigures, Tier, parse_keep, to_delete
from opsd.errors import ConfigError
from opsd_sandbox import records
from tests.conftest import _me

T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a whole day: buckets of every step start here
STEP = timedelta(minutes=5)


def _figs(i: int, at: datetime, *figures: float) -> SampleFigures:
    return SampleFigures(i, at, tuple(figures))


def test_keep_parses_tiers_and_prints_them_back() -> None:
    keep = parse_keep(DEFAULT_KEEP)
    assert keep.tiers == (Tier(None, timedelta(days=14)), Tier(timedelta(minutes=15), timedelta(days=90)),
                          Tier(timedelta(hours=1), timedelta(days=400)))
    assert keep.horizon == timedelta(days=400) and str(keep) == DEFAULT_KEEP
    assert parse_keep("5m:30d").tiers == (Tier(timedelta(minutes=5), timedelta(days=30)),)


@pytest.mark.parametrize(("text", "why"), [
    ("14d", "STEP:AGE"), ("all:14d, 15m:7d", "ages must grow"), ("all:1d, 1h:7d, 15m:30d", "coarser"),
    ("1h:1d, all:7d", "coarser"), ("2d:30d", "at most a day"), ("all:0s", "longer than zero"),
])
def test_keep_refuses_tiers_that_do_not_grow_coarser_and_older(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_keep(text)


def test_sample_retention_still_works_alone_and_conflicts_with_keep() -> None:
    base = {"opsd": {"state_dir": "/tmp/x", "run_as": _me()}}
    old = settings_mod.parse({**base, "health": {"sample_retention": "30d"}}).health
    assert old.retention.tiers == (Tier(None, timedelta(days=30)),)
    assert settings_mod.parse(base).health.retention == parse_keep(DEFAULT_KEEP)
    with pytest.raises(ConfigError, match="sample_retention is deprecated"):
        settings_mod.parse({**base, "health": {"sample_retention": "30d", "keep": "all:7d"}})
    with pytest.raises(ConfigError, match=r"health\.keep: .*ages must grow"):
        settings_mod.parse({**base, "health": {"keep": "all:7d, 1h:1d"}})


def test_thinning_keeps_the_worst_of_each_figure_and_the_first_of_each_bucket() -> None:
    rows = [_figs(i, T0 + timedelta(seconds=30 * i), 0.0, 10.0) for i in range(20)]  # two 5-minute buckets
    rows[3] = _figs(3, rows[3].taken_at, 45.0, 10.0)  # the bucket's longest lock wait
    rows[7] = _figs(7, rows[7].taken_at, 0.0, 93.0)  # its highest connection use
    rows[15] = _figs(15, rows[15].taken_at, 5.0, 93.0)  # second bucket: both worst in one sample
    kept = {r.id for r in rows} - set(to_delete(rows, STEP))
    assert kept == {0, 3, 7, 10, 15}


def test_thinning_ties_keep_the_first_and_buckets_start_on_their_edge() -> None:
    at = T0 + STEP  # exactly on an edge: the first sample of the second bucket
    rows = [_figs(1, at - timedelta(seconds=30), 1.0), _figs(2, at, 1.0), _figs(3, at + timedelta(seconds=30), 1.0)]
    assert to_delete(rows, STEP) == [3]
    assert to_delete([_figs(i, T0 + timedelta(seconds=i), 0.0) for i in range(5)], STEP) == [1, 2, 3, 4]


def _sample(at: datetime, *, lock: float = 0.0, used: int = 10) -> HealthSample:
    trees = []
    if lock:
        moment = records.lock_moment(7, waiters=2, longest_wait=lock, user="u", database="d", application="a")
        assert moment.tree is not None
        trees = [moment.tree]
    conns = ConnectionReport(total=used, usable=97, max_connections=100, reserved=3, by_state={"idle": used},
                             by_database={"d": used}, by_user={"u": used}, by_application={"a": used})
    return HealthSample(taken_at=at, locks=LockReport(trees, [], [], 0, 0), connections=conns)


@contextmanager
def _store(tmp_path: Path) -> Iterator[tuple[HealthStore, Path]]:
    h = History(tmp_path / "state", _me())
    h.runs(limit=1)
    with closing(sqlite3.connect(h.path)) as keeper:  # the file keeps its WAL between calls: fast inserts
        keeper.execute("SELECT 1 FROM runs LIMIT 1").fetchall()
        yield HealthStore(h.db), h.path


def _rows(path: Path) -> list[tuple[str, int, float | None]]:
    with closing(sqlite3.connect(path)) as c:
        return c.execute("SELECT taken_at, step, lock_wait FROM health_samples ORDER BY taken_at").fetchall()


def test_prune_keeps_recent_samples_whole_thins_older_and_deletes_past_the_horizon(tmp_path: Path) -> None:
    keep = parse_keep("all:2h, 5m:6h, 1h:10h")
    now = T0 + timedelta(hours=12)
    with _store(tmp_path) as (store, path):
        for i in range(12 * 60):  # a sample a minute for 12 hours
            at = T0 + timedelta(minutes=i)
            store.add_sample(_sample(at, lock=40.0 if i == 9 * 60 + 7 else 0.0, used=90 if i == 5 * 60 + 31 else 10))
        assert store.prune(keep, now, batches=100) > 0
        assert store.prune(keep, now, batches=100) == 0  # thinned once: nothing left to do
        rows = _rows(path)
    at = [datetime.fromisoformat(t) for t, _, _ in rows]
    assert min(at) == T0 + timedelta(hours=2)  # the 10 h horizon
    recent = [r for r, t in zip(rows, at, strict=True) if t >= now - timedelta(hours=2)]
    assert len(recent) == 120 and {s for _, s, _ in recent} == {0}  # every sample of the last 2 hours
    middle = [(t, s) for (_, s, _), t in zip(rows, at, strict=True)
              if now - timedelta(hours=6) <= t < now - timedelta(hours=2)]
    assert {s for _, s in middle} == {300}
    assert len(middle) == 48 + 1  # one per 5 minutes, and the lock wait of 09:07 beside its bucket's first
    old = [(t, s, w) for (_, s, w), t in zip(rows, at, strict=True) if t < now - timedelta(hours=6)]
    assert {s for _, s, _ in old} == {3600}
    assert (T0 + timedelta(hours=5, minutes=31), 3600, 0.0) in old  # the worst connection use of its hour
    with closing(sqlite3.connect(path)) as c:
        assert c.execute("SELECT count(*) FROM health_samples WHERE lock_wait = 40.0").fetchone()[0] == 1


def test_prune_works_in_bounded_batches_and_catches_up_over_calls(tmp_path: Path) -> None:
    keep = parse_keep("5m:1d")
    with _store(tmp_path) as (store, path):
        for i in range(600):  # 5 hours, a sample every 30 s: 60 buckets, 10 samples each
            store.add_sample(_sample(T0 + timedelta(seconds=30 * i)))
        first = store.prune(keep, T0 + timedelta(hours=5), batches=1)
        assert first == 32 * 9  # one transaction: at most 32 whole buckets
        store.prune(keep, T0 + timedelta(hours=5), batches=1)
        assert len(_rows(path)) == 60


def test_a_bucket_still_filling_is_not_thinned(tmp_path: Path) -> None:
    with _store(tmp_path) as (store, path):
        for i in range(15):
            store.add_sample(_sample(T0 + timedelta(seconds=30 * i)))
        store.prune(parse_keep("5m:1d"), T0 + timedelta(seconds=30 * 14), batches=10)
        assert [s for _, s, _ in _rows(path)] == [300] + [0] * 5  # the first bucket thinned, the second left


def _plan(path: Path, sql: str, *args: object) -> str:
    with closing(sqlite3.connect(path)) as c:
        return " ".join(r[3] for r in c.execute("EXPLAIN QUERY PLAN " + sql, args))


def test_read_paths_use_an_index_with_thousands_of_rows(tmp_path: Path) -> None:
    h = History(tmp_path / "state", _me())
    h.runs(limit=1)  # creates the file
    with closing(sqlite3.connect(h.path)) as c:
        c.executemany("INSERT INTO runs (job, trigger, host, pid, started_at, outcome) "
                      "VALUES (?, 's', 'h', 1, ?, 'ok')",
                      [(job, (T0 + timedelta(minutes=i)).isoformat()) for i in range(3000)
                       for job in ("check", "backup-diff")])
        c.execute("ANALYZE")
        c.commit()
    path = h.path
    assert "runs_started" in _plan(path, "SELECT * FROM runs WHERE started_at >= ? AND started_at < ? "
                                         "ORDER BY started_at, id", "a", "b")
    assert "runs_job_started" in _plan(path, "SELECT * FROM runs WHERE job = ? ORDER BY started_at DESC, id DESC "
                                             "LIMIT 1", "check")
    assert "health_samples_step" in _plan(path, "SELECT min(taken_at) FROM health_samples WHERE step = ? AND "
                                                "taken_at < ?", 0, "z")
    assert "health_samples_taken" in _plan(path, "SELECT data FROM health_samples WHERE taken_at >= ? AND "
                                                 "taken_at < ? ORDER BY taken_at, id", "a", "b")
    assert len(h.between(T0, T0 + timedelta(hours=1))) == 120
    assert [r.started_at for r in h.among_last("check", "ok", limit=3)] == [
        T0 + timedelta(minutes=m) for m in (2999, 2998, 2997)]
