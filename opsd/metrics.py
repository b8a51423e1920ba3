"""Prometheus metrics, computed at scrape time from what opsd recorded (run history, health samples and
incidents, alert state): no counters kept in memory, so the CLI's runs show up as well as the daemon's.
Served by the daemon on ``[metrics] listen``; ``opsd metrics`` prints the same text (node_exporter textfile)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from opsd import __version__
from opsd.actions import alerts
from opsd.adapters.stores.health import HealthStore
from opsd.context import Context
from opsd.core.records.checks import CRITICAL
from opsd.core.records.drill import DrillResult
from opsd.core.records.health import ReplicationReport
from opsd.core.records.jobs import BackupResult, CheckReport
from opsd.core.records.rehearse import RehearsalResult
from opsd.core.role import JOBS
from opsd.errors import OpsdError

PREFIX = "opsd"


def _g(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)


def _scalars(rows: list[tuple[str, str, Any]]) -> Iterator[Metric]:
    """Unlabelled gauges; a value of None leaves the gauge without a sample (absent, not 0)."""
    for name, doc, value in rows:
        g = _g(name, doc)
        if value is not None:
            g.add_metric([], float(value))
        yield g


def _relation_metrics(g: GaugeMetricFamily, d: DrillResult | None) -> None:
    for c in d.databases if d is not None else []:
        for verdict, n in (("checked", c.checked), ("not_checked", c.not_checked), ("corrupt", c.corrupt)):
            g.add_metric([c.database, verdict, ""], float(n))
        for reason, n in c.skipped.items():
            g.add_metric([c.database, "skipped", reason], float(n))
        if c.refused:
            g.add_metric([c.database, "skipped", c.refused], 1.0)


class OpsdCollector(Collector):
    def __init__(self, context: Callable[[], Context]) -> None:
        self._context = context  # the daemon swaps its context on reload
        from opsd.actions.report.gauges import ObjectiveCache

        self._objectives = ObjectiveCache()

    def collect(self) -> Iterator[Metric]:
        ctx = self._context()
        yield InfoMetricFamily(f"{PREFIX}_build", "opsd version and role",
                               value={"version": __version__, "role": ctx.settings.opsd.role,
                                      "stanza": ctx.settings.pgbackrest.stanza})
        yield from self._history(ctx)
        for part in (self._jobs, self._check, self._drill, self._rehearse, self._health, self._copies, self._role,
                     self._fleet, self._service):
            try:
                yield from part(ctx)
            except OpsdError:  # the history is unreadable: opsd_history_writable says so, the scrape goes on
                continue
        yield from self._alerts(ctx)

    def _history(self, ctx: Context) -> Iterator[Metric]:
        ok = _g("history_writable", "1 when the run history (state file) can be written; 0: jobs still run, their "
                                    "records wait in history.pending.jsonl (see opsd status)")
        ok.add_metric([], 0.0 if ctx.history.db.problem or ctx.history.db.writable() else 1.0)
        yield ok

    def _jobs(self, ctx: Context) -> Iterator[Metric]:
        last_ok = _g("job_last_success_timestamp_seconds", "Start of the last successful run of each job", ["job"])
        last_run = _g("job_last_run_timestamp_seconds", "Start of the last run of each job", ["job"])
        duration = _g("job_last_duration_seconds", "Duration of the last finished run of each job", ["job"])
        failed = _g("job_last_failed", "1 when the last finished run of the job failed", ["job"])
        size = _g("backup_size_bytes", "Database size of the last successful backup of each type", ["type"])
        stored = _g("backup_stored_bytes", "Bytes the last successful backup of each type added to the repository",
                    ["type"])
        for job in JOBS:
            run = ctx.history.last(job, ("ok", "failed", "skipped"))
            ok = ctx.history.last(job, ("ok",))
            if ok is not None:
                last_ok.add_metric([job], ok.started_at.timestamp())
                if (b := ok.details_as(BackupResult)) is not None:
                    size.add_metric([job.removeprefix("backup-")], float(b.size))
                    stored.add_metric([job.removeprefix("backup-")], float(b.repo_delta))
            if run is not None:
                last_run.add_metric([job], run.started_at.timestamp())
                if run.duration is not None:
                    duration.add_metric([job], run.duration)
                failed.add_metric([job], 1.0 if run.outcome == "failed" else 0.0)
        yield from (last_ok, last_run, duration, failed, size, stored)

    def _check(self, ctx: Context) -> Iterator[Metric]:
        run = ctx.history.last("check", ("ok", "failed"))
        rep = run.details_as(CheckReport) if run else None
        arch = rep.archiver if rep else None
        for name, doc, value in (
                ("archive_failed", "pg_stat_archiver.failed_count at the last check",
                 arch.failed_count if arch else None),
                ("archive_archived", "pg_stat_archiver.archived_count at the last check",
                 arch.archived_count if arch else None)):
            counter = CounterMetricFamily(f"{PREFIX}_{name}", doc)  # exposed as <name>_total
            if value is not None:
                counter.add_metric([], float(value))
            yield counter
        yield from _scalars(_check_scalars(rep))
        crit = _g("check_critical", "1 for each check that was critical at the last check run", ["check"])
        for r in {r.name: r for r in rep.results}.values() if rep else []:
            crit.add_metric([r.name], 1.0 if r.status == CRITICAL else 0.0)
        yield crit

    def _rehearse(self, ctx: Context) -> Iterator[Metric]:
        """The last migration rehearsal (docs/rehearse.md): when, its verdict, its hazards."""
        run = ctx.history.last("rehearse", ("ok",))
        r = run.details_as(RehearsalResult) if run else None
        at = _g("rehearse_last_timestamp_seconds", "Start of the last migration rehearsal")
        verdict = _g("rehearse_last_verdict", "1 for the verdict of the last migration rehearsal", ["verdict"])
        hazards = _g("rehearse_last_hazards", "Hazards the last migration rehearsal found")
        if run is not None and r is not None:
            at.add_metric([], run.started_at.timestamp())
            for v in ("PASSED", "HAZARDS", "FAILED"):
                verdict.add_metric([v], 1.0 if r.verdict == v else 0.0)
            hazards.add_metric([], float(len(r.hazards)))
        yield from (at, verdict, hazards)

    def _drill(self, ctx: Context) -> Iterator[Metric]:
        last = ctx.history.last("drill", ("ok", "failed"))
        passed = ctx.history.last("drill", ("ok",))
        ok = _g("drill_last_passed", "1 when the last drill passed every check")
        phases = _g("drill_phase_seconds", "Phases of the last drill (rto = plan + restore + recovery)", ["phase"])
        rpo = _g("drill_rpo_seconds", "RPO exposure measured by the last drill (newest archived commit vs now)")
        age = _g("restorability_age_seconds", "Age of the last passing drill")
        rels = _g("drill_relations", "Relations of the last drill by database and verdict (checked, skipped, "
                                     "not_checked, corrupt); reason: why skipped", ["database", "verdict", "reason"])
        if last is not None:
            ok.add_metric([], 1.0 if last.outcome == "ok" else 0.0)
            d = last.details_as(DrillResult)
            ph = d.phases if d else None
            seconds = {"plan": ph.plan_seconds, "restore": ph.restore_seconds, "recovery": ph.recovery_seconds,
                       "verify": ph.verify_seconds, "total": ph.total_seconds} if ph else {}
            for p, v in seconds.items():
                if v is not None:
                    phases.add_metric([p], v)
            if d is not None and d.rto_seconds is not None:
                phases.add_metric(["rto"], d.rto_seconds)
            if d is not None and d.rpo_seconds is not None:
                rpo.add_metric([], d.rpo_seconds)
            _relation_metrics(rels, d)
        if passed is not None:
            age.add_metric([], (ctx.now() - passed.started_at).total_seconds())
        yield from (ok, phases, rpo, age, rels)

    def _copies(self, ctx: Context) -> Iterator[Metric]:
        """Copies of production on this host by state, every state present (0 when none)."""
        from opsd.actions.copies.registry import verdicts

        counts = dict.fromkeys(("running", "kept", "orphan", "expired"), 0)
        for v in verdicts(ctx):
            counts[v.state] += 1
        g = _g("scratch_copies", "Copies of production on this host (drills, side copies) by state: running, kept "
                                 "(--keep), orphan (its job is gone), expired (kept past drill.keep_for)", ["state"])
        for state, n in counts.items():
            g.add_metric([state], float(n))
        yield g

    def _health(self, ctx: Context) -> Iterator[Metric]:
        store = HealthStore(ctx.history.db)
        sample = store.last_sample()
        locks = sample.locks if sample else None
        conns = sample.connections if sample else None
        pool = sample.pool if sample else None
        values: list[tuple[str, str, float | None]] = [
            ("lock_waiters", "Sessions waiting behind a blocker (last health sample)",
             sum(t.waiters for t in locks.trees) if locks else None),
            ("lock_longest_wait_seconds", "Longest lock wait (last health sample)",
             max((t.longest_wait for t in locks.trees), default=0.0) if locks else None),
            ("connections_utilisation_ratio", "Client connections / (max_connections - reserved)",
             conns.utilisation / 100 if conns else None),
            ("pgbouncer_waiting_clients", "PgBouncer clients waiting for a server connection",
             pool.waiting if pool else None),
            ("pgbouncer_maxwait_seconds", "Longest PgBouncer client wait", pool.maxwait if pool else None),
            ("health_probe_problems", "Parts of the last health sample that failed or timed out",
             len(sample.problems) if sample else None),
        ]
        yield from _scalars(values)
        open_ = _g("health_incidents_open", "Open health incidents by kind", ["kind"])
        counts: dict[str, int] = {"lock": 0, "pool": 0, "connections": 0, "probe": 0, "slot": 0}
        for inc in store.open_incidents():
            counts[inc.kind] = counts.get(inc.kind, 0) + 1
        for kind, n in counts.items():
            open_.add_metric([kind], float(n))
        yield open_
        yield from _replication(sample.replication if sample else None)

    def _role(self, ctx: Context) -> Iterator[Metric]:
        """This node's role as decided now (docs/ha.md), how long it has been undecided, the cluster's maintenance
        mode, and the runs skipped by job and reason (the last 1000 runs of each job)."""
        from opsd.actions.role import node_role, undecided_for
        from opsd.core.role import PRIMARY_JOBS, Role

        node = node_role(ctx)
        role = _g("role", "1 for this node's current role (primary, standby, unknown: undecided, drill host)",
                  ["role"])
        for r in Role:
            role.add_metric([str(r)], 1.0 if node.role == r else 0.0)
        undecided = undecided_for(ctx, node) if node.role == Role.UNKNOWN else None
        skipped = CounterMetricFamily(f"{PREFIX}_jobs_skipped", "Runs skipped, by job and reason (role_standby, "
                                      "role_unknown: the role was undecided, ...)", labels=["job", "reason"])
        for job in sorted(PRIMARY_JOBS):
            counts: dict[str, int] = {}
            for run in ctx.history.among_last(job, "skipped", limit=1000):
                if run.outcome == "skipped":
                    why = "role_" + str(getattr(run.details, "role", "unknown")).replace(" ", "_")
                    counts[why] = counts.get(why, 0) + 1
            for why, n in sorted(counts.items()):
                skipped.add_metric([job, why], float(n))
        yield role
        yield from _scalars([
            ("role_undecided_seconds", "Seconds this node's role has been undecided (0: decided)",
             (undecided or 0.0) if node.role == Role.UNKNOWN else 0.0),
            ("patroni_paused", "1 when Patroni's maintenance mode is on (pause: no automatic failover)",
             float(node.paused) if node.source == "patroni" else None),
            ("role_split_brain", "1 when another member answers as a primary too", float(bool(node.split_brain)))])
        yield skipped

    def _fleet(self, ctx: Context) -> Iterator[Metric]:
        """The fleet as this host last checked it (docs/fleet.md): nothing without [fleet] endpoints; the families
        without samples until the daemon first checked it."""
        from opsd.actions.fleet.state import load_state

        if not ctx.settings.fleet.enabled:
            return
        st = load_state(ctx.settings)
        per = _g("fleet_cluster_overdue", "1 for each cluster of the fleet past [fleet] drill_every since its last "
                                          "passed drill", ["cluster"])
        losses = CounterMetricFamily(f"{PREFIX}_fleet_lease_losses", "This drill host's drills whose claim was lost "
                                     "mid-drill (lease expired): their results were not recorded as the claim's")
        for cluster in st.overdue if st else []:
            per.add_metric([cluster], 1.0)
        if st is not None:
            losses.add_metric([], float(st.lease_losses))
        this = st.this_cluster_overdue if st else None
        yield from _scalars([
            ("fleet_up", "1 when etcd answered at the last fleet check, 0 when it could not be read or written",
             float(st.reachable) if st else None),
            ("fleet_checked_timestamp_seconds", "When this host last checked the fleet",
             st and st.checked_at.timestamp()),
            ("fleet_clusters", "Clusters registered in the fleet (last check)", st and st.clusters),
            ("fleet_overdue_clusters", "Clusters past [fleet] drill_every (last check)", st and len(st.overdue)),
            ("fleet_claims", "Drills in flight in the fleet (claims held, last check)", st and st.claims),
            ("fleet_drill_hosts", "Drill hosts alive in the fleet (last check)", st and st.drill_hosts),
            ("fleet_too_large_clusters", "Clusters no drill host alive has the scratch space for (last check)",
             st and len(st.too_large)),
            ("fleet_this_cluster_overdue", "A cluster host: 1 when its own cluster is overdue in the fleet",
             None if this is None else float(this))])
        yield from (per, losses)

    def _service(self, ctx: Context) -> Iterator[Metric]:
        """Service levels (docs/queries.md) from the state store: the objectives recomputed only when a snapshot
        arrived (or the configuration changed), availability over 30 days, the last index report's figures."""
        from opsd.actions.report import gauges
        from opsd.core.records.objectives import STATES

        ratio = _g("query_objective_ratio", "Share of statements under the objective's threshold over the 24 h up "
                                            "to the last snapshot (absent unless met or missed)", ["objective"])
        target = _g("query_objective_target", "The objective's target share", ["objective"])
        state = _g("query_objective_state", "1 for the objective's state over those 24 h", ["objective", "state"])
        over = CounterMetricFamily(f"{PREFIX}_queries_over_threshold", "Executions at or over the objective's "
                                   "threshold since 00:00 (opsd.timezone); resets daily", labels=["objective"])
        for o in self._objectives.get(ctx):
            target.add_metric([o.name], o.target)
            over.add_metric([o.name], float(o.over_today))
            for st in STATES:
                state.add_metric([o.name, st], float(o.state == st))
            if o.ratio is not None:
                ratio.add_metric([o.name], o.ratio)
        a = gauges.availability_gauge(ctx)
        f = gauges.index_gauge(ctx)
        yield from (ratio, target, state, over)
        yield from _scalars([
            ("availability_ratio", "Share of the last 30 days the health probe saw the server up, of the time it "
                                   "measured (up / (up + down))", a.measured_share),
            ("availability_target", "[queries] availability_target: the share up the platform promises",
             ctx.settings.queries.availability_target if a.measured_share is not None else None),
            ("availability_unknown_seconds", "Seconds of the last 30 days without a probe (never counted as up)",
             a.unknown_seconds if a.measured_share is not None else None),
            ("unused_index_bytes", "Bytes in indexes no scan used on any node (last index report; absent before "
                                   "a verdict)", f and f.unused_bytes),
            ("invalid_indexes", "Invalid indexes (last index report)", f and f.invalid),
            ("not_valid_constraints", "Constraints never validated (last index report)", f and f.not_valid),
            ("index_figures_timestamp_seconds", "When the last index report read the catalogs",
             f and f.at.timestamp())])

    def _alerts(self, ctx: Context) -> Iterator[Metric]:
        firing = _g("alerts_firing", "Alerts currently firing")
        firing.add_metric([], float(len(alerts.firing(ctx))))
        failures = CounterMetricFamily(f"{PREFIX}_alert_delivery_failures", "Alert deliveries that failed after "
                                                                             "every retry")
        failures.add_metric([], float(alerts.delivery_failures(ctx)))
        waiting = alerts.waiting_deliveries(ctx)
        pending = _g("alert_deliveries_waiting", "Alert messages not delivered yet, kept and retried until "
                                                 "alerts.delivery_expiry (docs/alerts.md)")
        pending.add_metric([], float(waiting.count))
        oldest = _g("alert_delivery_oldest_waiting_seconds", "Age of the oldest alert message waiting for delivery "
                                                             "(0: none waits)")
        since = waiting.oldest_since
        oldest.add_metric([], max((ctx.now() - since).total_seconds(), 0.0) if since else 0.0)
        yield from (firing, failures, pending, oldest)


def _replication(r: ReplicationReport | None) -> Iterator[Metric]:
    """Lag per standby (on the primary), WAL retained per slot, and this standby's own replay lag. Every family
    is there even before the first sample (without samples), so the names a rule uses always exist."""
    role = _g("replication_is_standby", "1 when this server is a standby (last health sample)")
    lag_b = _g("replication_lag_bytes", "Bytes a standby is behind this server, by standby and stage",
               ["standby", "stage"])
    lag_s = _g("replication_lag_seconds", "Seconds a standby is behind (PostgreSQL's measure), by standby and stage",
               ["standby", "stage"])
    standbys = _g("replication_standbys", "Standbys streaming from this server")
    slot = _g("replication_slot_retained_bytes", "WAL a replication slot holds back", ["slot", "active"])
    if r is not None:
        role.add_metric([], 1.0 if r.role == "standby" else 0.0)
        for b in r.standbys:
            for stage, nbytes, secs in (("write", b.write_lag_bytes, b.write_lag), ("flush", b.flush_lag_bytes,
                                        b.flush_lag), ("replay", b.replay_lag_bytes, b.replay_lag)):
                if nbytes is not None:
                    lag_b.add_metric([b.name, stage], float(nbytes))
                lag_s.add_metric([b.name, stage], float(secs or 0.0))
        standbys.add_metric([], float(sum(1 for b in r.standbys if b.state == "streaming")))
        for x in r.slots:
            slot.add_metric([x.name, "true" if x.active else "false"], float(x.retained_bytes or 0))
    yield from (role, lag_b, lag_s, standbys, slot)
    rcv = r.receiver if r is not None else None
    yield from _scalars([
        ("replication_replay_lag_seconds", "This standby's replay lag in seconds", rcv and rcv.replay_lag),
        ("replication_replay_lag_bytes", "Received but not yet replayed WAL on this standby",
         rcv and rcv.replay_lag_bytes),
        ("replication_replay_paused", "1 when replay is paused on this standby", rcv and float(rcv.paused)),
        ("replication_streaming", "1 when this standby's WAL receiver streams",
         rcv and float(rcv.source == "streaming")),
    ])


def _check_scalars(rep: CheckReport | None) -> list[tuple[str, str, float | None]]:
    arch = rep.archiver if rep else None
    repo = rep.repository if rep else None
    probe = rep.endpoint if rep else None
    f = rep.forecast if rep else None
    return [
        ("backup_forecast_end_timestamp_seconds", "When the next full backup is forecast to end (its scheduled "
         "start plus the database's forecast size at the recent fulls' speed), at the last check",
         f.end if f else None),
        ("backup_forecast_seconds", "The next full backup's forecast duration, at the last check",
         f.seconds if f else None),
        ("backup_window_end_timestamp_seconds", "When the backup window the next full backup starts in closes "
         "([schedule] backup_window), at the last check", f.window_end if f else None),
        ("backup_window_margin_seconds", "Window end minus forecast end of the next full backup (negative: it "
         "is forecast to overrun the window), at the last check",
         (f.window_end - f.end) if f and f.window_end is not None else None),
        ("wal_ready_segments", "WAL segments waiting to be archived (.ready) at the last check",
         arch.ready_count if arch else None),
        ("wal_oldest_ready_age_seconds", "Age of the oldest .ready segment at the last check (0: none waiting)",
         (arch.oldest_ready_age or 0) if arch else None),
        ("recoverable_window_start_timestamp_seconds", "Stop time of the oldest usable backup (earliest "
         "recoverable time) at the last check", repo.oldest_backup_stop if repo else None),
        ("recoverable_window_end_timestamp_seconds", "When the newest archived WAL segment was archived (about "
         "the latest recoverable time) at the last check", arch.last_archived_at if arch else None),
        ("s3_probe_requests", "Requests of the last check's S3 endpoint probe (each tried once)",
         probe.requests if probe else None),
        ("s3_probe_failed_requests", "Of those, the requests that failed (503 SlowDown, 5xx, no answer)",
         probe.failed if probe else None),
        ("s3_probe_latency_seconds", "Median latency of the last S3 endpoint probe",
         probe.median_latency if probe else None),
    ]


def registry(context: Callable[[], Context]) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(OpsdCollector(context))
    return reg


def text(ctx: Context) -> str:
    return generate_latest(registry(lambda: ctx)).decode()
