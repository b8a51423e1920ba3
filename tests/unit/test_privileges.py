"""The postgres.privileges judge: a superuser (or a member of one) is a warning; a non-superuser role is judged by
what the jobs opsd runs by itself need, and what the jobs a DBA starts would lack is named."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import pytest

from opsd.actions.privileges import CHECK, JOBS, judge, missing, scheduled_jobs
from opsd.core.records.checks import OK, WARNING
from opsd.db.queries import PrivilegesRow

FLAGS = [f.name for f in fields(PrivilegesRow) if f.type in ("bool", bool) and f.name != "superuser"]
DEFAULT_JOBS = frozenset({"check", "health", "heartbeat", "backup"})


def row(*, superuser: bool = False, via: str | None = None, **flags: bool) -> PrivilegesRow:
    values: dict[str, Any] = dict.fromkeys(FLAGS, False)
    values.update({"heartbeat_owner": True, **flags})
    return PrivilegesRow(role="opsd", database="app", superuser=superuser, superuser_via=via, **values)


MONITOR_READER = row(pg_monitor=True, pg_read_all_data=True)  # the role the issue names, nothing more
RECIPE = row(pg_monitor=True, pg_read_all_data=True, pg_checkpoint=True, file_settings=True, heartbeat_table=True,
             heartbeat_write=True, heartbeat_owner=False)  # docs/install.md's role, after setup ran as a superuser


def _jobs(result: Any) -> dict[str, dict[str, Any]]:
    return {j["job"]: j for j in result.details["jobs"]}


def test_a_superuser_is_a_warning_that_says_why_and_what_is_enough() -> None:
    r = judge(row(superuser=True), DEFAULT_JOBS)
    assert (r.name, r.status) == (CHECK, WARNING)
    assert r.message.startswith("opsd connects as superuser opsd: a table owner's code run by opsd"), r.message
    assert "pg_monitor + pg_read_all_data" in r.message and "check, health and the side-restore comparison" in r.message
    for job in ("setup needs ALTER SYSTEM", "heartbeat INSERT and DELETE", "restore-point create EXECUTE on "
                "pg_create_restore_point()", "restore --table --into-schema CREATE on the database"):
        assert job in r.message, (job, r.message)
    # a superuser lacks nothing, whatever the role flags say (they are not consulted for it)
    assert all(j["missing"] == [] for j in r.details["jobs"]) and r.details["superuser"] is True
    assert r.details["member_of"] == []  # the row says it has none of the predefined roles
    assert _jobs(r)["setup"]["needs"] and _jobs(r)["heartbeat"]["runs"] == "scheduled"


def test_a_member_of_a_superuser_role_is_a_superuser_in_all_but_name() -> None:
    r = judge(replace(RECIPE, superuser_via="postgres"), DEFAULT_JOBS)
    assert r.status == WARNING
    assert "opsd connects as opsd, a member of superuser postgres (it can SET ROLE to it)" in r.message, r.message


def test_pg_monitor_and_pg_read_all_data_alone_name_what_each_job_lacks() -> None:
    r = judge(MONITOR_READER, DEFAULT_JOBS)
    assert r.status == WARNING and "superuser" not in r.message.split(";")[0].replace("not a superuser", "")
    assert r.message.startswith("opsd connects as opsd (not a superuser); jobs opsd runs by itself lack privileges:")
    assert "heartbeat lacks opsd.heartbeat to exist (created by 'opsd setup'); INSERT and DELETE on opsd.heartbeat" \
        in r.message, r.message
    assert "backup lacks pg_checkpoint" in r.message and "check lacks EXECUTE on pg_show_all_file_settings()" in \
        r.message
    assert "on demand: setup would lack ALTER SYSTEM on archive_command, archive_mode, wal_level; EXECUTE on " \
           "pg_reload_conf(); CREATE on the database" in r.message, r.message
    jobs = _jobs(r)
    assert r.details["member_of"] == ["pg_monitor", "pg_read_all_data"]
    assert jobs["health"]["missing"] == [] and jobs["compare"]["missing"] == []
    assert jobs["setup"]["runs"] == "on demand" and jobs["heartbeat"]["runs"] == "scheduled"
    assert jobs["restore-point create"]["missing"] == ["EXECUTE on pg_create_restore_point(text)",
                                                       "EXECUTE on pg_switch_wal()"]


def test_a_job_opsd_does_not_run_is_named_but_not_judged() -> None:
    """Heartbeat off and no backups scheduled: the same role is fine for what opsd runs by itself."""
    r = judge(replace(MONITOR_READER, file_settings=True), frozenset({"check", "health"}))
    assert r.status == OK, r.message
    assert r.message.startswith("opsd connects as opsd (not a superuser); the jobs it runs by itself (check, "
                                "health) have what they need; on demand: ")
    assert "heartbeat would lack" in r.message and "backup would lack pg_checkpoint" in r.message


def test_the_documented_role_is_ok_and_only_hand_run_jobs_lack_anything() -> None:
    r = judge(RECIPE, DEFAULT_JOBS)
    assert r.status == OK, r.message
    lacking = {j["job"] for j in r.details["jobs"] if j["missing"]}
    assert lacking == {"setup", "restore-point create", "restore --table --into-schema", "restore in place"}


NEEDS: list[tuple[str, dict[str, str]]] = [  # a privilege, and the jobs that lack it when it is missing
    ("pg_monitor", {"check": "pg_monitor", "health": "pg_monitor"}),
    ("file_settings", {"check": "EXECUTE on pg_show_all_file_settings()"}),
    ("pg_read_all_data", {"compare": "pg_read_all_data", "restore --table --into-schema": "pg_read_all_data"}),
    ("heartbeat_table", {"heartbeat": "opsd.heartbeat to exist"}),
    ("heartbeat_write", {"heartbeat": "INSERT and DELETE on opsd.heartbeat"}),
    ("pg_checkpoint", {"backup": "pg_checkpoint", "restore in place": "pg_checkpoint"}),
    ("alter_system_archive", {"setup": "ALTER SYSTEM on archive_command"}),
    ("reload_conf", {"setup": "EXECUTE on pg_reload_conf()", "restore in place": "EXECUTE on pg_reload_conf()"}),
    ("create_on_database", {"setup": "CREATE on the database", "restore --table --into-schema": "CREATE on"}),
    ("heartbeat_owner", {"setup": "ownership of schema opsd"}),
    ("restore_point", {"restore-point create": "EXECUTE on pg_create_restore_point(text)"}),
    ("switch_wal", {"restore-point create": "EXECUTE on pg_switch_wal()"}),
    ("alter_system_recovery", {"restore in place": "ALTER SYSTEM on the recovery settings"}),
    ("pg_write_all_data", {}),  # shown in details; heartbeat_write is what the heartbeat needs (its effect)
]


@pytest.mark.parametrize(("flag", "lacking"), NEEDS)
def test_each_privilege_is_what_its_jobs_read(flag: str, lacking: dict[str, str]) -> None:
    """With everything granted no job lacks anything; taking one privilege away makes exactly its need missing,
    in exactly the jobs that run a statement needing it."""
    everything = row(**dict.fromkeys(FLAGS, True))
    assert all(missing(everything, j) == [] for j in JOBS)
    without = replace(everything, **{flag: False})
    got = {j: missing(without, j) for j in JOBS if missing(without, j)}
    assert set(got) == set(lacking), (flag, got)
    for job, need in lacking.items():
        assert len(got[job]) == 1 and got[job][0].startswith(need), (flag, job, got[job])


def test_every_flag_of_the_row_is_judged() -> None:
    """A new column in privileges.sql comes with a need, or with a reason in the table above."""
    assert {flag for flag, _ in NEEDS} == set(FLAGS)


def test_which_jobs_opsd_runs_by_itself(settings_factory: Any) -> None:
    default = settings_factory()
    assert scheduled_jobs(default, in_recovery=False) == DEFAULT_JOBS
    assert scheduled_jobs(default, in_recovery=True) == {"check", "health"}  # a standby writes nothing
    quiet = settings_factory(drill={"heartbeat_interval": "0s"},
                             schedule={"full": "", "diff": "", "incr": "", "health": ""})
    assert scheduled_jobs(quiet, in_recovery=False) == {"check"}
    only_incr = settings_factory(schedule={"full": "", "diff": "", "incr": "0 * * * *"})
    assert "backup" in scheduled_jobs(only_incr, in_recovery=False)
