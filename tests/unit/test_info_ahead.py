"""A restore plan reads the likely backup set's details (``info --set``) while it reads the WAL: the answer is
the same as asking afterwards, it is used once, only for the set asked, and only while fresh."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from opsd.actions.restore.plan import Request
from opsd.actions.restore.service import likely_set
from opsd.adapters import pgbackrest as pb
from opsd.adapters import pgbackrest_ahead as ahead
from tests.fakes import FakeRunner

INFO = (Path(__file__).resolve().parents[1] / "data" / "info_three_backups.json").read_text()
FULL, DIFF, INCR = "20261125-173332F", "20261125-173332F_20261125-173452D", "20261125-173332F_20261125-173500I"


def adapter(runner: FakeRunner, stanza: str = "demo") -> pb.PgBackRest:
    return pb.PgBackRest(pb.Base("pgbackrest", "/etc/pgbackrest/pgbackrest.conf", stanza), runner,  # type: ignore[arg-type]
                         3600, 60, 2)


class Gated(FakeRunner):
    """Answers only once the test opens the gate: proves the call runs in the background."""

    gate: threading.Event = threading.Event()

    def run(self, argv, **kw):  # type: ignore[no-untyped-def]
        assert self.gate.wait(10)
        return super().run(argv, **kw)


@pytest.fixture(autouse=True)
def _clean() -> None:
    ahead.clear()


def test_the_set_read_ahead_is_the_answer_of_the_later_call_and_is_used_once() -> None:
    runner = Gated(answers={"info": (0, INFO, "")})
    runner.gate = threading.Event()
    a = adapter(runner)
    a.info_ahead(DIFF)  # returns at once although the command has not answered
    runner.gate.set()
    got = adapter(runner).info(backup_set=DIFF)  # another adapter of the same stanza: each job builds its own
    assert [b.label for b in got.backups] == [FULL, DIFF, INCR]
    assert sum("--set=" + DIFF in c for c in runner.calls) == 1  # read once, ahead
    adapter(runner).info(backup_set=DIFF)  # used once: the next call asks again
    assert sum("--set=" + DIFF in c for c in runner.calls) == 2


def test_a_read_ahead_serves_only_its_own_set_stanza_and_freshness(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = FakeRunner(answers={"info": (0, INFO, "")})
    adapter(runner).info_ahead(DIFF)
    adapter(runner).info(backup_set=INCR)
    assert any("--set=" + INCR in c for c in runner.calls)  # another set: asked for itself
    adapter(runner, "other").info_ahead(FULL)
    assert len(ahead.pending()) == 2  # DIFF (never asked for) and the other stanza's FULL
    base, clock = ahead.time.monotonic(), [ahead.FRESH + 1]
    monkeypatch.setattr(ahead.time, "monotonic", lambda: base + clock[0])
    adapter(runner).info_ahead(FULL)  # a minute later: the stale entries are dropped, this one is fresh
    assert ahead.pending() == [("/etc/pgbackrest/pgbackrest.conf", "demo", FULL)]
    clock[0] += ahead.FRESH + 1  # another minute: the answer read ahead is no longer used
    before = sum("--set=" + FULL in c for c in runner.calls)
    adapter(runner).info(backup_set=FULL)
    assert sum("--set=" + FULL in c for c in runner.calls) == before + 1


def test_the_likely_set_is_the_named_one_else_the_newest_that_ended_before_a_time_target() -> None:
    info = pb.parse_info(INFO)[0]
    assert likely_set(Request("time", set_label=FULL))(info) == FULL
    assert likely_set(Request("time", target_time=datetime.fromtimestamp(1795628095, UTC)))(info) == DIFF
    assert likely_set(Request("immediate"))(info) == INCR
    assert likely_set(Request("time", target_time=datetime.fromtimestamp(1795628000, UTC)))(info) is None
