"""The platform's service levels as opsd measured them: availability spans and a month of them, and the monthly
report's "Service levels" section (each success metric of the platform answered with what was measured, or with
what is missing and why). Built by core/availability.py and actions/report/service.py; rendered by
report/service_section.py; dumped whole into the report's JSON (docs/schemas/report.json)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from opsd.core.records.base import Part


class AvailabilitySpan(Part):
    """Time the health probe saw the server ``up`` or ``down`` without a gap (``what``: for down, what failed)."""

    id: int | None = None
    state: str
    start_at: datetime
    end_at: datetime
    what: str = ""


class Outage(Part):
    """A down span inside the period. ``ended``: up (a probe answered again), unknown (no probe followed: opsd
    stopped sampling while it was down), ongoing (still down at the last probe), period end."""

    start: datetime
    end: datetime
    seconds: float
    what: str
    ended: str


class AvailabilityDay(Part):
    day: str  # YYYY-MM-DD in opsd.timezone
    up_seconds: float
    down_seconds: float
    unknown_seconds: float


class Availability(Part):
    """A period's availability (core/availability.py): up, down and unknown seconds; ``measured_share`` = up /
    (up + down), ``lower_bound`` = up / period (unknown counted as down); ``budget_seconds`` = (1 - target) x
    period; ``verdict``: met (down + unknown within the budget), missed (down alone over it), not proven, no
    data."""

    period_start: datetime
    period_end: datetime  # the month's end, or now for the current month
    target: float
    up_seconds: float
    down_seconds: float
    unknown_seconds: float
    measured_share: float | None
    lower_bound: float | None
    budget_seconds: float
    verdict: str
    outages: list[Outage] = Field(default_factory=list)
    days: list[AvailabilityDay] = Field(default_factory=list)
