"""Issue 15, pure part: the node's role from Patroni's and PostgreSQL's answers, and which jobs each runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from opsd.adapters.patroni import cluster, node_state
from opsd.core.role import Member, NodeRole, PatroniState, Role, decide, skip_reason, standby_for_moved_jobs
from opsd.errors import OpsdError
from tests.conftest import serve_get

URL = "http://127.0.0.1:8008"


def _patroni(role: str, state: str = "running", paused: bool = False) -> PatroniState:
    return PatroniState(role=role, state=state, paused=paused)


@pytest.mark.parametrize(("patroni", "error", "in_recovery", "role"), [
    (_patroni("primary"), None, False, Role.PRIMARY),
    (_patroni("master"), None, False, Role.PRIMARY),  # Patroni 2.x
    (_patroni("replica"), None, True, Role.STANDBY),
    (_patroni("standby_leader"), None, True, Role.STANDBY),
    (_patroni("primary"), None, True, Role.UNKNOWN),  # promotion under way: wait until both agree
    (_patroni("primary", state="starting"), None, False, Role.UNKNOWN),
    (_patroni("demoted"), None, True, Role.UNKNOWN),
    (None, "connection refused", False, Role.UNKNOWN),  # Patroni down: PostgreSQL alone does not decide
    (_patroni("replica", paused=True), None, True, Role.STANDBY),
])
def test_patroni_decides_and_postgres_must_agree(patroni: PatroniState | None, error: str | None,
                                                 in_recovery: bool, role: Role) -> None:
    node = decide(patroni_url=URL, patroni=patroni, patroni_error=error, in_recovery=in_recovery, pg_error=None)
    assert node.role == role and node.source == "patroni"
    if error:
        assert error in node.why and URL in node.why
    if patroni is not None and patroni.paused:
        assert node.paused and "paused" in node.why


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
