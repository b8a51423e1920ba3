"""What query statistics need, judged from pg_settings and a few facts: each missing piece named with how to turn it
on and whether that needs a restart; what setup would ALTER SYSTEM keeps what is there (a library appended, a
destination added, a lower log_min_duration_statement never raised); Patroni's text carries the list whole."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from opsd.actions.queries import prereq
from opsd.actions.queries.prereq import Facts, changes, missing, summary
from opsd.actions.queries.setup import patroni_refusal

MS100 = timedelta(milliseconds=100)
FRESH = {"shared_preload_libraries": "", "compute_query_id": "auto", "log_min_duration_statement": "-1",
         "logging_collector": "off", "log_destination": "stderr", "lc_messages": "C", "track_io_timing": "off"}
READY = {"shared_preload_libraries": "pg_stat_statements", "compute_query_id": "auto",
         "log_min_duration_statement": "100", "logging_collector": "on", "log_destination": "stderr,jsonlog",
         "lc_messages": "en_US.UTF-8", "track_io_timing": "on"}


def facts(settings: dict[str, str], **kw: Any) -> Facts:
    return Facts(settings=settings, **{"extension": True, "read_all_stats": True, "role": "opsd",
                                       "database": "app", **kw})


def test_a_fresh_server_lacks_everything_each_with_its_fix_and_restart() -> None:
    fresh = facts({**FRESH, "lc_messages": "de_DE.UTF-8"}, extension=False, read_all_stats=False)
    found = {m.name: m for m in missing(fresh, MS100, "auto")}
    assert list(found) == [*[n for n in prereq.SETTINGS if n != "compute_query_id"], "extension",
                           "pg_read_all_stats"]  # compute_query_id auto: on once pg_stat_statements is loaded
    assert {n for n, m in found.items() if m.restart} == {"shared_preload_libraries", "logging_collector"}
    assert found["log_min_duration_statement"].what == "log_min_duration_statement is -1 (no duration logged)"
    assert found["log_destination"].what == "log_destination 'stderr' has no jsonlog or csvlog"
    assert found["extension"].how == "CREATE EXTENSION pg_stat_statements after the restart"
    assert not found["pg_read_all_stats"].by_setup
    assert "still count" in found["pg_read_all_stats"].what


def test_a_ready_server_misses_nothing_and_says_so() -> None:
    assert missing(facts(READY), MS100, "auto") == []
    assert summary([]).startswith("pg_stat_statements loaded and created")
    # a lower threshold logs more: still enough; 0 logs everything
    assert missing(facts({**READY, "log_min_duration_statement": "0"}), MS100, "auto") == []
    assert missing(facts({**READY, "log_min_duration_statement": "50"}), MS100, "auto") == []


def test_a_threshold_above_says_by_how_much() -> None:
    found = missing(facts({**READY, "log_min_duration_statement": "250"}), MS100, "auto")
    assert [m.what for m in found] == ["log_min_duration_statement is 250 ms, above the lowest objective threshold "
                                       "(100 ms)"]


@pytest.mark.parametrize(("key", "value", "name"), [
    ("log_min_duration_statement", "250", "log_min_duration_statement"),  # above the threshold: misses 100..250 ms
    ("log_destination", "stderr,csvlog", None),  # csvlog is read on auto
    ("compute_query_id", "off", "compute_query_id"),
    ("compute_query_id", "on", None),
    ("shared_preload_libraries", "auto_explain, $libdir/pg_stat_statements.so", None),
    ("shared_preload_libraries", '"pg_stat_statements_x"', "shared_preload_libraries"),
    ("logging_collector", "off", "logging_collector"),
    ("track_io_timing", "off", "track_io_timing"),
    ("lc_messages", "de_DE.UTF-8", "lc_messages"),  # 'Dauer: ...': the log reader finds no duration
    ("lc_messages", "C.UTF-8", None),
    ("lc_messages", "", None),
])
def test_each_setting_judged(key: str, value: str, name: str | None) -> None:
    found = [m.name for m in missing(facts({**READY, key: value}), MS100, "auto")]
    assert found == ([name] if name else [])


def test_the_log_format_asked_for_is_the_one_needed() -> None:
    assert [m.name for m in missing(facts(READY), MS100, "csvlog")] == ["log_destination"]
    assert changes(READY, MS100, "csvlog")[0].new == "stderr,jsonlog,csvlog"


def test_pending_and_standby_are_said() -> None:
    f = facts(FRESH | {"logging_collector": "off"}, pending=frozenset({"shared_preload_libraries"}),
              extension=False, in_recovery=True)
    found = {m.name: m for m in missing(f, MS100, "auto")}
    assert found["shared_preload_libraries"].what.endswith("(changed, waiting for a restart)")
    assert found["extension"].how == "CREATE EXTENSION pg_stat_statements on the primary"
    assert not found["extension"].by_setup


def test_the_check_line_is_one_line_with_what_and_how() -> None:
    line = summary(missing(facts(FRESH, read_all_stats=False), MS100, "auto"))
    assert "\n" not in line
    assert line.startswith("query statistics incomplete: shared_preload_libraries lacks pg_stat_statements "
                           "[restart]; log_min_duration_statement is -1 (no duration logged)")
    assert line.endswith("to turn them on: run 'opsd setup --query-stats --restart' (a restart is needed); "
                         "GRANT pg_read_all_stats TO opsd (docs/queries.md#setup; not wanted: [queries] enabled = "
                         "false)")
    only_reload = summary(missing(facts({**READY, "track_io_timing": "off"}), MS100, "auto"))
    assert "run 'opsd setup --query-stats'" in only_reload and "restart" not in only_reload


def test_setup_keeps_what_is_there() -> None:
    got = {c.name: c for c in changes({**FRESH, "shared_preload_libraries": "auto_explain, pg_cron",
                                       "log_destination": "stderr,syslog"}, MS100, "auto")}
    pre = got["shared_preload_libraries"]
    assert pre.items == ("auto_explain", "pg_cron", "pg_stat_statements") and pre.restart
    assert pre.new == "auto_explain, pg_cron, pg_stat_statements"
    assert got["log_destination"].new == "stderr,syslog,jsonlog" and not got["log_destination"].restart
    assert got["log_min_duration_statement"].new == "100ms"
    assert got["logging_collector"].new == "on" and got["logging_collector"].restart
    assert "compute_query_id" not in got and "lc_messages" not in got  # auto; C
    assert changes({**READY, "lc_messages": "fr_FR.UTF-8"}, MS100, "auto")[0].new == "C"
    # a lower log_min_duration_statement is never raised; a ready server needs nothing
    assert changes({**READY, "log_min_duration_statement": "20"}, MS100, "auto") == []
    assert [c.name for c in changes({**READY, "compute_query_id": "off"}, MS100, "auto")] == ["compute_query_id"]
    # sub-millisecond thresholds round down: never log less than the objective needs
    assert changes({**READY, "log_min_duration_statement": "-1"}, timedelta(microseconds=100500),
                   "auto")[0].new == "100ms"
    # no objective: no duration log needed
    assert changes({**READY, "log_min_duration_statement": "-1"}, None, "auto") == []


def test_setup_builds_on_a_change_waiting_for_a_restart() -> None:
    # the files already hold pg_stat_statements (pg_file_settings, not applied): not appended twice
    assert changes({**READY, "shared_preload_libraries": "auto_explain, pg_stat_statements"}, MS100, "auto") == []


def test_under_patroni_the_text_says_what_to_put_where() -> None:
    err = patroni_refusal(changes({**READY, "shared_preload_libraries": "auto_explain",
                                   "logging_collector": "off"}, MS100, "auto"))
    msg = str(err)
    assert "shared_preload_libraries: 'auto_explain,pg_stat_statements'; logging_collector: 'on'" in msg
    assert "postgresql.parameters" in msg and "patronictl restart <scope> --pending" in msg
    assert "\n" not in msg


def test_the_check_is_skipped_not_ok_when_queries_are_off(fake_ctx: Any) -> None:
    from opsd.actions.queries.setup import check_queries
    from opsd.core.records.checks import SKIPPED

    res = check_queries(fake_ctx(queries={"enabled": False}))  # no connection opened (fake_ctx would fail)
    assert (res.name, res.status) == ("queries", SKIPPED) and "enabled = false" in res.message


def test_the_collector_note_says_where_the_debian_log_goes() -> None:
    from pathlib import Path
    from types import SimpleNamespace

    from opsd.actions.queries.setup import collector_note
    from opsd.adapters.cluster import Layout
    from opsd.db.query_setup import QuerySettingRow

    rows = {"data_directory": QuerySettingRow("data_directory", "/var/lib/postgresql/15/main", False),
            "log_directory": QuerySettingRow("log_directory", "log", False)}
    debian = SimpleNamespace(layout=Layout("debian", Path("/etc/postgresql/15/main"), "15", "main"))
    note = collector_note(debian, rows).message  # type: ignore[arg-type]
    assert "the server log moves to /var/lib/postgresql/15/main/log" in note
    assert "/var/log/postgresql/postgresql-15-main.log keeps only what comes before the collector starts" in note
    rows["log_directory"] = QuerySettingRow("log_directory", "/srv/pglog", False)
    assert "moves to /srv/pglog " in collector_note(debian, rows).message  # type: ignore[arg-type]


def test_overrides_that_hide_executions_are_warned_about() -> None:
    from opsd.core.queries.counting import overrides_of

    over = (*overrides_of("shop", None, ["log_min_duration_statement=-1"]),
            *overrides_of(None, "batch", ["log_min_duration_statement=50ms", "work_mem=1GB"]))
    found = missing(facts(READY, overrides=over), MS100, "auto")
    assert [(m.name, m.what, m.by_setup) for m in found] == [
        ("override", "ALTER DATABASE shop SET log_min_duration_statement = -1: log_min_duration_statement is -1 (no "
                     "duration logged)", False)]
    assert "ALTER DATABASE shop SET log_min_duration_statement = -1" in summary(found)
