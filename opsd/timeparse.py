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
    except ValueError as e:
        raise UsageError(f"invalid time {text!r}: {e}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
        # reject times that do not exist (spring-forward gap) or are ambiguous in tz
        if value.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != value.replace(tzinfo=None):
            raise UsageError(f"time {text!r} does not exist in {tz.key} (clock change); give an offset")
    return value


def show(t: datetime, tz: ZoneInfo | None = None) -> str:
    """Always with the offset: 2026-11-25 14:03:00.000000+01:00."""
    t = t.astimezone(tz) if tz else t
    return t.isoformat(sep=" ", timespec="microseconds" if t.microsecond else "seconds")


def pgbackrest_target(t: datetime) -> str:
    """The form pgBackRest and PostgreSQL read unambiguously: UTC with an explicit +00."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") + "+00"
