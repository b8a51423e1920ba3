"""``[drill]``: recovery drills and every copy of production (scratch area, port, verification, the copies'
quarantine, space and priority) and the operator's smoke queries."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import ByteSize, Field, field_validator

from opsd.settings_types import Duration, PositiveDuration, _absolute, _Section


class SmokeQuery(_Section):
    """An operator's own check on the restored copy: the first column of the first row must equal ``expect``
    (booleans compare as 'true'/'false', NULL as 'null')."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    sql: str = Field(min_length=1)
    dbname: str = "postgres"
    expect: str = "true"


class DrillSection(_Section):
    scratch_dir: Path | None = None  # default <state_dir>/scratch
    port: int = Field(55499, ge=1, le=65535)
    process_max: int = Field(1, ge=1, le=64)
    heartbeat_interval: Duration = timedelta(minutes=1)  # "0s" disables the heartbeat job
    heartbeat_retention: PositiveDuration = timedelta(days=45)
    max_age: PositiveDuration = timedelta(days=8)
    rto_target: PositiveDuration = timedelta(hours=1)
    rpo_target: PositiveDuration = timedelta(minutes=5)
    recovery_timeout: PositiveDuration = timedelta(hours=6)
    verify_statement_timeout: PositiveDuration = timedelta(hours=1)
    verify_jobs: int | None = Field(None, ge=1, le=64)  # default: half the cores beside production, all on a drill host
    shared_buffers: str = "128MB"
    # copies of production (docs/security.md): the preload libraries they keep, how long --keep keeps one, the
    # free space kept on a filesystem shared with production (the larger of the two), their CPU and IO priority
    preload_allow: list[str] = Field(default_factory=lambda: ["pg_stat_statements"])
    keep_for: PositiveDuration = timedelta(hours=24)
    space_floor_percent: int = Field(10, ge=0, le=90)
    space_floor: ByteSize = ByteSize(5 * 1024**3)
    priority: Literal["auto", "low", "normal"] = "auto"  # auto: low beside production, normal on a drill host
    stanzas: list[str] = Field(default_factory=list)  # drill host: stanzas verified in rotation
    smoke_queries: list[SmokeQuery] = Field(default_factory=list)

    _abs = field_validator("scratch_dir")(_absolute)

    @field_validator("stanzas")
    @classmethod
    def _stanzas(cls, v: list[str]) -> list[str]:
        if bad := [x for x in v if not re.fullmatch(r"[A-Za-z0-9_.-]+", x)]:
            raise ValueError(f"invalid stanza name(s): {', '.join(map(repr, bad))}")
        return v

    def jobs(self, beside_production: bool) -> int:
        """Verification connections: ``verify_jobs``, else half the cores beside production, all elsewhere."""
        cores = max(1, os.cpu_count() or 1)
        return self.verify_jobs or (max(1, cores // 2) if beside_production else cores)

    def low_priority(self, beside_production: bool) -> bool:
        return self.priority == "low" or (self.priority == "auto" and beside_production)


