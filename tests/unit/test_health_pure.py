"""Health decisions without a server: literal masking, blocking trees, connection and pool reports,
incident conditions and their reconciliation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opsd.actions.health.incidents import conditions, reconcile
from opsd.actions.health.locks import build_trees, mask_literals, query_text
from opsd.actions.health.pool import connection_report, pool_report
from opsd.core.records.health import IncidentMoment, Receiver, ReplicationReport, Slot, StandbyLag
from opsd.core.records.runs import Incident
from opsd.db.queries import ConnectionRow, LimitsRow, LockRow, SessionRow, WaiterRow
from opsd.metrics import _replication
from opsd.report.health_console import replication
from opsd.settings import HealthSection

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_literals_are_masked_and_text_cut() -> None:
    q = "UPDATE orders SET note = 'it''s paid', qty = 12, price = 3.50e2 WHERE id = $1 AND sku = E'A\\'B' -- v2"
    assert mask_literals(q) == "UPDATE orders SET note = ?, qty = ?, price = ? WHERE id = $1 AND sku = ? -- v2"
    assert mask_literals("select $tag$secret$tag$, t1.col2 from t1") == "select ?, t1.col2 from t1"
    render = query_text(False, 20)
    assert render("select   *\n from t where a = 'x'") == "select * from t whe…"
    assert query_text(True, 0)("select 1") == ""


def _s(pid: int, state: str = "active", query: str = "select 1") -> SessionRow:
    return SessionRow(pid, state, "app", "shop", "api", "10.0.0.5", "Lock", "relation", 9.0, 2.0, query)


def _lk(pid: int, mode: str, granted: bool, rel: str | None = None, locktype: str = "relation",
        wait: float | None = None) -> LockRow:
    return LockRow(pid, locktype, mode, granted, rel, wait)


def test_chain_and_fan_out_trees() -> None:
    waiters = [WaiterRow(2, [1]), WaiterRow(3, [2]), WaiterRow(4, [1]), WaiterRow(9, [8])]
    sessions = {p: _s(p) for p in (2, 3, 4, 8, 9)} | {1: _s(1, "idle in transaction", "update t set a = 5")}
    locks = [_lk(1, "RowExclusiveLock", True, "t"), _lk(2, "ShareLock", False, None, "transactionid", 7.5),
             _lk(2, "ExclusiveLock", True, "t", "tuple"), _lk(3, "AccessExclusiveLock", False, "t", wait=3.0),
             _lk(4, "RowShareLock", False, "t", wait=1.0), _lk(9, "ShareLock", False, "u", wait=30.0)]
    big, small = build_trees(waiters, sessions, locks, query_text(False, 100))
    assert big.root.pid == 1 and big.root_idle_in_transaction and big.waiters == 3 and big.depth == 2
    assert [c.pid for c in big.root.children] == [2, 4] and [c.pid for c in big.root.children[0].children] == [3]
    assert big.root.children[0].waiting_for == "ShareLock on transactionid (row in t)"
    assert big.longest_wait == 7.5 and big.modes == ["AccessExclusiveLock", "RowShareLock", "ShareLock"]
    assert big.root.query == "update t set a = ?" and big.root.holds == ["RowExclusiveLock on t"]
    assert small.root.pid == 8 and small.waiters == 1 and small.longest_wait == 30.0
    assert "IDLE IN TRANSACTION" in big.summary()


def test_two_blockers_and_a_cycle() -> None:
    # 3 waits on both 1 and 2: it shows under both roots
    trees = build_trees([WaiterRow(3, [1, 2])], {}, [], query_text(False, 10))
    assert [(t.root.pid, t.waiters) for t in trees] == [(1, 1), (2, 1)]
    # a deadlock in the making: everyone waits, the lowest pid is taken as the root
    cyc = build_trees([WaiterRow(5, [6]), WaiterRow(6, [5])], {}, [], query_text(False, 10))
    assert len(cyc) == 1 and cyc[0].root.pid == 5 and cyc[0].waiters == 1 and cyc[0].root.state == "gone"


def test_connection_report() -> None:
    rows = [ConnectionRow("active", "shop", "app", "api", 60, 100, 3),
            ConnectionRow("idle", "shop", "app", "api", 30, 100, 3),
            ConnectionRow("idle in transaction", "wms", "batch", "", 4, 100, 3)]
    c = connection_report(rows, LimitsRow(100, 3))
    assert c.total == 94 and c.usable == 97 and round(c.utilisation, 1) == 96.9
    assert c.by_database == {"shop": 90, "wms": 4} and c.by_application == {"api": 90, "-": 4}


SHOWS = {
    "pools": [
        {"database": "pgbouncer", "user": "pgbouncer", "cl_active": 1, "cl_waiting": 0, "sv_active": 0, "sv_idle": 0,
         "sv_used": 0, "sv_tested": 0, "sv_login": 0, "maxwait": 0, "maxwait_us": 0, "pool_mode": "statement"},
        {"database": "shop", "user": "app", "cl_active": 2, "cl_waiting": 3, "sv_active": 2, "sv_idle": 0,
         "sv_used": 0, "sv_tested": 0, "sv_login": 0, "maxwait": 7, "maxwait_us": 250000, "pool_mode": "transaction"},
        {"database": "wms", "user": "batch", "cl_active": 1, "cl_waiting": 0, "sv_active": 1, "sv_idle": 3,
         "maxwait": 0, "maxwait_us": 0, "pool_mode": "transaction"}],
    "databases": [{"name": "shop", "pool_size": 2, "max_connections": 0},
                  {"name": "wms", "pool_size": 10, "max_connections": 8}],
    "stats": [{"database": "shop", "avg_query_time": 1500, "avg_wait_time": 200000, "avg_xact_time": 1800,
               "total_xact_count": 10}],
}


def test_pool_report_from_pgbouncer_rows() -> None:
    r = pool_report(SHOWS)
    shop, wms = r.pools
    assert (shop.database, shop.cl_waiting, shop.maxwait, shop.pool_size, shop.saturation, shop.saturated) == (
        "shop", 3, 7.25, 2, 100.0, True)
    assert wms.servers == 4 and wms.saturation == 40.0 and not wms.saturated and wms.max_db_connections == 8
    assert r.waiting == 3 and r.maxwait == 7.25 and r.stats[0].avg_wait_us == 200000


def _inc(key: str, rank: list[float]) -> Incident:
    return Incident(1, key, key.split(":", maxsplit=1)[0], T0, T0, None, "x", 0.0, IncidentMoment(rank=tuple(rank)))


def test_conditions_and_reconcile() -> None:
    hs = HealthSection(lock_wait_threshold=timedelta(seconds=5), pool_wait_threshold=timedelta(seconds=5),
                       connections_threshold=90)
    waiters = [WaiterRow(2, [1])]
    [tree] = build_trees(waiters, {}, [_lk(2, "ShareLock", False, "t", wait=6.0)], query_text(False, 10))
    conns = connection_report([ConnectionRow("active", "shop", "app", "api", 95, 100, 3)], LimitsRow(100, 3))
    now = conditions([tree], pool_report(SHOWS).pools, conns, ["locks: probe timed out"], hs)
    assert sorted(now) == ["connections", "lock:1", "pool:shop/app", "probe"]
    ch = reconcile([_inc("lock:1", [1, 2.0]), _inc("pool:shop/app", [99.0, 9]), _inc("lock:77", [1, 9.0])], now)
    assert [c.key for c in ch.opened] == ["connections", "probe"]
    assert [(i.key, c.rank) for i, c in ch.worse] == [("lock:1", (1, 6.0))]
    assert [i.key for i in ch.still] == ["pool:shop/app"] and [i.key for i in ch.closed] == ["lock:77"]
    quiet = conditions([tree], [], None, [], HealthSection(lock_wait_threshold=timedelta(seconds=10)))
    assert quiet == {}


def test_an_inactive_slot_over_the_limit_is_an_incident_an_active_one_never() -> None:
    hs = HealthSection.model_validate({"slot_retained_max": "1GiB"})
    assert int(hs.slot_retained_max) == 1024**3
    lost = Slot("debezium", "physical", False, 1024**3 + 1, "extended")
    busy = Slot("node2", "physical", True, 5 * 1024**3, "reserved")  # active: its consumer is just behind
    small = Slot("spare", "physical", False, 1024**3, "reserved")  # at the limit, not over
    never = Slot("fresh", "physical", False, None, None)  # never reserved WAL
    found = conditions([], [], None, [], hs, slots=[lost, busy, small, never])
    assert list(found) == ["slot:debezium"]
    c = found["slot:debezium"]
    assert c.kind == "slot" and "inactive and retains 1.0 GiB" in c.summary and "pg_drop_replication_slot" in c.summary
    worse = conditions([], [], None, [], hs, slots=[Slot("debezium", "physical", False, 2 * 1024**3, "extended")])
    assert worse["slot:debezium"].rank > c.rank  # the incident keeps the moment it retained most


def test_replication_console_both_sides() -> None:
    primary = ReplicationReport("primary", [StandbyLag("node2", "10.0.0.12", "streaming", "async", 0, 0, 3 * 1024**2,
                                                       None, None, 1.4)],
                                [Slot("debezium", "physical", False, 2 * 1024**3, "extended")])
    text = replication(primary, UTC, 1024**3)
    assert "node2" in text and "3.0 MiB" in text and "1.4s" in text and "RETAINS TOO MUCH" in text
    assert "no standby connected" in replication(ReplicationReport("primary"), UTC, 1024**3)
    standby = ReplicationReport("standby", receiver=Receiver("streaming", "10.0.0.11:5432", "0/5000000", "0/4000000",
                                                             16 * 1024**2, 12.0, T0, True))
    text = replication(standby, UTC, 1024**3)
    assert "WAL from streaming 10.0.0.11:5432" in text and "16.0 MiB" in text and "REPLAY PAUSED" in text


def test_replication_metrics_from_the_last_sample() -> None:
    r = ReplicationReport("standby", [], [Slot("s1", "physical", True, 10, "reserved")],
                          Receiver("archive", "", None, "0/4000000", None, 30.0, T0, False))
    lines = {(m.name, tuple(sorted(s.labels.items())), s.value) for m in _replication(r) for s in m.samples}
    assert ("opsd_replication_is_standby", (), 1.0) in lines
    assert ("opsd_replication_streaming", (), 0.0) in lines  # WAL only from the archive
    assert ("opsd_replication_replay_lag_seconds", (), 30.0) in lines
    assert ("opsd_replication_slot_retained_bytes", (("active", "true"), ("slot", "s1")), 10.0) in lines
    assert not any(n == "opsd_replication_replay_lag_bytes" for n, _l, _v in lines)  # unknown: absent, not 0
