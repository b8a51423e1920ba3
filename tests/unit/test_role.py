"""Issue 15, pure part: the node's role from Patroni's and PostgreSQL's answers, and which jobs each runs."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from opsd.adapters.patroni import Deadline, cluster, node_state
from opsd.adapters.stores.runs import History
from opsd.core.role import DcsView, Member, NodeRole, PatroniState, Role, decide, skip_reason, standby_for_moved_jobs
from opsd.errors import OpsdError
from tests.conftest import serve_get
from tests.fakes import FakeRunner

URL = "http://127.0.0.1:8008"


def _patroni(role: str, state: str = "running", paused: bool = False, name: str = "db-1") -> PatroniState:
    return PatroniState(role=role, state=state, paused=paused, name=name)


HOLDS = DcsView("db-1")  # this member (db-1) holds the leader key
OTHER = DcsView("db-2")
NOBODY = DcsView(None)
LOST = DcsView(None, error="Patroni at http://127.0.0.1:8008 answered /cluster with HTTP 503")
LEADERS = {"primary": _patroni("primary"), "master": _patroni("master"), "starting": _patroni("primary", "starting"),
           "replica": _patroni("replica"), "demoted": _patroni("demoted"), "down": None}


@pytest.mark.parametrize("dcs", [HOLDS, OTHER, NOBODY, LOST, None], ids=["holds", "other", "nobody", "lost", "unasked"])
@pytest.mark.parametrize("in_recovery", [False, True, None], ids=["pg-primary", "pg-recovery", "pg-down"])
@pytest.mark.parametrize("said", list(LEADERS))
def test_primary_only_when_patroni_postgres_and_the_dcs_agree(said: str, in_recovery: bool | None,
                                                               dcs: DcsView | None) -> None:
    """Every combination of the three sources: primary only for (leader + running, not in recovery, holds the
    key); standby when Patroni says replica and the DCS has a leader; every other one is unknown and says why.
    Fails on the old decide(): in_recovery None and a key held by another member both gave PRIMARY."""
    patroni = LEADERS[said]
    node = decide(patroni_url=URL, patroni=patroni, patroni_error="refused" if patroni is None else None,
                  in_recovery=in_recovery, pg_error="no socket" if in_recovery is None else None, dcs=dcs)
    if said in ("primary", "master") and in_recovery is False and dcs is HOLDS:
        assert node.role == Role.PRIMARY
    elif said == "replica" and dcs in (HOLDS, OTHER):
        assert node.role == Role.STANDBY
    else:
        assert node.role == Role.UNKNOWN, node
    if node.role == Role.UNKNOWN and said in ("primary", "master") and node.why.count("but"):
        assert ("PostgreSQL" in node.why) or ("DCS" in node.why)
    if patroni is not None:
        assert node.sources[0].startswith("Patroni: ") and node.sources[1].startswith("PostgreSQL")
        assert node.sources[2].startswith("DCS: ")


def test_postgres_not_answering_is_never_primary() -> None:
    node = decide(patroni_url=URL, patroni=_patroni("primary"), patroni_error=None, in_recovery=None,
                  pg_error="connection refused", dcs=HOLDS)
    assert node.role == Role.UNKNOWN and "PostgreSQL did not answer: connection refused" in node.why


def test_leader_key_elsewhere_is_named() -> None:
    node = decide(patroni_url=URL, patroni=_patroni("primary"), patroni_error=None, in_recovery=False,
                  pg_error=None, dcs=OTHER)
    assert node.role == Role.UNKNOWN and "leader key held by db-2" in node.why and "db-1" in node.why


def test_paused_cluster_with_a_second_primary_is_split_brain_on_both() -> None:
    """Maintenance mode, db-2 promoted by hand: the key holder and the promoted member are both undecided."""
    leader = decide(patroni_url=URL, patroni=_patroni("primary", paused=True), patroni_error=None,
                    in_recovery=False, pg_error=None, dcs=DcsView("db-1", ("db-2",)))
    assert leader.role == Role.UNKNOWN and leader.paused and "db-2" in leader.split_brain
    rogue = decide(patroni_url=URL, patroni=_patroni("primary", paused=True, name="db-2"), patroni_error=None,
                   in_recovery=False, pg_error=None, dcs=DcsView("db-1", ("db-1",)))
    assert rogue.role == Role.UNKNOWN and rogue.split_brain
    calm = decide(patroni_url=URL, patroni=_patroni("primary", paused=True), patroni_error=None, in_recovery=False,
                  pg_error=None, dcs=HOLDS)
    assert calm.role == Role.PRIMARY and calm.paused and "paused" in calm.why and not calm.split_brain


def test_without_patroni_postgres_decides() -> None:
    assert decide(patroni_url="", patroni=None, patroni_error=None, in_recovery=False, pg_error=None).role \
        == Role.PRIMARY
    assert decide(patroni_url="", patroni=None, patroni_error=None, in_recovery=True, pg_error=None).role \
        == Role.STANDBY
    down = decide(patroni_url="", patroni=None, patroni_error=None, in_recovery=None, pg_error="no socket")
    assert down.role == Role.UNKNOWN and "no socket" in down.why


PRIMARY = NodeRole(Role.PRIMARY, "patroni", "Patroni: primary, running")
STANDBY = NodeRole(Role.STANDBY, "patroni", "Patroni: replica, running")
UNKNOWN = NodeRole(Role.UNKNOWN, "patroni", "Patroni at x did not answer")


def test_which_jobs_run_where() -> None:
    writers = ["backup-full", "backup-diff", "backup-incr", "heartbeat", "drill", "verify", "report"]
    assert [j for j in [*writers, "check"] if skip_reason(j, PRIMARY, []) is not None] == []
    assert [j for j in writers if skip_reason(j, STANDBY, []) is None] == []
    assert skip_reason("check", STANDBY, []) is None and skip_reason("check", UNKNOWN, []) is None
    assert all("role unknown (Patroni at x did not answer)" in (skip_reason(j, UNKNOWN, []) or "") for j in writers)
    moved = ["drill", "verify"]  # spare the primary: the standbys run them, the primary no longer does
    assert skip_reason("drill", STANDBY, moved) is None and skip_reason("verify", STANDBY, moved) is None
    assert "runs on the standbys" in (skip_reason("drill", PRIMARY, moved) or "")
    assert skip_reason("backup-full", STANDBY, moved) is not None
    assert skip_reason("drill", UNKNOWN, moved) is not None
    drill_host = NodeRole(Role.DRILL_HOST, "config", "")
    assert skip_reason("drill", drill_host, []) is None


@pytest.fixture
def patroni_api() -> Iterator[tuple[str, dict[str, Any]]]:
    answer: dict[str, Any] = {"status": 200, "body": b"{}"}
    with serve_get(lambda _path: (answer["status"], answer["body"])) as url:
        yield url, answer


def test_patronis_rest_answer_is_read(patroni_api: tuple[str, dict[str, Any]]) -> None:
    url, answer = patroni_api
    answer["body"] = json.dumps({"state": "running", "role": "replica", "pause": True, "timeline": 3}).encode()
    assert node_state(url, 2) == PatroniState(role="replica", state="running", paused=True, timeline=3)
    answer.update(status=503, body=json.dumps({"state": "starting", "role": "uninitialized"}).encode())
    assert node_state(url, 2).state == "starting"  # 503 with its status: still an answer
    answer.update(status=503, body=b"<html>gateway</html>")
    with pytest.raises(OpsdError, match="answered HTTP 503"):
        node_state(url, 2)
    answer.update(status=200, body=b"[1, 2]")
    with pytest.raises(OpsdError, match="not its status"):
        node_state(url, 2)
    with pytest.raises(OpsdError, match=r"Patroni at http://127\.0\.0\.1:1 did not answer"):
        node_state("http://127.0.0.1:1", 2)
    with pytest.raises(OpsdError) as e:
        node_state("http://user:s3cret@127.0.0.1:1", 2)
    assert "s3cret" not in str(e.value) and "did not answer" in str(e.value)


def test_moved_jobs_run_on_one_standby(patroni_api: tuple[str, dict[str, Any]]) -> None:
    """With several standbys, the first healthy replica by name runs the jobs moved off the primary; a stopped
    or starting one is passed over; Patroni's members are read from GET /cluster."""
    url, answer = patroni_api
    answer["body"] = json.dumps({"members": [
        {"name": "db-3", "role": "replica", "state": "streaming", "host": "10.0.0.3", "port": 5432},
        {"name": "db-1", "role": "leader", "state": "running"},
        {"name": "db-2", "role": "replica", "state": "stopped"},
        {"name": "db-4", "role": "sync_standby", "state": "streaming"}]}).encode()
    members = cluster(url, 2)
    assert members is not None and [m.name for m in members] == ["db-3", "db-1", "db-2", "db-4"]
    assert standby_for_moved_jobs(members) == "db-3"
    assert standby_for_moved_jobs([Member("db-1", "leader", "running")]) is None
    assert cluster("http://127.0.0.1:1", 2) is None  # no answer: every standby runs them (never left undone)
    answer["body"] = json.dumps({"state": "running", "role": "replica", "patroni": {"name": "db-4"}}).encode()
    assert node_state(url, 2).name == "db-4"


def test_setup_leaves_archiving_settings_to_patroni() -> None:
    from opsd.actions.backup.setup import patroni_owned

    assert patroni_owned({}, "http://127.0.0.1:8008") is None  # nothing to change: nothing to say
    assert patroni_owned({"archive_mode": "on"}, "") is None  # without Patroni, opsd sets it itself
    err = patroni_owned({"archive_mode": "on", "archive_command": "pgbackrest --stanza=main archive-push %p"},
                        "http://127.0.0.1:8008")
    assert err is not None and "archive_mode: 'on'" in str(err) and "patronictl edit-config" in str(err)
    assert "archive_command: 'pgbackrest --stanza=main archive-push %p'" in str(err)


@pytest.fixture
def dripping() -> Iterator[str]:
    """A Patroni API that answers one byte a second (headers included), as through a sick proxy."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            body = json.dumps({"state": "running", "role": "primary"}).encode()
            answer = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            with contextlib.suppress(OSError), conn:
                for i in range(len(answer)):
                    if stop.wait(1.0):
                        return
                    conn.sendall(answer[i:i + 1])

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://opsd:s3cretTOKEN@127.0.0.1:{srv.getsockname()[1]}/api?key=hidden"
    finally:
        stop.set()
        srv.close()


def test_a_dripping_api_is_cut_at_one_deadline(dripping: str) -> None:
    """urllib's timeout is per read: a byte a second never trips it. One deadline for the whole answer does, and
    the error names scheme://host:port only. Fails on the old adapter (it waited ~70 s for the whole answer)."""
    started = time.monotonic()
    with pytest.raises(OpsdError) as e:
        node_state(dripping, Deadline(2.0))
    took = time.monotonic() - started
    assert took < 3.0, took
    port = dripping.rsplit(":", 1)[1].split("/", maxsplit=1)[0]
    assert str(e.value) == f"Patroni at http://127.0.0.1:{port} did not answer within 2.0s"


def test_the_role_decision_returns_within_the_deadline(dripping: str, settings_factory) -> None:  # type: ignore[no-untyped-def]
    """node_role() with a dripping Patroni: unknown, naming the API, within [patroni] timeout + 1 s."""
    from opsd.actions.role import node_role
    from opsd.context import Context

    def no_db() -> Any:
        raise OpsdError("no PostgreSQL in a unit test")

    s = settings_factory(patroni={"url": dripping, "timeout": "2s"})
    ctx = Context(settings=s, runner=FakeRunner(), connect=no_db, history=History(s.opsd.state_dir, s.opsd.run_as))
    started = time.monotonic()
    node = node_role(ctx)
    assert time.monotonic() - started < 3.0
    assert node.role == Role.UNKNOWN and "did not answer within 2.0s" in node.why
    assert "s3cret" not in node.describe() and "hidden" not in node.describe() and "/api" not in node.describe()


def test_an_undecided_role_is_loud(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    """Undecided: remembered since when, alerted after undecided_alert_after or at once when a job is skipped
    because of it; resolved when decided. Split brain alerted until decided. Fails on the old code: no alert."""
    from opsd.actions import alerts
    from opsd.actions.role import SPLIT_BRAIN, UNDECIDED, observe, undecided_for

    fake_ctx = fake_ctx()
    sick = NodeRole(Role.UNKNOWN, "patroni", "Patroni: primary, running, but DCS: nobody holds the leader key")
    assert observe(fake_ctx, sick) == 0.0 and UNDECIDED not in alerts.firing(fake_ctx)  # not yet: 15 min
    assert undecided_for(fake_ctx) is not None
    observe(fake_ctx, sick, "backup-full")  # a job skipped because of it: at once
    assert UNDECIDED in alerts.firing(fake_ctx)
    brain = NodeRole(Role.UNKNOWN, "patroni", "split", paused=True, split_brain="db-2 also answer(s) as primary")
    observe(fake_ctx, brain)
    assert SPLIT_BRAIN in alerts.firing(fake_ctx)
    observe(fake_ctx, PRIMARY)
    assert UNDECIDED not in alerts.firing(fake_ctx) and SPLIT_BRAIN not in alerts.firing(fake_ctx)
    assert undecided_for(fake_ctx) is None


def test_a_job_skipped_undecided_is_recorded_alerted_and_counted(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    """run_job: a scheduled backup on an undecided node is recorded as skipped AND raises role.undecided at once
    (not 15 minutes later); the metrics show the role, how long undecided, and the skip by job and reason; the
    decided role resolves the alert. Fails on the old code: the skip was only logged, no alert, no such metrics."""
    from opsd.actions import alerts
    from opsd.actions.jobs import JobOutcome, run_job
    from opsd.actions.role import UNDECIDED
    from opsd.core.records.runs import Outcome
    from opsd.metrics import text
    from opsd.report.console import role as render_role

    sick = NodeRole(Role.UNKNOWN, "patroni", "Patroni: primary, running, but DCS: nobody holds the leader key",
                    paused=True, sources=("Patroni: primary, running, paused", "PostgreSQL: not in recovery",
                                          "DCS: nobody holds the leader key"))
    ctx = fake_ctx()
    ctx.role = sick

    def body() -> JobOutcome:
        raise AssertionError("an undecided node must not back up")

    out = run_job(ctx, "backup-full", "schedule", body)
    assert out.outcome == Outcome.SKIPPED
    last = ctx.history.last("backup-full")
    assert last is not None and last.outcome == "skipped"
    assert UNDECIDED in alerts.firing(ctx)
    metrics = text(ctx)
    assert 'opsd_role{role="unknown"} 1.0' in metrics and 'opsd_role{role="primary"} 0.0' in metrics
    assert 'opsd_jobs_skipped_total{job="backup-full",reason="role_unknown"} 1.0' in metrics
    assert "opsd_role_undecided_seconds " in metrics and "opsd_patroni_paused 1.0" in metrics
    shown = render_role(sick, 125.0)
    assert "role: unknown (cluster paused: maintenance mode), undecided for" in shown
    assert "DCS: nobody holds the leader key" in shown and "PostgreSQL: not in recovery" in shown
    ctx.role = PRIMARY
    run_job(ctx, "backup-full", "schedule", lambda: JobOutcome(Outcome.OK, "done"))
    assert UNDECIDED not in alerts.firing(ctx)
    assert 'opsd_role{role="primary"} 1.0' in text(ctx) and "opsd_role_undecided_seconds 0.0" in text(ctx)


def test_undecided_longer_than_the_threshold_alerts_without_a_skip(fake_ctx) -> None:  # type: ignore[no-untyped-def]
    """[patroni] undecided_alert_after: a node undecided that long alerts even when no job was skipped (the check
    job and opsd status look too), with the reason; before it, nothing. Fails without the "since" memory."""
    from datetime import timedelta

    from opsd.actions import alerts
    from opsd.actions.role import UNDECIDED, observe
    from opsd.adapters.stores import role_state

    ctx = fake_ctx(patroni={"undecided_alert_after": "10m"})
    sick = NodeRole(Role.UNKNOWN, "patroni", "Patroni at http://127.0.0.1:8008 did not answer within 2.0s")
    role_state.mark_undecided(ctx.history.state_dir, ctx.history.owner, ctx.now() - timedelta(minutes=9), "x")
    observe(ctx, sick)
    assert UNDECIDED not in alerts.firing(ctx)
    role_state.mark_undecided(ctx.history.state_dir, ctx.history.owner, ctx.now() - timedelta(minutes=11), "x")
    seconds = observe(ctx, sick)
    assert seconds is not None and seconds >= 660 and UNDECIDED in alerts.firing(ctx)


def test_a_running_backup_stops_for_a_standby_a_split_brain_or_a_role_undecided_twice() -> None:
    from opsd.core.role import NodeRole, Role, stop_running_backup

    primary = NodeRole(Role.PRIMARY, "patroni", "leader")
    unknown = NodeRole(Role.UNKNOWN, "patroni", "the DCS did not answer")
    standby = NodeRole(Role.STANDBY, "patroni", "replica")
    brain = NodeRole(Role.UNKNOWN, "patroni", "two primaries", split_brain="node2 answers as a primary")
    assert stop_running_backup([]) is None
    assert stop_running_backup([primary, primary]) is None
    assert stop_running_backup([primary, unknown]) is None  # one slow answer: not yet
    assert stop_running_backup([unknown, unknown]) is unknown  # cut off from the DCS: before its TTL ends
    assert stop_running_backup([unknown, primary]) is None
    assert stop_running_backup([primary, standby]) is standby
    assert stop_running_backup([brain]) is brain
