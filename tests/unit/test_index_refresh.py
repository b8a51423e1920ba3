"""The daemon keeps the index metrics fresh: after a snapshot on the primary the catalogs are read again when the
last index report is an hour old, not at every snapshot; a refresh that fails is logged and alerted, never silent."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opsd.actions.report import index_figures
from opsd.adapters.stores.alerts import AlertStore
from opsd.daemon import jobs
from opsd.errors import OpsdError
from opsd_sandbox.sample_service import _index_report

NOW = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)


def test_refreshed_hourly_and_a_failure_alerts(fake_ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [NOW]
    ctx = dataclasses.replace(fake_ctx(), now=lambda: now[0])
    calls: list[datetime] = []
    fail = [False]

    def refresh(c: Any) -> None:
        if fail[0]:
            raise OpsdError("connection refused")
        calls.append(now[0])
        report = _index_report(c)
        index_figures.save(c, report)

    monkeypatch.setattr(index_figures, "refresh", refresh)
    jobs.index_refresh(ctx)  # none yet: read
    assert len(calls) == 1
    saved = index_figures.load(ctx.settings)
    assert saved is not None
    now[0] = saved.at + timedelta(minutes=59)
    jobs.index_refresh(ctx)  # fresh: not read again
    assert len(calls) == 1
    now[0] = saved.at + timedelta(minutes=61)
    fail[0] = True
    jobs.index_refresh(ctx)
    assert "queries.indexes" in AlertStore(ctx.history.db).firing()
    fail[0] = False
    jobs.index_refresh(ctx)
    assert len(calls) == 2 and "queries.indexes" not in AlertStore(ctx.history.db).firing()
