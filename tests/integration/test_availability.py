"""Availability on a real PostgreSQL 15: the health sampler's probe over a server that stops under it (the
connection it holds breaks, then connecting is refused) and starts again: an up span, a down span saying what
failed, an up span, contiguous; the month counts the outage. Then the monthly report's Service levels on that
cluster (a failed CREATE UNIQUE INDEX CONCURRENTLY left an invalid index; no query snapshot yet) and the metrics
read from what the report kept."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from opsd import settings as settings_mod
from opsd.actions.health.sample import availability_bound, sample_job
from opsd.actions.report.job import make_report
from opsd.actions.report.service import default_sources
from opsd.adapters.stores.availability import AvailabilityStore
from opsd.context import build
from opsd.core.availability import DOWN, UP, month
from opsd.core.records.service import MISSED
from opsd.db.probe import probe_for
from opsd.metrics import text
from opsd_sandbox import Sandbox
from opsd_sandbox.procs import as_pg, run
from tests.integration.helpers import PG_BIN, Cluster

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
        c.psql("create table t (k int); insert into t values (1), (1)")
        failed = run(as_pg([str(PG_BIN / "psql"), "-h", str(stack.socket_dir), "-p", str(c.port), "-XAtc",
                            "create unique index concurrently t_k on t (k)"]), check=False)
        assert failed.returncode != 0  # duplicates: t_k stays, invalid
        local = end.astimezone(ctx.settings.opsd.tz)
        service = make_report(ctx, local.year, local.month, with_repository=False, sources=default_sources()).service
        exposition = text(ctx)
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
    assert service is not None and service.availability is not None and len(service.availability.outages) == 1
    assert [(p.table_name, p.name, p.kind) for p in service.integrity.invalid_indexes] == [("t", "t_k",
                                                                                             "invalid index")]
    verdicts = {a.key: a.verdict for a in service.answers}
    assert verdicts["integrity"] == "missed" and verdicts["objective:all"] == "no data"
    assert verdicts["availability"] == "not proven"  # the month so far is mostly unknown: the outage fits the budget
    assert "\nopsd_invalid_indexes 1.0\n" in exposition and "\nopsd_availability_ratio " in exposition
