"""Where a fleet keeps what in etcd: every key under ``/opsd/fleet/<fleet>/`` (docs/fleet.md, "Keys")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

ROOT = "/opsd/fleet"


@dataclass(frozen=True)
class Keys:
    fleet: str

    @property
    def prefix(self) -> str:
        return f"{ROOT}/{self.fleet}/"

    @property
    def clusters(self) -> str:
        return f"{self.prefix}clusters/"

    @property
    def hosts(self) -> str:
        return f"{self.prefix}hosts/"

    @property
    def claims(self) -> str:
        return f"{self.prefix}claims/"

    @property
    def results(self) -> str:
        return f"{self.prefix}results/"

    def cluster(self, name: str) -> str:
        return f"{self.clusters}{name}"

    def host(self, name: str) -> str:
        return f"{self.hosts}{name}"

    def claim(self, cluster: str) -> str:
        return f"{self.claims}{cluster}"

    def result(self, cluster: str, started_at: datetime, host: str) -> str:
        """One drill's result: sorted by start time under the cluster's prefix."""
        return f"{self.results}{cluster}/{stamp(started_at)}-{host}"

    def results_of(self, cluster: str) -> str:
        return f"{self.results}{cluster}/"

    def cluster_of_result(self, key: str) -> str:
        return key[len(self.results):].split("/", 1)[0]


def stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")

