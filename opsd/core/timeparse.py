"""Restore targets given as times: always timezone-aware, echoed back with their offset."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from opsd.errors import UsageError

ACCEPTED = ("ISO 8601 (2026-11-25T14:03:00+01:00) or 'YYYY-MM-DD HH:MM[:SS[.ffffff]][+HH[:MM]|Z|UTC]'; "
            "without an offset the time is read in opsd.timezone")
_FORM = re.compile(
    r"^(?P<dt>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)\s*(?P<tz>Z|UTC|[+-]\d{2}(?::?\d{2})?)?$"
)


def parse_target_time(text: str, tz: ZoneInfo) -> datetime:
    """Parse a --to-time value; a time without an offset is read in ``tz``. Raises UsageError (exit 2)."""
    m = _FORM.match(text.strip())
    if not m:
        raise UsageError(f"invalid time {text!r}: use {ACCEPTED}")
    offset = m.group("tz")
    if offset in ("Z", "UTC"):
        offset = "+00:00"
    try:
        value = datetime.fromisoformat(m.group("dt") + (offset or ""))
        if value.tzinfo is None:
            value = _localize(text, value, tz)
        utc = value.astimezone(UTC)  # the instant must exist: 0001-01-01 00:00+01:00 does not
    except (ValueError, OverflowError) as e:
        raise UsageError(f"invalid time {text!r}: {e}") from None
    if not 1970 <= utc.year <= 9998:  # no WAL before 1970; and room for arithmetic on it
        raise UsageError(f"invalid time {text!r}: out of range (years 1970 to 9998)")
    return value


def _localize(text: str, naive: datetime, tz: ZoneInfo) -> datetime:
    """Read a time without offset in ``tz``; refuse one that does not exist there (spring-forward gap) or exists
    twice (the autumn overlap), naming both instants."""
    first, second = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
            raise UsageError(f"time {text!r} does not exist in {tz.key} (clock change); give an offset")
        both = " or ".join(show(t.astimezone(t.tzinfo)) for t in (first, second))
        raise UsageError(f"time {text!r} is ambiguous in {tz.key} (the clock went back): it is {both}; give the "
                         "offset you mean")
    return first


def show(t: datetime, tz: ZoneInfo | None = None) -> str:
    """Always with the offset: 2026-11-25 14:03:00.000000+01:00."""
    t = t.astimezone(tz) if tz else t
    return t.isoformat(sep=" ", timespec="microseconds" if t.microsecond else "seconds")


def pgbackrest_target(t: datetime) -> str:
    """The form pgBackRest and PostgreSQL read unambiguously: UTC with an explicit +00."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") + "+00"
