"""``opsd check`` runs its checks in independent lanes side by side: a slow object store delays only the checks
after it in its lane; the results keep their printed order; a drill host has no PostgreSQL lane, and its
timeline check (read from the repository alone) is not skipped for want of PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from opsd.actions import checks, privileges
from opsd.core.records.checks import CRITICAL, OK, SKIPPED, CheckResult


def _ok(name: str, before: Callable[[], None] = lambda: None) -> Callable[..., CheckResult]:
    def fn(ctx: Any, st: Any) -> CheckResult:
        before()
        return CheckResult(name, OK, "fine")

    return fn


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, threading.Event]:
    """Every check answers OK; the repository waits for pgBackRest's check, which comes later in the printed order
    and in another lane: run one after the other, the repository would wait in vain."""
    done = threading.Event()
    def postgres(ctx: Any, st: Any) -> CheckResult:
        st.server = SimpleNamespace(in_recovery=False)
        return CheckResult("postgres", OK, "fine")

    monkeypatch.setattr(checks, "check_postgres", postgres)
    for attr, name in [("check_archive_settings", "archive.settings"),
                       ("check_archiver", "archive.archiver"), ("check_endpoint", checks.ENDPOINT),
                       ("check_timelines", checks.TIMELINES)]:
        monkeypatch.setattr(checks, attr, _ok(name))
    monkeypatch.setattr(privileges, "check_privileges", _ok(privileges.CHECK))
    monkeypatch.setattr(checks, "check_queries", _ok(checks.QUERIES))
    monkeypatch.setattr(checks, "check_pgbackrest", _ok("pgbackrest.check", done.set))

    def repository(ctx: Any, st: Any) -> CheckResult:
        if not done.wait(10):
            raise AssertionError("the repository check waited for pgBackRest's check: the lanes ran one by one")
        return CheckResult("repository", OK, "fine")

    monkeypatch.setattr(checks, "check_repository", repository)
    return {"done": done}


def test_lanes_run_side_by_side_and_results_keep_their_order(fake_ctx: Any, fakes: Any) -> None:
    report = checks.run_checks(fake_ctx())
    lanes = [r for r in report.results if r.name in checks.ORDER]
    assert [r.name for r in lanes] == [n for n in checks.ORDER if n != "fleet"]  # no [fleet]: no fleet check
    assert all(r.status == OK for r in lanes), [(r.name, r.message) for r in lanes]


def test_a_drill_host_checks_the_repository_and_its_timelines_without_postgres(fake_ctx: Any, fakes: Any,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fakes["done"].set()  # no PostgreSQL lane on a drill host
    report = checks.run_checks(fake_ctx(opsd={"role": "drill"}))
    names = {r.name: r.status for r in report.results}
    assert "postgres" not in names and "pgbackrest.check" not in names
    assert names[checks.TIMELINES] == OK and names["repository"] == OK


def test_postgres_unreachable_skips_only_what_reads_it(fake_ctx: Any, fakes: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from opsd.errors import DatabaseError

    def down(ctx: Any, st: Any) -> CheckResult:
        raise DatabaseError("connection refused")

    monkeypatch.setattr(checks, "check_postgres", down)
    names = {r.name: r.status for r in checks.run_checks(fake_ctx()).results}
    assert names["postgres"] == CRITICAL
    assert names["archive.settings"] == names["archive.archiver"] == names[checks.QUERIES] == SKIPPED
    assert names[checks.TIMELINES] == OK and names["repository"] == OK
