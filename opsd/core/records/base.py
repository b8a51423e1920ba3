"""The base of every saved record: frozen, versioned, forgiving of fields a newer opsd added."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, JsonValue

Json = dict[str, JsonValue]


class Part(BaseModel):
    """A typed part of a record (facts, phases, items): frozen, extra fields ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)  # built at first use: fast start-up

    def as_json(self) -> Json:
        return self.model_dump(mode="json")


class Record(Part):
    """A job's details as saved in the run history. ``KIND`` names the shape (saved beside it), ``VERSION`` its
    version; :meth:`upgrade` brings an older saved shape (version 0: opsd before versioned records) to this one.
    ``hint`` (a failed run: what to do) and ``reason`` (a skipped run: why) fit every job."""

    KIND: ClassVar[str] = "note"
    VERSION: ClassVar[int] = 1

    hint: str | None = None
    reason: str | None = None

    @classmethod
    def upgrade(cls, raw: dict[str, Any], version: int) -> dict[str, Any]:
        return raw

    @classmethod
    def load(cls, raw: dict[str, Any], version: int) -> Self:
        return cls.model_validate(cls.upgrade(raw, version) if version < cls.VERSION else raw)


class Note(Record):
    """A run with nothing but a hint or a reason (a skip, a failure before the job produced anything)."""


class Skipped(Record):
    """A job this node did not run because of its role (a standby, an undecided role): which role, from what."""

    KIND: ClassVar[str] = "skipped"
    role: str
    source: str  # patroni | postgres | config


class Unreadable(Record):
    """A saved record that no longer validates (edited by hand, damaged): readers treat it as absent."""

    KIND: ClassVar[str] = "unreadable"
    problem: str
