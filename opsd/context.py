"""The composition root: builds the adapters an action needs from the settings, once per command/job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from opsd.adapters.runner import ProcessRunner, Runner
from opsd.adapters.stores.runs import History

if TYPE_CHECKING:  # imported when first used: 'opsd status' needs neither psycopg nor pgBackRest's adapter
    from opsd.adapters.cluster import Layout
    from opsd.adapters.pgbackrest import PgBackRest
    from opsd.core.role import NodeRole
    from opsd.db.connection import Conn, Connect
    from opsd.settings import PostgresSection, Settings


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
        from opsd.adapters.pgbackrest import Base, PgBackRest

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
        from opsd.adapters.cluster import detect_layout

        pg = self.settings.postgres
        return detect_layout(pg.data_dir, pg.config_dir)

    @property
    def lock_dir(self) -> Path:
        return self.settings.opsd.state_dir / "locks"


def _connect(pg: PostgresSection, run_as: str) -> Connect:
    """The connection factory, psycopg imported at the first connection."""
    made: list[Connect] = []

    def connect() -> Conn:
        if not made:
            from opsd.db.connection import factory

            made.append(factory(pg, run_as=run_as))
        return made[0]()

    return connect


def build(settings: Settings, runner: Runner | None = None) -> Context:
    return Context(
        settings=settings,
        runner=runner or ProcessRunner(run_as=settings.opsd.run_as),
        connect=_connect(settings.postgres, settings.opsd.run_as),
        history=History(settings.opsd.state_dir, settings.opsd.run_as),
    )
