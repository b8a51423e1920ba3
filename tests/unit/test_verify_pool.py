"""The drill's parallel verification pool: every relation checked exactly once, largest first, really in
parallel, and a failure named without stopping the others."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opsd.actions.drill.pool import Item, order, run
from opsd.db.queries import RelationRow
from opsd.errors import DatabaseError


def _items(n: int, db: str = "shop") -> list[Item]:
    return [Item(db, RelationRow(f"public.t{i}", "r", "public", pages=i * 10)) for i in range(n)]


class _Connect:
    """Connections that are plain objects; counts how many each database got."""

    def __init__(self) -> None:
        self.opened: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, db: str) -> Any:
        @contextmanager
        def conn() -> Iterator[object]:
            with self.lock:
                self.opened[db] = self.opened.get(db, 0) + 1
            yield object()
        return conn()


def test_every_relation_is_checked_once_and_the_largest_start_first() -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def work(_conn: object, rel: RelationRow) -> int:
        with lock:
            seen.append(rel.name)
        return 100

    items = _items(40) + _items(5, "other")
    t = run(_Connect(), items, work, 1, "amcheck", report=lambda _m: None)
    assert sorted(seen) == sorted(i.rel.name for i in items) and len(seen) == 45
    assert seen[:3] == ["public.t39", "public.t38", "public.t37"]  # one worker: strictly largest first
    assert t.done == 45 and t.bytes == 4500 and t.problems == [] and t.jobs == 1
    assert [i.rel.pages for i in order(items)][:2] == [390, 380]


def test_work_runs_in_parallel_with_one_connection_per_worker_and_database() -> None:
    running, peak = [0], [0]
    lock = threading.Lock()

    def work(_conn: object, _rel: RelationRow) -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1

    connect = _Connect()
    t = run(connect, _items(12), work, 3, "full reads", report=lambda _m: None)
    assert peak[0] == 3 and t.jobs == 3 and t.done == 12
    assert connect.opened == {"shop": 3}  # each worker opened its own, once
    assert t.bytes == sum(i.estimate for i in _items(12))  # no byte count: the catalog's estimate


def test_a_failing_relation_is_named_and_the_others_still_run() -> None:
    def work(_conn: object, rel: RelationRow) -> str | None:
        if rel.name == "public.t3":
            raise DatabaseError("reading public.t3 failed: invalid page in block 7")
        return "block 2: line pointer out of range" if rel.name == "public.t5" else None

    t = run(_Connect(), _items(8), work, 2, "amcheck", report=lambda _m: None)
    assert t.done == 8
    assert t.problems == ["shop.public.t3: reading public.t3 failed: invalid page in block 7",
                          "shop.public.t5: block 2: line pointer out of range"]


def test_a_database_that_refuses_connections_fails_its_relations_only() -> None:
    def connect(db: str) -> Any:
        if db == "gone":
            raise DatabaseError("cannot connect to PostgreSQL: database \"gone\" does not exist")
        return _Connect()(db)

    t = run(connect, _items(3) + _items(2, "gone"), lambda _c, _r: 1, 2, "amcheck", report=lambda _m: None)
    assert t.done == 5 and len(t.problems) == 2 and all(p.startswith("gone.") for p in t.problems)


def test_progress_is_reported_by_tenths_of_the_work() -> None:
    lines: list[str] = []
    run(_Connect(), _items(100), lambda _c, _r: None, 1, "amcheck", report=lines.append)
    assert 5 <= len(lines) <= 11 and lines[-1].startswith("amcheck: 100/100 relations")


def test_a_check_that_could_not_run_is_unchecked_never_corrupt() -> None:
    """A relation whose check failed for a reason that says nothing about the data (the owner's index expression
    raising, no privilege, a timeout) is listed as unchecked: the drill warns, it does not report corruption."""
    from opsd.actions.drill.verify import _verdict
    from opsd.core.records.checks import CRITICAL, WARNING
    from opsd.errors import NotChecked

    def work(conn: object, rel: RelationRow) -> int:
        if rel.name == "public.t1":
            raise NotChecked("query amcheck_btree could not run (SQLSTATE 42501): must be superuser")
        if rel.name == "public.t2":
            raise DatabaseError("query amcheck_btree failed: index \"t2_pkey\" lacks a main relation entry")
        return 1

    t = run(_Connect(), _items(4), work, 2, "amcheck", report=lambda m: None)
    assert t.unchecked == ["shop.public.t1: query amcheck_btree could not run (SQLSTATE 42501): must be superuser"]
    assert [p.split(":")[0] for p in t.problems] == ["shop.public.t2"]
    bad = _verdict("amcheck", t, list(t.unchecked), damage="corrupt relation(s)", sound="x", details={})
    assert bad.status == CRITICAL and "1 corrupt relation(s): shop.public.t2" in bad.message
    t.problems.clear()
    warn = _verdict("amcheck", t, list(t.unchecked), damage="corrupt relation(s)", sound="3 sound", details={})
    assert warn.status == WARNING and "1 not checked: shop.public.t1" in warn.message and "corrupt" not in warn.message
