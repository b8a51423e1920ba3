"""One typed, frozen configuration model, loaded from TOML and validated whole.

Every problem is reported at once with its key path (``schedule.full: invalid cron expression ...``).
Lookup order for the file: ``--config PATH``, then ``$OPSD_CONFIG``, then ``/etc/opsd/opsd.toml``.
"""

from __future__ import annotations

import os
import pwd
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from opsd.errors import ConfigError
from opsd.schedule import Schedule, parse_duration, parse_schedule

DEFAULT_PATH = "/etc/opsd/opsd.toml"

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OpsdSection(_Section):
    state_dir: Path = Path("/var/lib/opsd")
    timezone: str = "UTC"
    run_as: str = "postgres"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r} (use an IANA name such as 'UTC' or 'Europe/Berlin')") from None
        return v

    @field_validator("run_as")
    @classmethod
    def _user(cls, v: str) -> str:
        try:
            pwd.getpwnam(v)
        except KeyError:
            raise ValueError(f"no such OS user {v!r}") from None
        return v

    @field_validator("state_dir")
    @classmethod
    def _abs(cls, v: Path) -> Path:
        if not v.is_absolute():
            raise ValueError("must be an absolute path")
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class PgBackRestSection(_Section):
    config: Path = Path("/etc/pgbackrest/pgbackrest.conf")
    stanza: str = Field("main", pattern=r"^[A-Za-z0-9_.-]+$")
    bin: str = "pgbackrest"
    backup_timeout: Duration = timedelta(hours=12)
    command_timeout: Duration = timedelta(minutes=10)
    probe_io_timeout: Duration = timedelta(seconds=10)


class PostgresSection(_Section):
    data_dir: Path = Path("/var/lib/postgresql/15/main")
    bin_dir: Path = Path("/usr/lib/postgresql/15/bin")
    host: str = "/var/run/postgresql"
    port: int = Field(5432, ge=1, le=65535)
    user: str = "postgres"
    dbname: str = "postgres"
    connect_timeout: Duration = timedelta(seconds=10)
    statement_timeout: Duration = timedelta(seconds=30)
    restart_command: str = ""  # empty: pg_ctl -D data_dir -m fast -w restart (as run_as)


def _check_schedule(v: str) -> str:
    parse_schedule(v)
    return v


ScheduleExpr = Annotated[str, BeforeValidator(lambda v: _check_schedule(v) if isinstance(v, str) else v)]


class ScheduleSection(_Section):
    full: ScheduleExpr = "0 1 * * *"
    diff: ScheduleExpr = "0 13 * * *"
    incr: ScheduleExpr = ""
    check: ScheduleExpr = "*/30 * * * *"
    misfire_grace: Duration = timedelta(hours=1)
    catch_up_full: bool = True

    def parsed(self, job: str) -> Schedule | None:
        value = getattr(self, job)
        assert isinstance(value, str)
        return parse_schedule(value)


class CheckSection(_Section):
    max_ready_age: Duration = timedelta(minutes=15)
    backup_grace: Duration = timedelta(hours=2)


class DaemonSection(_Section):
    shutdown_timeout: Duration = timedelta(minutes=15)


class Settings(_Section):
    opsd: OpsdSection = OpsdSection()
    pgbackrest: PgBackRestSection = PgBackRestSection()
    postgres: PostgresSection = PostgresSection()
    schedule: ScheduleSection = ScheduleSection()
    check: CheckSection = CheckSection()
    daemon: DaemonSection = DaemonSection()
    source: str = Field("<defaults>", exclude=True)


def resolve_path(cli_path: str | None) -> str:
    return cli_path or os.environ.get("OPSD_CONFIG") or DEFAULT_PATH


def _format_errors(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (typo?)"
        elif e["type"] == "missing":
            msg = "required key missing"
        problems.append(f"{loc}: {msg}")
    return problems


def parse(data: dict[str, Any], source: str = "<memory>") -> Settings:
    try:
        return Settings.model_validate({**data, "source": source})
    except ValidationError as e:
        raise ConfigError(source, _format_errors(e)) from None


def load(cli_path: str | None = None) -> Settings:
    path = resolve_path(cli_path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, ["file not found (use --config PATH or set OPSD_CONFIG)"]) from None
    except OSError as e:
        raise ConfigError(path, [f"cannot read: {e.strerror}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(path, ["not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, [f"TOML syntax error: {e}"]) from None
    return parse(data, path)


def to_display(settings: Settings) -> dict[str, dict[str, Any]]:
    """The effective config as plain data: durations as '15m', secrets masked. (No secret lives in opsd's
    own file today; pgBackRest's repository secrets stay in the DBA's pgbackrest.conf.)"""
    from pydantic import SecretStr

    from opsd.schedule import format_duration

    def show(v: Any) -> Any:
        if isinstance(v, timedelta):
            return format_duration(v)
        if isinstance(v, SecretStr):
            return "********" if v.get_secret_value() else ""
        if isinstance(v, Path):
            return str(v)
        return v

    return {section: {k: show(v) for k, v in dict(getattr(settings, section)).items()}
            for section in Settings.model_fields if section != "source"}
