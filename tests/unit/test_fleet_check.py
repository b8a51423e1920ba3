"""``opsd check``'s fleet check judged from a fleet view and etcd's members, and the fleet line of ``opsd status``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from opsd.actions.fleet.check import judge
from opsd.actions.fleet.view import ClusterRow, FleetView
from opsd.adapters.etcd import MemberHealth
from opsd.core.fleet.pick import Drills
from opsd.core.records.fleet import ClusterEntry, FleetState, Repository
from opsd.report.console import fleet

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def row(name: str, *, overdue: bool = False, big: bool = False) -> ClusterRow:
    e = ClusterEntry(cluster=name, stanza=name, repository=Repository(name="default"), host="h", registered_at=T0,
                     updated_at=T0)
    return ClusterRow(e, Drills(), T0, timedelta(days=1) if overdue else None, None, big)


def view(*rows: ClusterRow) -> FleetView:
    return FleetView("prod", T0, timedelta(days=7), rows, ())


def member(n: int, error: str = "") -> MemberHealth:
    return MemberHealth(f"http://10.0.0.{n}:2379", not error, n == 1, 10, "3.4.23", error)


def test_a_healthy_fleet_is_ok_and_says_what_it_read() -> None:
    r = judge(view(row("orders"), row("stock")), [member(1), member(2), member(3)], "orders")
    assert r.status == "ok" and "2 cluster(s)" in r.message and "etcd 3/3 members answer" in r.message


def test_each_problem_is_named_in_one_warning() -> None:
    r = judge(view(row("orders", overdue=True), row("huge", big=True)), [member(1), member(2, "no answer")],
              "billing")
    assert r.status == "warning"
    for part in ("etcd 1/2 members answer", "not answering: http://10.0.0.2:2379", "(billing) is not published",
                 "overdue (no passed drill within", "): orders", "too large for every drill host: huge"):
        assert part in r.message, (part, r.message)
    assert r.details["overdue"] == ["orders"] and r.details["too_large"] == ["huge"]


def test_the_status_line_says_unreachable_overdue_or_in_time() -> None:
    tz = ZoneInfo("UTC")
    base = FleetState(fleet="prod", role="cluster", host="db1", checked_at=T0, reachable=True, clusters=3,
                      drill_hosts=2, overdue=["orders"], this_cluster_overdue=True)
    assert "THIS CLUSTER IS OVERDUE" in fleet(base, "prod", tz) and "1 overdue (orders)" in fleet(base, "prod", tz)
    fine = base.model_copy(update={"overdue": [], "this_cluster_overdue": False})
    assert "this cluster drilled in time" in fleet(fine, "prod", tz) and "none overdue" in fleet(fine, "prod", tz)
    down = base.model_copy(update={"reachable": False, "error": "etcd unavailable"})
    assert "ETCD UNREACHABLE: etcd unavailable" in fleet(down, "prod", tz)
    assert "not checked yet" in fleet(None, "prod", tz)
