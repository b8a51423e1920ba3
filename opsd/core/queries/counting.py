"""Whether the objectives can be counted exactly (pure; docs/queries.md, "Exactness"): one set of rules for the
server's settings, used by the snapshot's log reader (core/queries/logline.log_source) and by the ``queries``
check (actions/queries/prereq), and the per-database and per-role overrides (``ALTER DATABASE/ROLE ... SET``,
pg_db_role_setting) that lower the executions logged over a threshold or drop calls for the statements of some
objectives only.

* ``logging_collector`` off, no jsonlog/csvlog in ``log_destination``: nothing to read;
* ``log_min_duration_statement`` -1 or above a threshold: executions over it go unlogged;
* ``lc_messages`` translated: ``duration:`` is written in another language, the reader finds none;
* ``compute_query_id`` off: no ``query_id`` in the log, and pg_stat_statements counts nothing;
* ``pg_stat_statements.track`` none: no calls; ``pg_stat_statements.track_utility`` off: utility statements'
  calls are not counted while the log times them.

``log_duration`` is not a fault: it adds ``duration:`` lines under the threshold (counted as executions, never
as over) and never hides one over it (PostgreSQL names a statement logged for its duration)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MIN_DURATION, MESSAGES, COLLECTOR, DESTINATION = ("log_min_duration_statement", "lc_messages", "logging_collector",
                                                  "log_destination")
QUERY_ID, TRACK, TRACK_UTILITY = "compute_query_id", "pg_stat_statements.track", "pg_stat_statements.track_utility"
_OFF = ("off", "false", "no", "0", "f", "n")
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "min": 60000.0, "h": 3600000.0, "d": 86400000.0}
_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$")


@dataclass(frozen=True)
class Fault:
    """One reason the objectives cannot be counted exactly: the setting, what is wrong, how to fix it."""

    name: str
    what: str
    how: str


def english(value: str) -> bool:
    """lc_messages under which PostgreSQL writes 'duration: ...' as is (empty: the server's environment, taken
    as it is)."""
    v = value.strip()
    return not v or v in ("C", "POSIX") or v.startswith(("C.", "en"))


def is_off(value: str) -> bool:
    return value.strip().lower() in _OFF


def log_formats(log_format: str) -> tuple[str, ...]:
    """The log formats opsd reads (``[queries] log_format``): both on auto."""
    return ("jsonlog", "csvlog") if log_format == "auto" else (log_format,)


def destinations(value: str) -> list[str]:
    return [d.strip().lower() for d in value.split(",") if d.strip()]


def duration_ms(value: str) -> float | None:
    """A duration setting's value in milliseconds (pg_settings: bare ms; ALTER ... SET: a unit may follow);
    None when unreadable."""
    m = _DURATION.match(value)
    return None if m is None else float(m.group(1)) * _UNITS_MS[m.group(2) or "ms"]


def min_duration_fault(value: str, threshold_ms: float | None, what: str = "the lowest objective threshold"
                       ) -> str | None:
    """Why log_min_duration_statement = ``value`` misses executions at or over ``threshold_ms``; None if not."""
    m = _DURATION.match(value)
    if m is None:
        return f"log_min_duration_statement is {value!r}, unreadable"
    ms = float(m.group(1)) * _UNITS_MS[m.group(2) or "ms"]
    if ms < 0:
        return "log_min_duration_statement is -1 (no duration logged)"
    if threshold_ms is not None and ms > int(threshold_ms):
        shown = value.strip() if m.group(2) else f"{value.strip()} ms"
        return f"log_min_duration_statement is {shown}, above {what} ({int(threshold_ms)} ms)"
    return None


def log_faults(s: Mapping[str, str], *, lowest_ms: float | None, log_format: str) -> list[Fault]:
    """What in the server's settings (pg_settings names to values) keeps the objectives from being counted
    exactly, in a fixed order. A setting absent from ``s`` is not judged."""
    out = []
    if is_off(s.get(QUERY_ID, "")):
        out.append(Fault(QUERY_ID, "compute_query_id is off (the duration log carries no query_id)",
                         "compute_query_id = on"))
    if MIN_DURATION in s and lowest_ms is not None and (why := min_duration_fault(s[MIN_DURATION], lowest_ms)):
        out.append(Fault(MIN_DURATION, why, f"log_min_duration_statement = {int(lowest_ms)}ms"))
    if COLLECTOR in s and s[COLLECTOR].strip().lower() not in ("on", "true", "yes", "1"):
        out.append(Fault(COLLECTOR, "logging_collector is off", "logging_collector = on"))
    formats = log_formats(log_format)
    if DESTINATION in s and not any(f in destinations(s[DESTINATION]) for f in formats):
        out.append(Fault(DESTINATION, f"log_destination '{s[DESTINATION]}' has no {' or '.join(formats)}",
                         f"add {formats[0]} to log_destination"))
    if not english(s.get(MESSAGES, "")):
        out.append(Fault(MESSAGES, f"lc_messages is '{s[MESSAGES]}': the duration log is translated, opsd reads "
                                   "'duration:'", "lc_messages = 'C'"))
    if s.get(TRACK, "").strip().lower() == "none":
        out.append(Fault(TRACK, "pg_stat_statements.track is none (no calls counted)",
                         "pg_stat_statements.track = top"))
    if is_off(s.get(TRACK_UTILITY, "")):
        out.append(Fault(TRACK_UTILITY, "pg_stat_statements.track_utility is off (utility statements' calls not "
                                        "counted, their durations logged)", "pg_stat_statements.track_utility = on"))
    return out


@dataclass(frozen=True)
class Override:
    """One setting of pg_db_role_setting: for sessions in ``database`` (None: every one) as ``role`` (None:
    every one)."""

    database: str | None
    role: str | None
    name: str
    value: str

    def covers(self, database: str | None, role: str | None) -> bool:
        """Some session an objective with this selector (None: every) counts runs under this override."""
        return ((self.database is None or database is None or self.database == database)
                and (self.role is None or role is None or self.role == role))

    @property
    def where(self) -> str:
        if self.database and self.role:
            return f"ALTER ROLE {self.role} IN DATABASE {self.database}"
        return f"ALTER DATABASE {self.database}" if self.database else f"ALTER ROLE {self.role}"


def overrides_of(database: str | None, role: str | None, setconfig: Iterable[str]) -> list[Override]:
    """One pg_db_role_setting row (``setconfig``: ``name=value`` items) as overrides."""
    out = []
    for item in setconfig:
        name, _, value = item.partition("=")
        out.append(Override(database or None, role or None, name.strip().lower(), value.strip()))
    return out


def _override_why(o: Override, threshold_ms: float) -> str | None:
    if o.name == MIN_DURATION:
        return min_duration_fault(o.value, threshold_ms, "the threshold")
    if o.name == MESSAGES and not english(o.value):
        return "the duration log of those sessions is translated"
    if o.name == QUERY_ID and is_off(o.value):
        return "no query_id, and pg_stat_statements counts nothing"
    if o.name == TRACK and o.value.strip().lower() == "none":
        return "pg_stat_statements counts no calls"
    if o.name == TRACK_UTILITY and is_off(o.value):
        return "utility statements' calls are not counted"
    return None


def override_faults(overrides: Iterable[Override], threshold_ms: float, database: str | None, role: str | None
                    ) -> list[str]:
    """Why an objective (its threshold and selector) cannot be counted exactly under the overrides, one line each
    (empty: it can)."""
    out = []
    for o in overrides:
        if o.covers(database, role) and (why := _override_why(o, threshold_ms)):
            out.append(f"{o.where} SET {o.name} = {o.value}: {why}")
    return out
