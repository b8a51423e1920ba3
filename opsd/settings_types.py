"""The building blocks of every configuration section: durations (positive ones for timeouts and ages),
absolute paths, and the frozen section model that refuses unknown keys."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from opsd.core.schedule import parse_duration

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _positive(v: timedelta) -> timedelta:
    if v <= timedelta(0):
        raise ValueError("must be longer than zero")
    return v


def _absolute(v: Path | None) -> Path | None:
    if v is not None and not v.is_absolute():
        raise ValueError("must be an absolute path")
    return v


# A timeout, an age limit or an interval: zero would mean "fail at once" or "always stale", never "off".
PositiveDuration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
