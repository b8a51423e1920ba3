"""Availability on a real PostgreSQL 15: the health sampler's probe over a server that stops under it (the
connection it holds breaks, then connecting is refused) and starts again: an up span, a down span saying what
failed, an up span, contiguous; the month counts the outage."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from opsd import settings as settings_mod
from opsd.actions.health.sample import availability_bound, sample_job
from opsd.adapters.stores.availability import AvailabilityStore
from opsd.context import build
from opsd.core.availability import DOWN, MISSED, UP, month
from opsd.db.probe import probe_for
from opsd_sandbox import Sandbox
from tests.integration.helpers import Cluster

pytestmark = pytest.mark.integration


def test_a_stopped_server_is_a_down_span_between_up_spans(stack: Sandbox, tmp_path: Path) -> None:
    c = Cluster(stack, "avail")
    c.initdb()
    try:
        ctx = build(settings_mod.load(str(c.conf)))
        probe = probe_for(ctx.settings)
        store = AvailabilityStore(ctx.history.db)
        start = ctx.now()
        assert sample_job(ctx, probe) == "ok"
        assert sample_job(ctx, probe) == "ok"
        c.ctl("stop", "-m", "fast")  # the probe's open connection is terminated
        assert sample_job(ctx, probe) == "failed"
        lost = probe.reach
        assert sample_job(ctx, probe) == "failed"  # now nothing listens
        refused = probe.reach
        c.ctl("start")
        assert sample_job(ctx, probe) == "ok"
        probe.close()
        end = ctx.now()
        spans = store.spans(start - timedelta(seconds=1), end + timedelta(seconds=1))
    finally:
        c.stop_quietly()
    assert lost is not None and lost.state == DOWN and lost.what.startswith("connection lost: "), lost
    assert refused is not None and refused.state == DOWN and "cannot connect to PostgreSQL" in refused.what, refused
    assert [s.state for s in spans] == [UP, DOWN, UP]
    up, down, back = spans
    assert up.end_at == down.start_at and down.end_at == back.start_at  # contiguous: nothing unknown between
    assert "connection lost" in down.what and "cannot connect" in down.what
    m = month(spans, start, end + timedelta(days=1), now=end, target=0.999,
              bound=availability_bound(ctx.settings, end))
    assert m.down_seconds == (down.end_at - down.start_at).total_seconds() > 0
    assert m.verdict == MISSED and [o.ended for o in m.outages] == ["up"]
