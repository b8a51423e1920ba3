"""Availability (core/availability.py, adapters/stores/availability.py, the probe's reach): spans extended by each
probe within three intervals, a gap is unknown and never up, a month's shares and verdict against the downtime
budget, each outage and how it ended; the probe says down only for a connection refused, a timeout or a broken
connection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from opsd.actions.health.sample import availability_bound, sample_job
from opsd.adapters.stores.availability import AvailabilityStore
from opsd.core.availability import DOWN, UP, Reach, month, step
from opsd.core.records.service import MET, MISSED, NO_DATA, NOT_PROVEN, AvailabilitySpan
from opsd.db.probe import Probe
from opsd.errors import DatabaseError, QueryTimeout

T0 = datetime(2026, 10, 1, tzinfo=UTC)
BOUND = timedelta(seconds=90)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def play(probes: Sequence[tuple[float, str]], store: AvailabilityStore | None = None) -> list[AvailabilitySpan]:
    """The spans a sequence of probes (seconds after T0, state) leaves, through step() alone or a store."""
    spans: list[AvailabilitySpan] = []
    for secs, state in probes:
        reach = Reach(state, "refused" if state == DOWN else "")
        if store is not None:
            store.note(reach, at(secs), BOUND)
            continue
        change = step(spans[-1] if spans else None, reach, at(secs), BOUND)
        if change.update is not None:
            spans[-1] = change.update
        if change.new is not None:
            spans.append(change.new)
    return store.spans(T0 - timedelta(days=1), T0 + timedelta(days=40)) if store is not None else spans


def shape(spans: list[AvailabilitySpan]) -> list[tuple[str, float, float]]:
    return [(s.state, (s.start_at - T0).total_seconds(), (s.end_at - T0).total_seconds()) for s in spans]


PROBES = [(0, UP), (30, UP), (60, UP), (90, DOWN), (120, DOWN), (150, UP),  # a 60 s outage, ended by a probe
          (180, UP), (240, UP),  # one probe missed: within three intervals, the span goes on
          (600, UP), (630, DOWN),  # opsd stopped 240..600: unknown; then down
          (2000, UP)]  # opsd stopped while it was down: the outage ends at its last probe, the rest unknown


def test_spans_from_probes_and_the_store_agree() -> None:
    expected = [(UP, 0, 90), (DOWN, 90, 150), (UP, 150, 240), (UP, 600, 630), (DOWN, 630, 630), (UP, 2000, 2000)]
    assert shape(play(PROBES)) == expected


def test_the_store_keeps_the_same_spans(fake_ctx: Any) -> None:
    store = AvailabilityStore(fake_ctx().history.db)
    spans = play(PROBES, store)
    assert shape(spans) == shape(play(PROBES))
    assert all(s.id is not None for s in spans) and spans[1].what == "refused" and spans[0].what == ""
    assert store.last() == spans[-1]
    assert shape(store.spans(at(100), at(200))) == [(DOWN, 90, 150), (UP, 150, 240)]  # overlapping, not inside


def test_a_probe_not_after_the_last_span_changes_nothing_and_failures_are_kept_distinct() -> None:
    last = AvailabilitySpan(state=DOWN, start_at=at(0), end_at=at(60), what="refused")
    assert step(last, Reach(UP), at(60), BOUND).update is None and step(last, Reach(UP), at(10), BOUND).new is None
    grown = step(last, Reach(DOWN, "probe timed out"), at(90), BOUND).update
    assert grown is not None and grown.what == "refused | probe timed out" and grown.end_at == at(90)
    again = step(grown, Reach(DOWN, "refused"), at(120), BOUND).update
    assert again is not None and again.what == "refused | probe timed out"


def test_a_month_measured_share_lower_bound_and_outages() -> None:
    spans = play(PROBES)
    m = month(spans, T0, T0 + timedelta(hours=1), now=T0 + timedelta(days=40), target=0.999, bound=BOUND)
    assert (m.up_seconds, m.down_seconds) == (90 + 90 + 30, 60)
    assert m.unknown_seconds == 3600 - 270
    assert m.measured_share == pytest.approx(210 / 270) and m.lower_bound == pytest.approx(210 / 3600)
    assert m.verdict == MISSED  # 60 s down > the budget of 3.6 s
    assert [(o.seconds, o.ended) for o in m.outages] == [(60, "up"), (0, "unknown")]
    assert m.outages[0].start == at(90) and m.outages[0].what == "refused"


def test_verdicts_against_the_downtime_budget() -> None:
    end = T0 + timedelta(days=10)
    budget = 0.001 * 10 * 86400  # 864 s
    up = AvailabilitySpan(state=UP, start_at=T0, end_at=end)

    def verdict(spans: list[AvailabilitySpan]) -> str:
        return month(spans, T0, end, now=end, target=0.999, bound=BOUND).verdict

    assert verdict([up]) == MET
    assert verdict([]) == NO_DATA
    gap = [up.model_copy(update={"end_at": end - timedelta(seconds=budget - 1)})]
    assert verdict(gap) == MET  # unknown time, but within the budget: proven even counted as down
    gap = [up.model_copy(update={"end_at": end - timedelta(seconds=budget + 1)})]
    assert verdict(gap) == NOT_PROVEN  # never measured down, but the unknown could hide an outage
    down = AvailabilitySpan(state=DOWN, start_at=end - timedelta(seconds=budget + 1), end_at=end)
    assert verdict([gap[0], down]) == MISSED


def test_the_current_month_is_measured_until_now_and_an_outage_at_now_is_ongoing() -> None:
    spans = [AvailabilitySpan(state=UP, start_at=T0, end_at=at(3600)),
             AvailabilitySpan(state=DOWN, start_at=at(3600), end_at=at(3660), what="refused")]
    m = month(spans, T0, T0 + timedelta(days=31), now=at(3700), target=0.999, bound=BOUND)
    assert m.period_end == at(3700) and m.unknown_seconds == 40
    assert [o.ended for o in m.outages] == ["ongoing"]
    later = month(spans, T0, T0 + timedelta(days=31), now=at(9000), target=0.999, bound=BOUND)
    assert [o.ended for o in later.outages] == ["unknown"]


def test_days_follow_the_timezone_and_its_daylight_saving_change() -> None:
    tz = ZoneInfo("Europe/Berlin")
    start, end = datetime(2026, 10, 1, tzinfo=tz), datetime(2026, 11, 1, tzinfo=tz)
    spans = [AvailabilitySpan(state=UP, start_at=start, end_at=end)]
    m = month(spans, start, end, now=end + timedelta(days=1), target=0.999, bound=BOUND)
    assert len(m.days) == 31 and m.days[0].day == "2026-10-01"
    assert {d.day: d.up_seconds for d in m.days}["2026-10-25"] == 25 * 3600  # the clocks went back
    assert m.up_seconds == sum(d.up_seconds for d in m.days) == 31 * 86400 + 3600
    assert m.verdict == MET and m.measured_share == 1.0 and m.outages == []


class FakeConn:
    def __init__(self, broken: bool = False) -> None:
        self.closed, self.broken = False, broken

    def close(self) -> None:
        self.closed = True


def _refused(sqlstate: str | None) -> DatabaseError:
    """What the connection factory raises: the psycopg error is its context (raise ... from None)."""
    err: psycopg.Error = psycopg.OperationalError("refused")
    if sqlstate:
        err = psycopg.errors.lookup(sqlstate)("no")
    try:
        try:
            raise err
        except psycopg.Error:
            raise DatabaseError("cannot connect to PostgreSQL at /run/postgresql:5432 as opsd: refused") from None
    except DatabaseError as e:
        return e


@pytest.mark.parametrize(("sqlstate", "state"), [(None, DOWN), ("57P03", DOWN), ("53300", DOWN),
                                                 ("28P01", None), ("3D000", None)])
def test_a_refused_connection_is_down_unless_the_server_answered(sqlstate: str | None, state: str | None) -> None:
    def connect() -> Any:
        raise _refused(sqlstate)

    probe = Probe(connect)
    with pytest.raises(DatabaseError):
        probe.run(lambda c: 1)
    assert (probe.reach.state if probe.reach else None) == state
    assert probe.reach is None or "cannot connect" in probe.reach.what


def test_a_timeout_or_a_broken_connection_is_down_a_failing_query_proves_nothing() -> None:
    conns = [FakeConn(), FakeConn(broken=True), FakeConn()]
    probe = Probe(lambda: conns.pop(0))  # type: ignore[arg-type,return-value]
    assert probe.run(lambda c: 1) == 1 and probe.reach == Reach(UP)

    def fail(exc: Exception) -> Any:
        def fn(c: Any) -> Any:
            raise exc
        return fn

    with pytest.raises(QueryTimeout):
        probe.run(fail(QueryTimeout("query sample timed out: canceling statement due to statement timeout")))
    assert probe.reach is not None and probe.reach.state == DOWN and "timed out" in probe.reach.what
    with pytest.raises(DatabaseError):
        probe.run(fail(DatabaseError("query sample failed: permission denied for view pg_stat_activity")))
    assert probe.reach is None  # the same (unbroken) connection answered with an error
    with pytest.raises(DatabaseError):  # the connection was reopened: the next one is broken
        probe.run(fail(DatabaseError("query sample failed: server closed the connection unexpectedly")))
    assert probe.reach is not None and probe.reach.what.startswith("connection lost: ")


def test_the_sampler_notes_what_its_probe_proved(fake_ctx: Any) -> None:
    ctx = fake_ctx()

    def connect() -> Any:
        raise _refused(None)

    assert sample_job(ctx, Probe(connect)) == "failed"
    spans = AvailabilityStore(ctx.history.db).spans(T0, datetime.now(UTC) + timedelta(days=1))
    assert [(s.state, s.what[:14]) for s in spans] == [(DOWN, "cannot connect")]
    assert availability_bound(ctx.settings, T0) == timedelta(seconds=90)
