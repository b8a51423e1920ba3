"""What 'opsd setup --query-stats' decides before it changes anything: it refuses to preload a pg_stat_statements the
server does not have (the postmaster would not start after the restart), and it stops the duration log from
carrying bind parameters unless the DBA chose how many."""

from __future__ import annotations

from datetime import timedelta

import pytest

from opsd.actions.queries.setup import NOT_INSTALLED, PARAMS, params_kept, plan
from opsd.errors import ExitCode, OpsdError

MS100 = timedelta(milliseconds=100)
FRESH = {"shared_preload_libraries": "auto_explain", "compute_query_id": "auto",
         "log_min_duration_statement": "-1", "logging_collector": "off", "log_destination": "stderr",
         "lc_messages": "C", "track_io_timing": "off", PARAMS: "-1"}
READY = {"shared_preload_libraries": "pg_stat_statements", "compute_query_id": "auto",
         "log_min_duration_statement": "100", "logging_collector": "on", "log_destination": "stderr,jsonlog",
         "lc_messages": "C", "track_io_timing": "on", PARAMS: "0"}


def test_a_library_not_installed_is_never_preloaded() -> None:
    with pytest.raises(OpsdError) as e:
        plan(FRESH, MS100, "auto", available=False, patroni=False)
    assert str(e.value) == NOT_INSTALLED == ("pg_stat_statements is not installed on this server (Debian: it comes "
                                             "with postgresql-15; elsewhere postgresql-contrib)")
    assert e.value.exit_code == ExitCode.FAILED and e.value.hint is None  # one line, exit 1
    # under Patroni too: what to set there would name a library the nodes do not have
    with pytest.raises(OpsdError, match=r"^pg_stat_statements is not installed"):
        plan(FRESH, MS100, "auto", available=False, patroni=True)
    # installed: the library is appended to what is there
    todo = plan(FRESH, MS100, "auto", available=True, patroni=False)
    assert todo[0].items == ("auto_explain", "pg_stat_statements")


def test_already_preloaded_needs_no_installed_check() -> None:
    # the library is loaded (or waits in the files for a restart): nothing is added to shared_preload_libraries
    assert plan(READY, MS100, "auto", available=False, patroni=False) == []
    todo = plan({**READY, "track_io_timing": "off"}, MS100, "auto", available=False, patroni=False)
    assert [c.name for c in todo] == ["track_io_timing"]


def test_bind_parameters_are_turned_off_only_from_the_default() -> None:
    todo = {c.name: c for c in plan(FRESH, MS100, "auto", available=True, patroni=False)}
    p = todo[PARAMS]
    assert (p.old, p.new, p.restart, p.items) == ("-1", "0", False, ())  # a reload
    assert plan({**READY, PARAMS: "-1"}, MS100, "auto", available=True, patroni=False) == [p]
    for chosen in ("0", "64", "1024"):  # the DBA's choice is kept
        assert plan({**READY, PARAMS: chosen}, MS100, "auto", available=True, patroni=False) == []
    kept = params_kept("64")
    assert kept is not None and kept.name == PARAMS and kept.status == "ok"
    assert kept.message.startswith("64 kept (not the default -1: your choice)") and "up to 64 bytes" in kept.message
    assert params_kept("0") is None and params_kept("-1") is None


def test_under_patroni_the_bind_parameters_are_said_with_the_rest() -> None:
    with pytest.raises(OpsdError) as e:
        plan({**READY, PARAMS: "-1"}, MS100, "auto", available=True, patroni=True)
    assert "set log_parameter_max_length: '0' under postgresql.parameters" in str(e.value)
