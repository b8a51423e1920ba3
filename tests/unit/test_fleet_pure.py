"""The fleet's pure decisions: which cluster a drill host drills next (and why it passes over the others), when a
cluster is overdue, and the overdue days of a month."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from opsd.core.fleet.keys import Keys
from opsd.core.fleet.month import fleet_month, overdue_spans
from opsd.core.fleet.pick import Drills, drills_of, overdue_by, pick, too_large
from opsd.core.records.fleet import Capacity, Claim, ClusterEntry, DrillHostEntry, DrillSummary, Repository

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)
CAP = Capacity(scratch_bytes=10 * 1024**3, cores=4)


def entry(name: str, *, size: int | None = 1024**3, repo: str = "main", joined: datetime = T0) -> ClusterEntry:
    return ClusterEntry(cluster=name, stanza=name, repository=Repository(name=repo), host="h", database_bytes=size,
                        registered_at=joined, updated_at=joined)


def drill(at: datetime, outcome: str = "ok", host: str = "d1") -> DrillSummary:
    return DrillSummary(host=host, started_at=at - timedelta(minutes=5), finished_at=at, outcome=outcome)


def test_the_oldest_passed_drill_goes_first_and_never_passed_before_all() -> None:
    a, b, c = entry("a"), entry("b"), entry("c", joined=T0 + DAY)
    drills = {"a": Drills(drill(T0 + 3 * DAY), drill(T0 + 3 * DAY)), "b": Drills(drill(T0 + 2 * DAY),
                                                                                   drill(T0 + 2 * DAY))}
    now = T0 + 10 * DAY
    assert pick([a, b, c], drills, {}, capacity=CAP, repositories=["main"], now=now, min_gap=DAY).cluster == c
    assert pick([a, b], drills, {}, capacity=CAP, repositories=["main"], now=now, min_gap=DAY).cluster == b


def test_a_failed_drill_does_not_count_as_proof_but_holds_the_cluster_back_for_min_gap() -> None:
    a, b = entry("a"), entry("b")
    failed_now = drills_of(a, [drill(T0 + DAY), drill(T0 + 9 * DAY, "failed")])
    assert failed_now.last_passed is not None and failed_now.last_passed.finished_at == T0 + DAY
    drills = {"a": failed_now, "b": drills_of(b, [drill(T0 + 5 * DAY)])}
    now = T0 + 9 * DAY + timedelta(hours=1)
    got = pick([a, b], drills, {}, capacity=CAP, repositories=["main"], now=now, min_gap=timedelta(hours=12))
    assert got.cluster == b and got.passed_over[0].cluster == "a" and "min_gap" in got.passed_over[0].reason
    later = pick([a, b], drills, {}, capacity=CAP, repositories=["main"], now=now + DAY, min_gap=timedelta(hours=12))
    assert later.cluster == a


def test_every_cluster_passed_over_is_named_with_its_reason() -> None:
    claimed, big, foreign = entry("claimed"), entry("big", size=20 * 1024**3), entry("foreign", repo="eu")
    claims = {"claimed": Claim(cluster="claimed", host="d2", pid=1, lease=7, started_at=T0)}
    got = pick([claimed, big, foreign], {}, claims, capacity=CAP, repositories=["main"], now=T0 + DAY,
               min_gap=DAY)
    assert got.cluster is None
    reasons = {p.cluster: p.reason for p in got.passed_over}
    assert "claimed by d2" in reasons["claimed"]
    assert "too large" in reasons["big"] and "20.0 GiB" in reasons["big"]
    assert "no credentials for repository 'eu'" in reasons["foreign"]
    assert "claimed: claimed by d2" in got.why_none()


def test_overdue_from_the_last_passed_drill_or_from_joining() -> None:
    a = entry("a")
    assert overdue_by(a, Drills(), 7 * DAY, T0 + 6 * DAY) is None
    assert overdue_by(a, Drills(), 7 * DAY, T0 + 8 * DAY) == DAY
    passed = drills_of(a, [drill(T0 + 5 * DAY), drill(T0 + 13 * DAY, "failed")])
    assert overdue_by(a, passed, 7 * DAY, T0 + 13 * DAY) == DAY  # the failed drill proves nothing


def test_too_large_only_against_every_drill_host_alive() -> None:
    hosts = [DrillHostEntry(host=h, capacity=Capacity(scratch_bytes=n, cores=2), updated_at=T0)
             for h, n in (("d1", 5 * 1024**3), ("d2", 15 * 1024**3))]
    clusters = [entry("small"), entry("mid", size=10 * 1024**3), entry("huge", size=30 * 1024**3)]
    assert too_large(clusters, hosts) == ["huge"]
    assert too_large(clusters, []) == []


def test_overdue_days_of_a_month() -> None:
    tz = ZoneInfo("UTC")
    start, end = T0, datetime(2026, 12, 1, tzinfo=UTC)
    spans = overdue_spans(T0 - 3 * DAY, [T0 + 10 * DAY, T0 + 12 * DAY], 7 * DAY, end)
    assert spans == [(T0 + 4 * DAY, T0 + 10 * DAY), (T0 + 19 * DAY, end)]
    results = {"a": [drill(T0 + 10 * DAY), drill(T0 + 12 * DAY), drill(T0 + 11 * DAY, "failed")]}
    fm = fleet_month("2026-11", start, end, [entry("a", joined=T0 - 3 * DAY)], results, every=7 * DAY,
                     now=end + DAY, tz=tz)
    row = fm.clusters[0]
    assert (row.passed, row.failed) == (2, 1) and fm.passed == 2 and fm.failed == 1
    assert row.overdue_days[0] == date(2026, 11, 5) and row.overdue_days[5] == date(2026, 11, 10)
    assert date(2026, 11, 11) not in row.overdue_days
    assert len(row.overdue_days) == 6 + 11 and not row.overdue_now  # 5-10 Nov, then 20-30 Nov


def test_keys() -> None:
    k = Keys("eu")
    key = k.result("shop", datetime(2026, 12, 7, 8, 9, 10, tzinfo=UTC), "d1")
    assert key == "/opsd/fleet/eu/results/shop/20261207T080910000000Z-d1"
    assert k.cluster_of_result(key) == "shop"
    assert key.startswith(k.results_of("shop")) and key.rsplit("/", 1)[-1] == "20261207T080910000000Z-d1"
