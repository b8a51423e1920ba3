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

from pydantic import (
    BeforeValidator,
    ByteSize,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from opsd import DEFAULT_CONFIG
from opsd.core.backup_window import BackupWindow, parse_window
from opsd.core.schedule import Schedule, parse_schedule
from opsd.core.thinning import DEFAULT_KEEP, Keep, Tier, parse_keep
from opsd.errors import ConfigError
from opsd.settings_check import cross_field_problems, format_errors, problems_despite
from opsd.settings_drill import DrillSection
from opsd.settings_fleet import FleetSection
from opsd.settings_queries import QueriesSection
from opsd.settings_rehearse import RehearseSection
from opsd.settings_types import Duration, PositiveDuration, _absolute, _Section

DEFAULT_PATH = DEFAULT_CONFIG

class OpsdSection(_Section):
    state_dir: Path = Path("/var/lib/opsd")
    timezone: str = "UTC"
    run_as: str = "postgres"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # primary: this host runs PostgreSQL (backups, checks, heartbeats, drills).
    # drill: no local primary; only verifies stanzas from the repository (drills, verify), in rotation.
    role: Literal["primary", "drill"] = "primary"
    # On an HA pair, jobs the standbys run instead of the primary, to spare it (drills restore a copy and
    # verify reads the whole repository: neither needs the primary). Backups and heartbeats stay on the primary.
    jobs_on_standby: list[Literal["drill", "verify"]] = Field(default_factory=list)

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
            uid = pwd.getpwnam(v).pw_uid
        except KeyError:
            raise ValueError(f"no such OS user {v!r}") from None
        if uid == 0:
            raise ValueError(f"{v!r} is root: PostgreSQL, pg_ctl and pgBackRest refuse to run as root; use the "
                             "cluster's owner (usually 'postgres')")
        return v

    _abs = field_validator("state_dir")(_absolute)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class PgBackRestSection(_Section):
    config: Path = Path("/etc/pgbackrest/pgbackrest.conf")
    stanza: str = Field("main", pattern=r"^[A-Za-z0-9_.-]+$")
    bin: str = "pgbackrest"
    backup_timeout: PositiveDuration = timedelta(hours=12)
    command_timeout: PositiveDuration = timedelta(minutes=10)
    probe_io_timeout: PositiveDuration = timedelta(seconds=10)
    # Copy the files of a backup from a standby (pgBackRest's backup-standby): pgbackrest.conf must list the
    # standby as pg2 (or higher), local, over pgBackRest's TLS server or SSH. The primary still starts/stops it.
    backup_standby: bool = False
    # Restores and drills fetch WAL ahead of replay (asynchronous archive-get into a spool private to the
    # restore): up to wal_prefetch_queue bytes, wal_prefetch_processes segments at a time (default: the cores)
    wal_prefetch: bool = True
    wal_prefetch_queue: ByteSize = Field(ByteSize(1024**3), ge=16 * 1024**2)
    wal_prefetch_processes: int | None = Field(None, ge=1, le=64)

    @property
    def prefetch_processes(self) -> int:
        return self.wal_prefetch_processes or max(2, os.cpu_count() or 1)


class PostgresSection(_Section):
    data_dir: Path = Path("/var/lib/postgresql/15/main")
    bin_dir: Path = Path("/usr/lib/postgresql/15/bin")
    host: str = "/var/run/postgresql"
    port: int = Field(5432, ge=1, le=65535)
    user: str = "postgres"
    dbname: str = "postgres"
    connect_timeout: PositiveDuration = timedelta(seconds=10)
    statement_timeout: PositiveDuration = timedelta(seconds=30)
    restart_command: str = ""  # empty: pg_ctl -D data_dir -m fast -w restart (as run_as)
    # Where postgresql.conf lives when it is not in data_dir. Empty: detected (Debian's
    # /etc/postgresql/<major>/<cluster>/ whose data_directory is data_dir), else inside data_dir.
    config_dir: Path | None = None

    _abs = field_validator("data_dir", "config_dir")(_absolute)

    @field_validator("bin_dir")
    @classmethod
    def _binaries(cls, v: Path) -> Path:
        missing = [name for name in ("pg_ctl", "postgres") if not os.access(v / name, os.X_OK)]
        if missing:
            raise ValueError(f"no executable {' or '.join(missing)} in {v} (the PostgreSQL binaries, e.g. "
                             "/usr/lib/postgresql/15/bin)")
        return v


def _check_schedule(v: str) -> str:
    parse_schedule(v)
    return v


ScheduleExpr = Annotated[str, BeforeValidator(lambda v: _check_schedule(v) if isinstance(v, str) else v)]


class ScheduleSection(_Section):
    full: ScheduleExpr = "0 1 * * *"
    diff: ScheduleExpr = "0 13 * * *"
    incr: ScheduleExpr = ""
    check: ScheduleExpr = "*/30 * * * *"
    drill: ScheduleExpr = "0 3 * * 0"
    verify: ScheduleExpr = "0 5 * * 6"
    health: ScheduleExpr = "30s"
    queries: ScheduleExpr = "5m"  # snapshots of pg_stat_statements and the table/index statistics ([queries])
    report: ScheduleExpr = "0 6 1 * *"  # the previous month's report, on the 1st
    misfire_grace: PositiveDuration = timedelta(hours=1)
    catch_up_full: bool = True
    backup_window: str = ""  # "01:00-05:00" in opsd.timezone: full backups must end inside it ("" = none)
    _window = field_validator("backup_window")(lambda v: (parse_window(v) and v) or v)

    @property
    def window(self) -> BackupWindow | None:
        return parse_window(self.backup_window)

    def parsed(self, job: str) -> Schedule | None:
        value = getattr(self, job)
        assert isinstance(value, str)
        return parse_schedule(value)


class CheckSection(_Section):
    max_ready_age: PositiveDuration = timedelta(minutes=15)
    backup_grace: Duration = timedelta(hours=2)
    # pgbackrest check waits this long for the segment it switched to reach the repository (its own default
    # is 60 s): with archiving broken, 'opsd check' answers in this time, and archive.archiver says why.
    archive_timeout: PositiveDuration = timedelta(seconds=30)
    # requests sent straight to an S3 repository, without retries, to see throttling or errors that pgBackRest's
    # retries hide (0: no probe); a median latency above s3_probe_latency is a warning
    s3_probes: int = Field(5, ge=0, le=50)
    s3_probe_latency: PositiveDuration = timedelta(seconds=1)


class HealthSection(_Section):
    show_query_text: bool = False  # False: string and number literals are masked as '?'
    query_text_length: int = Field(200, ge=0, le=10000)
    lock_wait_threshold: PositiveDuration = timedelta(seconds=30)
    pool_wait_threshold: PositiveDuration = timedelta(seconds=5)
    connections_threshold: int = Field(90, ge=1, le=100)  # percent of max_connections minus reserved slots
    long_transaction: PositiveDuration = timedelta(minutes=5)
    idle_in_transaction: PositiveDuration = timedelta(minutes=1)
    probe_timeout: PositiveDuration = timedelta(seconds=5)  # statement_timeout of the probe's session
    probe_lock_timeout: PositiveDuration = timedelta(seconds=1)  # lock_timeout: a probe never queues behind a lock
    # How long samples are kept and at which resolution (docs/health.md): every sample for 14 days, then the
    # worst of each 15 minutes up to 90 days, the worst of each hour up to 400 days; older ones are deleted.
    keep: str = DEFAULT_KEEP
    sample_retention: PositiveDuration | None = None  # deprecated: the same as keep = "all:<sample_retention>"
    # An inactive replication slot retaining more WAL than this opens an incident ("1GiB", "512MB", bytes).
    slot_retained_max: ByteSize = Field(ByteSize(1024**3), gt=0)


    @field_validator("keep")
    @classmethod
    def _keep(cls, v: str) -> str:
        return str(parse_keep(v))

    @model_validator(mode="after")
    def _one_retention(self) -> HealthSection:
        if self.sample_retention is not None and "keep" in self.model_fields_set:
            raise ValueError("health.sample_retention is deprecated and health.keep is set: remove "
                             "health.sample_retention")
        return self

    @property
    def retention(self) -> Keep:
        """``keep``, or the deprecated ``sample_retention`` alone (every sample, then nothing)."""
        if self.sample_retention is not None:
            return Keep((Tier(None, self.sample_retention),))
        return parse_keep(self.keep)


class PgBouncerSection(_Section):
    host: str = ""  # empty: no PgBouncer report
    port: int = Field(6432, ge=1, le=65535)
    admin_user: str = "pgbouncer"
    dbname: str = "pgbouncer"
    # The password never lives in this file: from this environment variable, else from password_file.
    password_env: str = "PGBOUNCER_PASSWORD"  # noqa: S105 (a variable name, not a password)
    password_file: Path | None = None
    connect_timeout: PositiveDuration = timedelta(seconds=5)

    @property
    def enabled(self) -> bool:
        return bool(self.host.strip())


ReportFormat = Literal["md", "html", "json"]
REPORT_FORMATS: tuple[ReportFormat, ...] = ("md", "html", "json")


class ReportSection(_Section):
    # Where reports go besides <state_dir>/reports: "s3://bucket/prefix/" (empty: local only).
    s3_uri: str = Field("", pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?)?$")
    # The upload reuses the pgBackRest repository's endpoint, credentials and CA unless these are set
    # (credentials then come from the usual AWS environment variables or files, never from this file).
    endpoint_url: str = ""
    region: str = ""
    ca_file: Path | None = None
    formats: list[ReportFormat] = Field(default_factory=lambda: list(REPORT_FORMATS))


class AlertsSection(_Section):
    # A webhook that takes a JSON POST (Slack-compatible: the body has "text"; generic receivers read "alert").
    # Its URL may hold a token: it is never logged, and 'config show' masks it.
    webhook_url: SecretStr = SecretStr("")
    # Better: the URL in a file (0600) or the systemd credential "webhook-url" (docs/install.md). User info in it
    # (https://user:token@host/...) is sent as HTTP Basic authentication.
    webhook_url_file: Path | None = None
    # Headers for gateways that want a token ("Authorization: Bearer ...", "X-Api-Key: ..."), one "Name: value"
    # a line, in a file (0600; refused when world-readable) or the systemd credential "webhook-headers".
    webhook_headers_file: Path | None = None
    # And/or a command that receives the alert as JSON on stdin (run as opsd's own user, not a shell).
    command: str = ""
    timeout: PositiveDuration = timedelta(seconds=10)
    retries: int = Field(3, ge=1, le=10)  # delivery attempts before giving up (1s, 2s, 4s... between them)
    repeat_interval: PositiveDuration = timedelta(hours=4)  # a still-firing alert is sent again after this
    # an alert not delivered is kept in the state file and retried (backoff up to 1 h) by later runs until this old
    delivery_expiry: PositiveDuration = timedelta(hours=24)

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, v: SecretStr) -> SecretStr:
        """Refused with a reason that never repeats the URL (it may carry a token)."""
        url = v.get_secret_value().strip()
        if url:
            from opsd.core.urls import url_problem

            problem = url_problem(url)
            if problem:
                raise ValueError(f"not a usable webhook URL: {problem} (the URL itself is not shown: it may hold a "
                                 "token)")
        return v

    @property
    def webhook(self) -> str:
        return self.webhook_url.get_secret_value().strip()


class MetricsSection(_Section):
    listen: str = Field("", pattern=r"^(|[\w.:\[\]-]+:\d{1,5})$")  # "127.0.0.1:9187"; empty: no endpoint

    def address(self) -> tuple[str, int] | None:
        if not self.listen:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class PatroniSection(_Section):
    """Patroni's REST API on this node: the role comes from it, PostgreSQL and the DCS together (docs/ha.md)
    instead of pg_is_in_recovery() alone. Empty: no Patroni. ``timeout`` is one deadline for the whole decision."""

    url: str = Field("", pattern=r"^(|https?://[^\s/]+(/[^\s]*)?)$")  # http://127.0.0.1:8008
    timeout: PositiveDuration = timedelta(seconds=3)
    ca_file: Path | None = None  # Patroni's REST API over https with its own CA
    check_every: PositiveDuration = timedelta(seconds=10)  # during a backup: a node that lost the lead stops it
    # a role undecided this long raises role.undecided (at once when a scheduled job is skipped because of it)
    undecided_alert_after: PositiveDuration = timedelta(minutes=15)


class DaemonSection(_Section):
    shutdown_timeout: PositiveDuration = timedelta(minutes=15)


class Settings(_Section):
    opsd: OpsdSection = OpsdSection()
    pgbackrest: PgBackRestSection = PgBackRestSection()
    postgres: PostgresSection = PostgresSection()
    schedule: ScheduleSection = ScheduleSection()
    check: CheckSection = CheckSection()
    daemon: DaemonSection = DaemonSection()
    drill: DrillSection = DrillSection()
    health: HealthSection = HealthSection()
    pgbouncer: PgBouncerSection = PgBouncerSection()
    report: ReportSection = ReportSection()
    alerts: AlertsSection = AlertsSection()
    metrics: MetricsSection = MetricsSection()
    patroni: PatroniSection = PatroniSection()
    rehearse: RehearseSection = RehearseSection()
    fleet: FleetSection = FleetSection()
    queries: QueriesSection = QueriesSection()
    source: str = Field("<defaults>", exclude=True)

    @property
    def scratch_dir(self) -> Path:
        return self.drill.scratch_dir or self.opsd.state_dir / "scratch"

    @property
    def beside_production(self) -> bool:  # not a drill host: copies must not starve or fill production
        return self.opsd.role == "primary"

    @property
    def drill_stanzas(self) -> list[str]:
        return list(self.drill.stanzas) or [self.pgbackrest.stanza]

    @model_validator(mode="after")
    def _drill_apart_from_production(self, info: ValidationInfo) -> Settings:
        """A drill never uses the production port or data directory (checked again before every drill)."""
        if info.context and info.context.get("skip_cross"):
            return self
        problems = [message for message, _keys in cross_field_problems(self)]
        if problems:
            raise ValueError("; ".join(problems))
        return self


def resolve_path(cli_path: str | None) -> str:
    return cli_path or os.environ.get("OPSD_CONFIG") or DEFAULT_PATH


def parse(data: dict[str, Any], source: str = "<memory>") -> Settings:
    try:
        return Settings.model_validate({**data, "source": source})
    except ValidationError as e:
        raise ConfigError(source, format_errors(e) + problems_despite(data, e, Settings)) from None


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


