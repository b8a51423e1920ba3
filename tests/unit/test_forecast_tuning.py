"""The backup window forecast and pgBackRest tuning advice: pure judgements on facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from opsd.actions.backup.forecast import judge_forecast, judge_last, window_results
from opsd.actions.tuning import HIGH_WAL_RATE, TuningFacts, judge, wal_rate
from opsd.adapters.pgbackrest import BackupInfo
from opsd.core.backup_window import Done, forecast, growth_per_day, parse_window
from opsd.settings import Settings

GIB = 1024**3
BERLIN = ZoneInfo("Europe/Berlin")


def _settings(window: str = "01:00-05:00", full: str = "0 1 * * *") -> Settings:
    return Settings.model_validate({"opsd": {"timezone": "Europe/Berlin"},
                                    "schedule": {"backup_window": window, "full": full}})


def _full(day: int, size_gib: float, hours: float, start_hour: int = 1) -> Done:
    start = datetime(2026, 11, day, start_hour, 0, tzinfo=BERLIN)
    return Done("full", start, start + timedelta(hours=hours), int(size_gib * GIB))


def test_window_parsing_and_occurrences_across_midnight() -> None:
    w = parse_window("23:00-04:00")
    assert w is not None and w.text == "23:00-04:00"
    at_2 = datetime(2026, 11, 30, 2, 0, tzinfo=BERLIN)
    assert w.around(at_2, BERLIN) == (datetime(2026, 11, 29, 23, 0, tzinfo=BERLIN),
                                      datetime(2026, 11, 30, 4, 0, tzinfo=BERLIN))
    assert w.around(datetime(2026, 11, 30, 12, 0, tzinfo=BERLIN), BERLIN) is None
    assert w.next_after(datetime(2026, 11, 30, 12, 0, tzinfo=BERLIN), BERLIN)[0] == \
        datetime(2026, 11, 30, 23, 0, tzinfo=BERLIN)
    assert parse_window("") is None
    for bad in ("1-5", "25:00-05:00", "01:00-01:00", "01:00"):
        with pytest.raises(ValueError, match="backup window"):
            parse_window(bad)


def test_growth_is_the_least_squares_slope_of_recent_sizes() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    history = [_full(d, 100 + 2 * d, 1) for d in range(20, 30)]  # 2 GiB a day
    assert growth_per_day(history, now) == pytest.approx(2 * GIB, rel=1e-6)
    assert growth_per_day(history[:1], now) == 0.0


def test_forecast_uses_the_median_speed_of_recent_fulls_and_the_growth() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    history = [_full(d, 100 + 2 * d, 2.0) for d in range(25, 30)]  # about 55 GiB/h, growing 2 GiB/day
    start = datetime(2026, 12, 1, 1, 0, tzinfo=BERLIN)
    f = forecast(history, start, now)
    assert f is not None and f.fulls == 5
    days = (start - history[-1].stop).total_seconds() / 86400  # since the newest (158 GiB)
    assert f.size == pytest.approx((158 + 2 * days) * GIB, rel=1e-6) and f.growth_per_day == pytest.approx(2 * GIB)
    assert f.rate == pytest.approx(154 * GIB / 7200, rel=1e-6)  # the median full: 154 GiB in 2 h
    assert f.end - start == timedelta(seconds=f.seconds) and 7300 < f.seconds < 7600
    assert forecast([Done("diff", start, start, GIB)], start, now) is None  # no full: no speed to learn


def test_the_forecast_is_judged_against_the_window_it_starts_in() -> None:
    s = _settings()
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    start = datetime(2026, 12, 1, 1, 0, tzinfo=BERLIN)
    slow = forecast([_full(29, 400, 3.5)], start, now)  # 3.5 h for 400 GiB, and it does not grow
    assert slow is not None
    ok = judge_forecast(slow, parse_window("01:00-05:00"), s)  # type: ignore[arg-type]
    assert ok.status == "ok" and "before the backup window 01:00-05:00 closes" in ok.message
    late = judge_forecast(slow, parse_window("01:00-04:00"), s)  # type: ignore[arg-type]
    assert late.status == "warning" and "30m after the backup window 01:00-04:00 closes" in late.message
    assert late.details["window_end"] == datetime(2026, 12, 1, 4, 0, tzinfo=BERLIN).timestamp()
    outside = judge_forecast(slow, parse_window("02:00-05:00"), s)  # type: ignore[arg-type]
    assert outside.status == "warning" and "outside the backup window" in outside.message


def test_the_last_full_against_its_own_night() -> None:
    s = _settings()
    w = parse_window("01:00-05:00")
    assert w is not None
    assert judge_last(_full(29, 100, 3.9), w, s).status == "ok"
    over = judge_last(_full(29, 100, 4.5), w, s)
    assert over.status == "warning" and "30m after the backup window" in over.message
    assert "outside" in judge_last(_full(29, 100, 1, start_hour=12), w, s).message


def _info(label: str, typ: str, start: datetime, hours: float, size: int, wal_stop: str) -> BackupInfo:
    return BackupInfo(label, typ, start, start + timedelta(hours=hours), size, size, size // 4, size // 4, None,
                      wal_stop, None, None, None, (), False)


def test_window_results_without_a_window_still_carry_the_forecast_for_the_metric() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    backups = [_info("F1", "full", datetime(2026, 11, 30, 0, tzinfo=UTC), 2, 100 * GIB, "000000010000000A00000010")]
    results, f = window_results(_settings(window=""), backups, now)
    assert results == [] and f is not None and f.window_end is None and f.seconds == pytest.approx(7200, rel=0.01)
    results, f = window_results(_settings(), backups, now)
    assert [r.name for r in results] == ["backup.window.forecast", "backup.window.last"] and f is not None
    assert f.window == "01:00-05:00" and f.window_end is not None
    assert window_results(_settings(full=""), backups, now)[1] is None  # no full schedule: nothing to forecast


def test_wal_rate_between_the_last_two_backups() -> None:
    t = datetime(2026, 11, 29, 0, tzinfo=UTC)
    backups = [_info("F1", "full", t, 1, GIB, "000000010000000000000010"),
               _info("D1", "diff", t + timedelta(hours=12), 1, GIB, "000000010000000000000100")]
    assert wal_rate(backups) == pytest.approx(0xF0 * 16 * 1024**2 / 43200)
    assert wal_rate(backups[:1]) is None


def _facts(**kw: object) -> TuningFacts:
    base: dict[str, object] = {"repo_type": "s3", "bundle": True, "process_max": 4, "compress_type": "zst",
                               "archive_async": True, "start_fast": True, "cores": 8, "wal_rate": None}
    return TuningFacts(**(base | kw))  # type: ignore[arg-type]


def test_tuning_advice_names_each_slow_setting_and_never_fails() -> None:
    assert [r.name for r in judge(_facts())] == ["tuning"] and judge(_facts())[0].status == "ok"
    slow = judge(_facts(bundle=False, process_max=1, compress_type="gz", archive_async=False,
                        wal_rate=HIGH_WAL_RATE * 2, start_fast=False))
    assert [r.name for r in slow] == ["tuning.repo-bundle", "tuning.process-max", "tuning.compress-type",
                                      "tuning.archive-async", "tuning.start-fast"]
    assert {r.status for r in slow} == {"warning"}
    assert "process-max=4" in slow[1].message  # half of the 8 cores
    assert judge(_facts(repo_type="posix", bundle=False))[0].name == "tuning"  # bundling matters on object stores
    assert judge(_facts(process_max=1, cores=1))[0].name == "tuning"
    assert judge(_facts(archive_async=False, wal_rate=HIGH_WAL_RATE / 2))[0].name == "tuning"
    assert judge(_facts(archive_async=False, ready=50))[0].name == "tuning.archive-async"
