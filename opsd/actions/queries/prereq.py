"""What query statistics and the objectives need from PostgreSQL, what is missing, and what to set (pure).

From the server's settings and a few facts: ``pg_stat_statements`` preloaded and created, ``compute_query_id``
(the duration log's ``query_id``), ``log_min_duration_statement`` at or below the lowest objective threshold,
a log opsd can read (the logging collector writing jsonlog or csvlog, its messages untranslated), ``track_io_timing``
(block read and write times), and ``pg_read_all_stats`` (without it other roles' statement texts are hidden; they
still count). ``opsd check`` says what is missing in one line; ``opsd setup --query-stats`` sets it
(docs/queries.md, "Setup").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from opsd.actions.copies.quarantine import parse_libraries
from opsd.core.queries.counting import Override, destinations, english, log_faults, log_formats, override_faults

PGSS = "pg_stat_statements"
PRELOAD, QUERY_ID, MIN_DURATION = "shared_preload_libraries", "compute_query_id", "log_min_duration_statement"
COLLECTOR, DESTINATION, IO_TIMING = "logging_collector", "log_destination", "track_io_timing"
MESSAGES = "lc_messages"
SETTINGS = (PRELOAD, QUERY_ID, MIN_DURATION, COLLECTOR, DESTINATION, MESSAGES, IO_TIMING)
RESTART = frozenset({PRELOAD, COLLECTOR})  # postmaster context: read at start only
EXTENSION, READ_ALL_STATS, OVERRIDE = "extension", "pg_read_all_stats", "override"
_TRUE = ("on", "true", "yes", "1", "t", "y")


@dataclass(frozen=True)
class Facts:
    """The server as it runs now: ``settings`` are pg_settings' values (a change waiting for a restart is not
    in them: its name is in ``pending``)."""

    settings: Mapping[str, str]
    pending: frozenset[str] = frozenset()
    extension: bool = False  # CREATE EXTENSION pg_stat_statements done in [postgres] dbname
    read_all_stats: bool = False  # a superuser or a member of pg_read_all_stats
    role: str = "postgres"
    database: str = "postgres"
    in_recovery: bool = False
    # pg_db_role_setting (ALTER DATABASE/ROLE ... SET): those that lower what is logged or counted are said
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True)
class Missing:
    name: str  # a setting, "extension" or "pg_read_all_stats"
    what: str  # what is wrong, one phrase
    how: str  # how to turn it on
    restart: bool  # takes effect only after a PostgreSQL restart
    by_setup: bool = True  # 'opsd setup --query-stats' does it


@dataclass(frozen=True)
class Change:
    """One ALTER SYSTEM: ``items`` are a list setting's elements (ALTER SYSTEM SET name = 'a', 'b': one literal
    'a,b' would be one library named "a,b")."""

    name: str
    old: str
    new: str
    items: tuple[str, ...] = ()

    @property
    def restart(self) -> bool:
        return self.name in RESTART


def is_on(value: str) -> bool:
    return value.strip().lower() in _TRUE


def preloads_pgss(value: str) -> bool:
    return any(lib.rsplit("/", 1)[-1].removesuffix(".so") == PGSS for lib in parse_libraries(value))


def threshold_ms(lowest: timedelta | None) -> int | None:
    """log_min_duration_statement (whole milliseconds, rounded down: never logs less) for the lowest threshold."""
    return None if lowest is None else int(lowest.total_seconds() * 1000)


def logs_enough(value: str, lowest: timedelta | None) -> bool:
    """log_min_duration_statement (pg_settings: milliseconds; -1 off) logs every execution at or over the lowest
    objective threshold."""
    ms = threshold_ms(lowest)
    if ms is None:
        return True
    try:
        current = int(value)
    except ValueError:
        return False
    return 0 <= current <= ms


def changes(configured: Mapping[str, str], lowest: timedelta | None, log_format: str) -> list[Change]:
    """The ALTER SYSTEM to run, from what the files say now (a change waiting for a restart included, so it is not
    made twice). What is there is kept: a library is appended, a destination added, a lower
    log_min_duration_statement never raised."""
    out = []
    libs = parse_libraries(configured[PRELOAD])
    if not preloads_pgss(configured[PRELOAD]):
        items = (*libs, PGSS)
        out.append(Change(PRELOAD, configured[PRELOAD], ", ".join(items), items))
    if configured[QUERY_ID].strip().lower() in ("off", "false", "no", "0"):
        out.append(Change(QUERY_ID, configured[QUERY_ID], "on"))
    ms = threshold_ms(lowest)
    if ms is not None and not logs_enough(configured[MIN_DURATION], lowest):
        out.append(Change(MIN_DURATION, configured[MIN_DURATION], f"{ms}ms"))
    if not is_on(configured[COLLECTOR]):
        out.append(Change(COLLECTOR, configured[COLLECTOR], "on"))
    dest = destinations(configured[DESTINATION])
    formats = log_formats(log_format)
    if not any(f in dest for f in formats):
        out.append(Change(DESTINATION, configured[DESTINATION], ",".join([*dest, formats[0]])))
    if not english(configured[MESSAGES]):
        out.append(Change(MESSAGES, configured[MESSAGES], "C"))
    if not is_on(configured[IO_TIMING]):
        out.append(Change(IO_TIMING, configured[IO_TIMING], "on"))
    return out


def _waiting(name: str, facts: Facts) -> str:
    return " (changed, waiting for a restart)" if name in facts.pending else ""


def missing(facts: Facts, lowest: timedelta | None, log_format: str) -> list[Missing]:
    """What the running server lacks, each with how to turn it on and whether that needs a restart."""
    return [*_missing_settings(facts, lowest, log_format), *_missing_facts(facts)]


def _missing_settings(facts: Facts, lowest: timedelta | None, log_format: str) -> list[Missing]:
    """pg_stat_statements preloaded, then what core/queries/counting.log_faults finds (the rules the snapshot's
    log reader applies too), then I/O timing."""
    s, out = facts.settings, []
    if not preloads_pgss(s[PRELOAD]):
        out.append(Missing(PRELOAD, f"shared_preload_libraries lacks pg_stat_statements{_waiting(PRELOAD, facts)}",
                           "add pg_stat_statements to shared_preload_libraries", True))
    ms = threshold_ms(lowest)
    for f in log_faults(s, lowest_ms=None if ms is None else float(ms), log_format=log_format):
        out.append(Missing(f.name, f.what + _waiting(f.name, facts), f.how, f.name in RESTART))
    if not is_on(s[IO_TIMING]):
        out.append(Missing(IO_TIMING, "track_io_timing is off (no block read and write times)",
                           "track_io_timing = on", False))
    ceiling = float(ms) if ms is not None else 1e15  # no objective: only what logs nothing at all
    for why in override_faults(facts.overrides, ceiling, None, None):
        out.append(Missing(OVERRIDE, why, "ALTER ... RESET the setting (docs/queries.md#exactness)", False,
                           by_setup=False))
    return out


def _missing_facts(facts: Facts) -> list[Missing]:
    out = []
    if not facts.extension:
        loaded = preloads_pgss(facts.settings[PRELOAD])
        where = "on the primary" if facts.in_recovery else "there" if loaded else "after the restart"
        out.append(Missing(EXTENSION, f"extension pg_stat_statements not created in database {facts.database}",
                           f"CREATE EXTENSION pg_stat_statements {where}", False, by_setup=not facts.in_recovery))
    if not facts.read_all_stats:
        out.append(Missing(READ_ALL_STATS, f"role {facts.role} lacks pg_read_all_stats: other roles' statement "
                                           "texts are hidden (their statements still count)",
                           f"GRANT pg_read_all_stats TO {facts.role}", False, by_setup=False))
    return out


def summary(found: Sequence[Missing]) -> str:
    """The check's one line: what is missing, then how to turn it on."""
    if not found:
        return ("pg_stat_statements loaded and created, query ids, the duration log (jsonlog/csvlog) and I/O "
                "timing on")
    what = "; ".join(m.what + (" [restart]" if m.restart else "") for m in found)
    return (f"query statistics incomplete: {what}; to turn them on: {'; '.join(_fixes(found))} "
            "(docs/queries.md#setup; not wanted: [queries] enabled = false)")


def _fixes(found: Sequence[Missing]) -> list[str]:
    setup = [m for m in found if m.by_setup]
    restart = any(m.restart for m in setup)
    out = [("run 'opsd setup --query-stats --restart' (a restart is needed)" if restart
            else "run 'opsd setup --query-stats'")] if setup else []
    return out + list(dict.fromkeys(m.how for m in found if not m.by_setup))  # each fix once
