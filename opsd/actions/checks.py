"""Checks produce results; writers render them. The same checks serve ``opsd check`` and the daemon. Each check
returns a :class:`CheckResult` with status ok / warning / critical / skipped."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from pydantic import JsonValue

from opsd.actions import privileges, tuning
from opsd.actions.backup.forecast import window_results
from opsd.actions.copies import leftovers
from opsd.actions.fleet.check import FLEET, check_fleet
from opsd.actions.jobs import JobOutcome
from opsd.actions.queries.setup import QUERIES, check_queries
from opsd.actions.restore.service import judged_timelines
from opsd.adapters import patroni, s3_probe
from opsd.adapters.pgbackrest import StanzaInfo
from opsd.adapters.stores.health import HealthStore
from opsd.context import Context
from opsd.core.records.checks import CRITICAL, OK, SKIPPED, WARNING, CheckResult, worst
from opsd.core.records.drill import DrillResult
from opsd.core.records.jobs import (
    ArchiverFacts,
    BackupForecast,
    CheckReport,
    EndpointProbe,
    NewestBackup,
    RepositoryFacts,
)
from opsd.core.records.runs import Outcome, Run
from opsd.core.role import BACKUP_JOBS
from opsd.core.timeparse import show
from opsd.core.units import format_duration
from opsd.core.wal import DivergenceVerdict, Stamped, Switch
from opsd.db.queries import ArchiverRow, ServerRow, SettingRow, fetch_all, fetch_one
from opsd.errors import OpsdError

TS = "%Y-%m-%d %H:%M:%S%z"
ARCHIVE_SETTINGS = ["archive_mode", "archive_command", "wal_level"]
ENDPOINT = "repository.endpoint"
TIMELINES = "archive.timelines"


@dataclass
class _State:
    server: ServerRow | None = None
    info: StanzaInfo | None = None
    archiver: ArchiverFacts | None = None
    repository: RepositoryFacts | None = None
    endpoint: EndpointProbe | None = None
    forecast: BackupForecast | None = None


def check_postgres(ctx: Context, st: _State) -> CheckResult:
    with ctx.connect() as conn:
        st.server = fetch_one(conn, "server", ServerRow)
    role = "standby" if st.server.in_recovery else "primary"
    return CheckResult("postgres", OK, f"connected; PostgreSQL {st.server.version_num // 10000}, {role}",
                       {"role": role, "system_identifier": str(st.server.system_identifier)})


def check_archive_settings(ctx: Context, st: _State) -> CheckResult:
    with ctx.connect() as conn:
        rows = {r.name: r for r in fetch_all(conn, "settings", SettingRow, {"names": ARCHIVE_SETTINGS})}
    problems = []
    mode = rows["archive_mode"].setting
    if mode not in ("on", "always"):
        problems.append(f"archive_mode is {mode}")
    if rows["wal_level"].setting == "minimal":
        problems.append("wal_level is minimal")
    cmd = rows["archive_command"].setting
    stanza = ctx.settings.pgbackrest.stanza
    if "archive-push" not in cmd or f"--stanza={stanza}" not in cmd:
        problems.append(f"archive_command does not push to stanza {stanza!r} ({cmd or 'empty'})")
    pending = [n for n, r in rows.items() if r.pending_restart]
    details = {n: r.setting for n, r in rows.items()}
    if problems:
        return CheckResult("archive.settings", CRITICAL, "; ".join(problems) + " (run 'opsd setup')", details)
    if pending:
        return CheckResult("archive.settings", WARNING, f"restart pending for: {', '.join(pending)}", details)
    return CheckResult("archive.settings", OK, f"archive_mode={mode}, archive_command pushes to {stanza}", details)


def check_archiver(ctx: Context, st: _State) -> CheckResult:
    with ctx.connect() as conn:
        a = fetch_one(conn, "archiver", ArchiverRow)
    st.archiver = ArchiverFacts(
        archived_count=a.archived_count, failed_count=a.failed_count, last_archived_wal=a.last_archived_wal,
        last_failed_wal=a.last_failed_wal, ready_count=a.ready_count,
        oldest_ready_age=(a.now - a.oldest_ready).total_seconds() if a.oldest_ready else None,
        last_archived_at=a.last_archived_time.timestamp() if a.last_archived_time else None)
    details = st.archiver.as_json()
    limit = ctx.settings.check.max_ready_age
    if a.oldest_ready is not None and a.now - a.oldest_ready > limit:
        age = format_duration(a.now - a.oldest_ready)
        return CheckResult("archive.archiver", CRITICAL,
                           f"{a.ready_count} WAL segment(s) waiting to be archived, oldest for {age} "
                           f"(limit {format_duration(limit)}); last failure: {a.last_failed_wal or 'none'}", details)
    if a.last_failed_time and (a.last_archived_time is None or a.last_failed_time > a.last_archived_time):
        return CheckResult("archive.archiver", WARNING,
                           f"last archive attempt failed: {a.last_failed_wal} at {a.last_failed_time:{TS}}", details)
    ready = "unknown (needs pg_monitor)" if a.ready_count is None else str(a.ready_count)
    last = f"{a.last_archived_wal} at {a.last_archived_time:{TS}}" if a.last_archived_time else "none yet"
    return CheckResult("archive.archiver", OK, f"last archived {last}; waiting: {ready}", details)


def check_pgbackrest(ctx: Context, st: _State) -> CheckResult:
    if st.server is not None and st.server.in_recovery:
        return CheckResult("pgbackrest.check", SKIPPED, "standby: pgbackrest check runs on the primary")
    res = ctx.pgbackrest.check(archive_timeout=ctx.settings.check.archive_timeout.total_seconds())
    return CheckResult("pgbackrest.check", OK, f"WAL switch archived and found in the repository ({res.duration:.1f}s)")


def check_repository(ctx: Context, st: _State) -> CheckResult:
    st.info = ctx.pgbackrest.info()
    n = len(st.info.backups)
    lock = "; a backup is running" if st.info.lock_held else ""
    arch = st.info.archives[-1] if st.info.archives else None
    wal = f"WAL {arch.min}..{arch.max}" if arch else "no WAL archived"
    usable = [b for b in st.info.backups if not b.error]
    oldest = min((b.stop for b in usable), default=None)
    newest = max(usable, key=lambda b: b.stop, default=None)
    st.repository = RepositoryFacts(
        backups=n, lock_held=st.info.lock_held, oldest_backup_stop=oldest.timestamp() if oldest else None,
        newest_backup=NewestBackup(type=newest.type, size=newest.size, repo_size=newest.repo_size,
                                   stop=newest.stop.timestamp()) if newest else None)
    return CheckResult("repository", OK, f"{n} backup(s), {wal}{lock}", st.repository.as_json())


def check_endpoint(ctx: Context, st: _State) -> CheckResult:
    probes = ctx.settings.check.s3_probes
    if probes == 0:
        return CheckResult(ENDPOINT, SKIPPED, "probe off (check.s3_probes = 0)")
    if not s3_probe.is_s3(ctx.settings):
        return CheckResult(ENDPOINT, SKIPPED, "the repository is not on S3 (repo1-type)")
    st.endpoint = s3_probe.probe(ctx.settings, probes)
    return judge_endpoint(st.endpoint, ctx.settings.check.s3_probe_latency.total_seconds())


def judge_endpoint(p: EndpointProbe, latency_limit: float) -> CheckResult:
    """All requests failed: critical (but a refused login is a warning: the probe reads pgbackrest.conf's keys,
    pgBackRest may get its own elsewhere). Some failed, or slow: a warning, since pgBackRest retries them."""
    details = p.as_json()
    median = f"median {p.median_latency * 1000:.0f} ms" if p.median_latency is not None else "no answer"
    if p.requests and p.failed == p.requests:
        if all(e.startswith(("401 ", "403 ")) for e in p.errors):
            return CheckResult(ENDPOINT, WARNING, f"S3 endpoint {p.endpoint} refused the probe's login "
                                                  f"({p.error_summary()}): the probe uses pgbackrest.conf's "
                                                  "repo1-s3-key; set check.s3_probes = 0 if pgBackRest's "
                                                  "credentials come from elsewhere", details)
        return CheckResult(ENDPOINT, CRITICAL, f"S3 endpoint {p.endpoint}: all {p.requests} requests failed "
                                               f"({p.error_summary()})", details)
    if p.failed:
        return CheckResult(ENDPOINT, WARNING, f"S3 endpoint {p.endpoint} degraded: {p.failed} of {p.requests} "
                                              f"requests failed ({p.error_summary()}), {median}; pgBackRest "
                                              "retries these for up to io-timeout, so archiving and backups "
                                              "slow down before they fail", details)
    if p.median_latency is not None and p.median_latency > latency_limit:
        return CheckResult(ENDPOINT, WARNING, f"S3 endpoint {p.endpoint} slow: {median} over {p.requests} "
                                              f"requests (warning above {latency_limit * 1000:.0f} ms)", details)
    return CheckResult(ENDPOINT, OK, f"S3 endpoint {p.endpoint}: {p.requests} requests, {median}", details)


def check_timelines(ctx: Context, st: _State) -> CheckResult:
    """The split-brain guard: WAL of an older timeline archived after a newer timeline branched off it, holding
    a transaction that ended after the promotion, means a former primary came back on its own (not rewound,
    not a standby) and both write to the repository. The same WAL with nothing after the promotion is a
    rewound primary's last segments (Patroni archives them before pg_rewind): not a split brain, but the
    transactions in it past the switch point were lost in the failover, and the check says so."""
    j = judged_timelines(ctx, st.info)
    t, verdicts = j.timelines, j.verdicts
    newest = t.newest
    details: dict[str, JsonValue] = {"timeline": newest, "switches": [
        {"timeline": sw.timeline, "parent": sw.parent, "lsn": sw.lsn} for sw in t.switches],
        "lost_transactions": sum(len(v.lost) for v in verdicts) + len(j.lost_before)}
    split = [v for v in verdicts if v.split_brain]
    if split:
        p = ctx.settings.patroni
        known = (patroni.cluster(p.url, p.timeout.total_seconds(), p.ca_file) or []) if p.url else []
        who = (f" Patroni knows: {'; '.join(f'{m.name} ({m.role}, {m.state})' for m in known)}; the former "
               "primary is the node not listed as running.") if known else ""
        return CheckResult(TIMELINES, CRITICAL, f"split brain: {'; '.join(map(split_brain_text, split))}. A former "
                                                "primary is running on its own and both write to the repository: "
                                                "stop it, then rejoin it as a standby (pg_rewind; with Patroni: "
                                                f"patronictl reinit).{who}", details)
    if not t.switches:
        return CheckResult(TIMELINES, OK, f"timeline {newest}, no switch in the archive", details)
    last = t.switches[-1]
    abandoned: dict[int, list[Stamped]] = {last.timeline: list(j.lost_before)}
    for v in verdicts:
        abandoned.setdefault(v.divergence.switch.timeline, []).extend(v.lost)
    switches = {sw.timeline: sw for sw in t.switches}
    lost = "".join(f"; {lost_text(switches[tl], tuple(sorted(x, key=lambda r: r.time)))}"
                   for tl, x in sorted(abandoned.items()) if x)
    return CheckResult(TIMELINES, OK, f"timeline {newest}; last switch: {last.parent} -> {last.timeline} at "
                                      f"{last.lsn}; no primary on an older timeline since{lost}", details)


def split_brain_text(v: DivergenceVerdict) -> str:
    d = v.divergence
    head = (f"timeline {d.switch.parent} is still archived after timeline {d.switch.timeline} branched off it at "
            f"{d.switch.lsn} ({show(d.branched_at)}): segment {d.newest.segment.name} archived "
            f"{show(d.newest.archived_at)}")
    if v.after_promotion:
        last = v.after_promotion[-1]
        return f"{head}, with {len(v.after_promotion)} transaction(s) ended there since, the last at {show(last.time)}"
    if v.restarted_at:
        return f"{head}, where a server started as a primary at {v.restarted_at[0]}, past the switch point"
    return f"{head}, and {', '.join(v.unread)} could not be read to prove it is older"


def lost_text(sw: Switch, lost: tuple[Stamped, ...]) -> str:
    last = lost[-1]
    return (f"{len(lost)} transaction(s) on timeline {sw.parent} after {sw.lsn}, the last at {show(last.time)}, "
            f"are not on timeline {sw.timeline} (lost in the failover; 'opsd restore --target-timeline "
            f"{sw.parent}' reaches them)")


def backup_age_results(ctx: Context, info: StanzaInfo, now: datetime) -> list[CheckResult]:
    """Newest backup that satisfies each enabled schedule, against that schedule's period plus grace.
    A full satisfies a diff schedule, a full or diff an incr schedule."""
    out = []
    grace = ctx.settings.check.backup_grace
    accepted = {"full": ("full",), "diff": ("full", "diff"), "incr": ("full", "diff", "incr")}
    for job, btype in BACKUP_JOBS.items():
        sched = ctx.settings.schedule.parsed(btype)
        name = f"backup.{btype}.age"
        if sched is None:
            continue
        allowed = sched.period(now.astimezone(ctx.settings.opsd.tz)) + grace
        newest = info.newest(accepted[btype])
        if newest is None:
            out.append(CheckResult(name, CRITICAL, f"no {btype} backup in the repository (schedule {sched.expr!r})"))
            continue
        age = now - newest.stop
        details: dict[str, JsonValue] = {"label": newest.label, "age": age.total_seconds(),
                                         "allowed": allowed.total_seconds(), "job": job}
        status = CRITICAL if age > allowed else OK
        verdict = "overdue" if status == CRITICAL else "fresh"
        out.append(CheckResult(name, status, f"newest {newest.label} is {format_duration(age)} old, {verdict} "
                                             f"(allowed {format_duration(allowed)} for {sched.expr!r})", details))
    return out


def restorability_results(ctx: Context, now: datetime) -> list[CheckResult]:
    """From the run history: the last passing drill per stanza against drill.max_age, a failed drill since
    then, and the last repository verify."""
    out = []
    max_age = ctx.settings.drill.max_age
    stanzas = ctx.settings.drill_stanzas
    drills = ctx.history.runs("drill", limit=500)
    for stanza in stanzas:
        name = "restorability" if len(stanzas) == 1 else f"restorability.{stanza}"
        mine = [r for r in drills if _stanza_of(r, stanza) == stanza and r.outcome in ("ok", "failed")]
        passed = next((r for r in mine if r.outcome == "ok"), None)
        failed = next((r for r in mine if r.outcome == "failed"), None)
        if passed is None:
            status = CRITICAL if failed else WARNING
            why = f"; last drill #{failed.id} failed: {failed.error}" if failed else " (run 'opsd drill run')"
            out.append(CheckResult(name, status, f"restorability unproven: no drill has passed{why}"))
            continue
        age = now - passed.started_at
        details = {"run_id": passed.id, "age": age.total_seconds(), "max_age": max_age.total_seconds()}
        if failed is not None and failed.started_at > passed.started_at:
            out.append(CheckResult(name, CRITICAL, f"last drill #{failed.id} failed: {failed.error}", details))
        elif age > max_age:
            out.append(CheckResult(name, CRITICAL, f"restorability stale: last passing drill #{passed.id} is "
                                                   f"{format_duration(age)} old (max {format_duration(max_age)})",
                                   details))
        else:
            out.append(CheckResult(name, OK, f"last passing drill #{passed.id} is {format_duration(age)} old "
                                             f"(max {format_duration(max_age)})", details))
    last = ctx.history.last("verify", ("ok", "failed"))
    if last is not None and last.outcome == "failed":
        out.append(CheckResult("repository.verify", CRITICAL, f"last verify #{last.id} failed: {last.error}"))
    elif last is not None:
        out.append(CheckResult("repository.verify", OK, f"last verify #{last.id} passed "
                                                        f"{format_duration(now - last.started_at)} ago"))
    return out


def _stanza_of(r: Run, default: str) -> str:
    d = r.details_as(DrillResult)
    return d.stanza if d is not None else default


def health_results(ctx: Context) -> list[CheckResult]:
    """Open incidents of the health sampler (lock trees, pools, connections, probes): a warning."""
    if ctx.settings.opsd.role != "primary" or ctx.settings.schedule.parsed("health") is None:
        return []
    open_ = HealthStore(ctx.history.db).open_incidents()
    if not open_:
        return [CheckResult("health.incidents", OK, "no open lock, pool or connection incident")]
    return [CheckResult("health.incidents", WARNING, f"{len(open_)} open incident(s): "
                                                     + "; ".join(i.summary for i in open_[:3]),
                        {"incidents": [i.id for i in open_]})]


def history_results(ctx: Context) -> list[CheckResult]:
    """The run history itself, then what is judged from it (restorability, verify, health incidents)."""
    why = ctx.history.db.problem or ctx.history.db.writable()
    if why:
        return [CheckResult("history", CRITICAL, f"run history not writable: {why}",
                            {"pending": str(ctx.history.journal.path)})]
    try:
        return [CheckResult("history", OK, f"run history {ctx.history.path} writable"),
                *restorability_results(ctx, ctx.now()), *health_results(ctx)]
    except OpsdError as e:
        return [CheckResult("history", CRITICAL, str(e), {"hint": e.hint} if e.hint else {})]


def _tuning(ctx: Context, st: _State) -> list[CheckResult]:
    """Advice on pgBackRest's speed settings, and the backup window forecast: warnings at most."""
    assert st.info is not None
    try:
        out = tuning.judge(tuning.facts(ctx, st.info.backups, st.archiver.ready_count if st.archiver else None))
    except ValueError as e:  # e.g. process-max=abc: pgBackRest itself will say so louder
        out = [CheckResult("tuning", WARNING, f"cannot read pgBackRest's settings: {e}")]
    if ctx.settings.opsd.role == "primary":
        window, st.forecast = window_results(ctx.settings, st.info.backups, ctx.now())
        out += window
    return out


Step = tuple[str, Callable[[Context, _State], CheckResult]]
NEEDS_SERVER = ("archive.settings", "archive.archiver", QUERIES)  # read from PostgreSQL: skipped if unreachable


def _lanes(ctx: Context) -> list[list[Step]]:
    """The checks in independent lanes, run side by side (a check waits only for those before it in its lane):
    PostgreSQL (archiving, query statistics) then pgBackRest's own check (skipped on a standby); the repository
    then the timelines (read from its info); the endpoint probe; the fleet. A drill host has no PostgreSQL lane."""
    server: list[Step] = [("postgres", check_postgres), (privileges.CHECK, privileges.check_privileges),
                          ("archive.settings", check_archive_settings), ("archive.archiver", check_archiver),
                          (QUERIES, check_queries), ("pgbackrest.check", check_pgbackrest)]
    repository: list[Step] = [("repository", check_repository), (TIMELINES, check_timelines)]
    lanes: list[list[Step]] = [server, repository, [(ENDPOINT, check_endpoint)]]
    lanes += [[(FLEET, check_fleet)]] if ctx.settings.fleet.enabled else []  # etcd and the fleet, beside the rest
    return lanes[1:] if ctx.settings.opsd.role == "drill" else lanes


ORDER = ("postgres", privileges.CHECK, *NEEDS_SERVER, "repository", ENDPOINT, TIMELINES, "pgbackrest.check", FLEET)


def _run_lane(ctx: Context, st: _State, lane: list[Step]) -> list[CheckResult]:
    out = []
    for name, fn in lane:
        if name in NEEDS_SERVER and st.server is None:
            out.append(CheckResult(name, SKIPPED, "PostgreSQL not reachable"))
            continue
        try:
            out.append(fn(ctx, st))
        except OpsdError as e:
            out.append(CheckResult(name, CRITICAL, str(e), {"hint": e.hint} if e.hint else {}))
    return out


def run_checks(ctx: Context) -> CheckReport:
    """Run every check; one failing check never hides the others, and a slow one (an object store that does not
    answer) delays only those after it in its lane. A drill host (opsd.role = "drill") has no local PostgreSQL:
    it checks the repository and restorability only."""
    st = _State()
    lanes = _lanes(ctx)
    with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="opsd-check") as pool:
        # each lane in a copy of this context: its log lines keep the job's run id
        futures = [pool.submit(contextvars.copy_context().run, _run_lane, ctx, st, lane) for lane in lanes]
        results = sorted((r for f in futures for r in f.result()), key=lambda r: ORDER.index(r.name))
    if st.info is not None and ctx.settings.opsd.role == "primary":
        results.extend(backup_age_results(ctx, st.info, ctx.now()))
    if st.info is not None:
        results.extend(_tuning(ctx, st))
    results.extend(history_results(ctx))
    results.extend(leftovers.check_results(ctx))
    return CheckReport(results=results, worst=worst(results), archiver=st.archiver, repository=st.repository,
                       endpoint=st.endpoint, forecast=st.forecast)


def check_job(ctx: Context) -> Callable[[], JobOutcome]:
    def body() -> JobOutcome:
        report = run_checks(ctx)
        bad = [r for r in report.results if r.status == CRITICAL]
        if bad:
            raise ChecksCritical(bad, report)
        return JobOutcome(Outcome.OK, f"{len(report.results)} checks, worst: {report.worst}", report)

    return body


class ChecksCritical(OpsdError):
    def __init__(self, bad: list[CheckResult], report: CheckReport) -> None:
        super().__init__("; ".join(f"{r.name}: {r.message}" for r in bad))
        self.bad = bad
        self.report = report
        self.details = report

