"""The composition root: builds the adapters an action needs from the settings, once per command/job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from opsd.adapters.cluster import Layout, detect_layout
from opsd.adapters.pgbackrest import Base, PgBackRest
from opsd.adapters.runner import ProcessRunner, Runner
from opsd.adapters.stores.runs import History
from opsd.core.role import NodeRole
from opsd.db.connection import Connect, factory
from opsd.settings import Settings


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    settings: Settings
    runner: Runner
    connect: Connect
    history: History
    now: Callable[[], datetime] = field(default=utcnow)
    role: NodeRole | None = None  # decided by the caller (unit tests); None: asked of Patroni/PostgreSQL per job

    @property
    def pgbackrest(self) -> PgBackRest:
        s = self.settings.pgbackrest
        return PgBackRest(
            base=Base(bin=s.bin, config=str(s.config), stanza=s.stanza), runner=self.runner,
            backup_timeout=s.backup_timeout.total_seconds(), command_timeout=s.command_timeout.total_seconds(),
            probe_io_timeout=s.probe_io_timeout.total_seconds(),
        )

    def for_stanza(self, stanza: str) -> Context:
        """The same context aimed at another stanza of the same pgbackrest.conf (drill host rotation)."""
        if stanza == self.settings.pgbackrest.stanza:
            return self
        section = self.settings.pgbackrest.model_copy(update={"stanza": stanza})
        return replace(self, settings=self.settings.model_copy(update={"pgbackrest": section}))

    @property
    def layout(self) -> Layout:
        """Where the cluster's configuration lives and how it is started (detected, or [postgres] config_dir)."""
        pg = self.settings.postgres
        return detect_layout(pg.data_dir, pg.config_dir)

    @property
    def lock_dir(self) -> Path:
        return self.settings.opsd.state_dir / "locks"


def build(settings: Settings, runner: Runner | None = None) -> Context:
    return Context(
        settings=settings,
        runner=runner or ProcessRunner(run_as=settings.opsd.run_as),
        connect=factory(settings.postgres, run_as=settings.opsd.run_as),
        history=History(settings.opsd.state_dir, settings.opsd.run_as),
    )
