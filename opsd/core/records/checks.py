"""Check results: what ``opsd check``, the daemon's checks, drills and alerts share. ``details`` is the evidence
a person reads (rendered, sent with alerts); facts other code reads have typed homes (``CheckReport``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import field
from enum import StrEnum

from pydantic import ConfigDict, JsonValue
from pydantic.dataclasses import dataclass


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    SKIPPED = "skipped"


OK, WARNING, CRITICAL, SKIPPED = Status.OK, Status.WARNING, Status.CRITICAL, Status.SKIPPED
_ORDER = (SKIPPED, OK, WARNING, CRITICAL)


@dataclass(frozen=True, config=ConfigDict(extra="ignore"))
class CheckResult:
    name: str
    status: Status
    message: str
    details: Mapping[str, JsonValue] = field(default_factory=dict)


def worst(results: Iterable[CheckResult]) -> Status:
    return max((r.status for r in results), key=_ORDER.index, default=OK)
