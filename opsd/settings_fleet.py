"""``[fleet]``: drills shared by the hosts of a fleet through etcd (docs/fleet.md): the etcd cluster (TLS and
authentication as Patroni configures them; the password from a file), the fleet's name, this host's part in it
(``cluster``: publishes its cluster; ``drill``: claims and drills the clusters of the fleet), a drill host's
capacity, and how often every cluster must be drilled."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import ByteSize, Field, field_validator

from opsd.settings_types import PositiveDuration, _absolute, _Section

NAME = r"[A-Za-z0-9_.-]+"


class FleetSection(_Section):
    endpoints: list[str] = Field(default_factory=list)  # empty: no fleet; http(s)://host:2379, as Patroni's etcd3
    name: str = Field("default", pattern=rf"^{NAME}$")
    host: str | None = Field(None, pattern=rf"^{NAME}$")  # this host's name in the fleet; default its hostname
    # cluster: this host publishes its cluster (stanza, repository, size, newest backup, last drill)
    # drill: this host claims the next drill of the fleet; default from [opsd] role (primary: cluster)
    role: Literal["cluster", "drill"] | None = None
    cluster: str | None = Field(None, pattern=rf"^{NAME}$")  # this cluster's name in the fleet; default the stanza
    repository: str = Field("default", pattern=rf"^{NAME}$")  # the repository's name, as drill hosts know it
    # drill host: the pgbackrest.conf holding each repository's credentials (never published), by name
    repositories: dict[str, Path] = Field(default_factory=dict)
    cacert: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    username: str | None = None
    password_file: Path | None = None
    ttl: PositiveDuration = timedelta(seconds=30)  # a drill host's lease: lost this long after it stopped answering
    timeout: PositiveDuration = timedelta(seconds=5)  # each request to etcd (every endpoint in turn)
    drill_every: PositiveDuration = timedelta(days=7)
    # a cluster drilled (passed or failed) less than this ago is not claimed again while others wait
    min_gap: PositiveDuration = timedelta(hours=12)
    publish_every: PositiveDuration = timedelta(minutes=5)
    keep_results: PositiveDuration = timedelta(days=400)
    scratch_space: ByteSize | None = None  # drill host: default the free space of the scratch area
    cores: int | None = Field(None, ge=1, le=1024)  # drill host: default the host's cores

    _abs = field_validator("cacert", "cert", "key", "password_file")(_absolute)

    @field_validator("endpoints")
    @classmethod
    def _endpoints(cls, v: list[str]) -> list[str]:
        if bad := [x for x in v if not re.fullmatch(r"https?://[A-Za-z0-9_.:\[\]-]+(:\d+)?/?", x)]:
            raise ValueError(f"not an etcd client URL (http(s)://host:port): {', '.join(map(repr, bad))}")
        return [x.rstrip("/") for x in v]

    @field_validator("repositories")
    @classmethod
    def _repositories(cls, v: dict[str, Path]) -> dict[str, Path]:
        if bad := [k for k, p in v.items() if not re.fullmatch(NAME, k) or not p.is_absolute()]:
            raise ValueError(f"repository names must be {NAME} and their pgbackrest.conf absolute: "
                             f"{', '.join(map(repr, bad))}")
        return v

    @property
    def enabled(self) -> bool:
        return bool(self.endpoints)

    def role_for(self, opsd_role: str) -> Literal["cluster", "drill"]:
        return self.role or ("drill" if opsd_role == "drill" else "cluster")
