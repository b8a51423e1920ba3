"""The click CLI and its single error boundary: commands raise, only :func:`main` prints errors.

Exit codes: 0 ok; 1 the operation or a check failed; 2 usage error; 3 configuration invalid;
4 busy (another backup holds the lock).
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING

import click

from opsd import DEFAULT_CONFIG, __version__
from opsd.errors import ExitCode, OpsdError

if TYPE_CHECKING:
    from opsd.context import Context
    from opsd.settings import Settings

EXIT_CODES = """\b
Exit codes:
  0  ok
  1  the operation failed (or a check is critical)
  2  usage error (bad option or argument)
  3  configuration invalid
  4  busy: another backup (or drill) holds the lock
  5  refused by a preflight check (restore plan): nothing was touched
  6  setup: done as far as it can go, PostgreSQL must be restarted; rehearse: passed with hazards
  128+N  interrupted by signal N (SIGTERM, SIGINT, SIGHUP): child processes stopped first"""


@dataclass
class App:
    config_path: str | None
    log_level: str | None
    log_format: str
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            from opsd import settings as settings_mod

            self._settings = settings_mod.load(self.config_path)
            if self.log_level is None and not sys.stderr.isatty():
                from opsd import log

                log.configure(self._settings.opsd.log_level, fmt=self.log_format)
        return self._settings

    def context(self) -> Context:
        from opsd.context import build

        return build(self.settings())


# each command's module, imported only when that command runs (or --help lists them all): 'opsd --version' and
# 'opsd status' must not pay for boto3, psycopg, APScheduler and every pydantic record
LAZY = {
    "config": "config_cmd", "backup": "backup_cmd", "info": "backup_cmd", "check": "check_cmd",
    "setup": "check_cmd", "daemon": "daemon_cmd", "status": "daemon_cmd", "metrics": "daemon_cmd",
    "restore": "restore_cmd", "window": "restore_cmd", "wal": "wal_cmd", "restore-point": "wal_cmd",
    "drill": "drill_cmd", "verify": "drill_cmd", "health": "health_cmd", "report": "report_cmd",
    "scratch": "scratch_cmd", "rehearse": "rehearse_cmd", "fleet": "fleet_cmd",
    "queries": "queries_cmd",
    "indexes": "indexes_cmd",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY and cmd_name not in self.commands:
            import importlib

            module = importlib.import_module(f"opsd.cli.{LAZY[cmd_name]}")
            for command in module.COMMANDS:
                self.add_command(command)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="opsd")
@click.option("--config", "config_path", metavar="PATH", envvar="OPSD_CONFIG", show_envvar=True,
              help=f"Config file (default {DEFAULT_CONFIG}).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              help="Log level (default: opsd.log_level; 'warning' on a terminal).")
@click.option("--log-format", type=click.Choice(["auto", "json", "console", "journal"]), default="auto",
              show_default=True, envvar="OPSD_LOG_FORMAT", show_envvar=True,
              help="Logs go to stderr: readable on a terminal, one line an event in the systemd journal, else JSON.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_level: str | None, log_format: str) -> None:
    """opsd: PostgreSQL backups with pgBackRest, checked, scheduled and proven by recovery drills."""
    from opsd import log  # structlog: not for 'opsd --version' (handled before this callback runs)

    install_stop_signals()  # the daemon replaces these with its own (flags, then an orderly stop)
    level = log_level or ("warning" if sys.stderr.isatty() else "info")
    log.configure(level, fmt=log_format)
    ctx.obj = App(config_path, log_level, log_format)


class Interrupted(SystemExit):
    """SIGTERM, SIGINT or SIGHUP (an ssh session or an Ansible connection that drops): unwinds the command like an
    error, so the runner stops its child process group and the locks are released only after that."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _on_stop_signal(signum: int, _frame: FrameType | None) -> None:
    for sig in STOP_SIGNALS:  # once: a second signal must not cut the cleanup short
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


def install_stop_signals() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_stop_signal)


def entry() -> None:
    """The console script and ``python -m opsd``. Whatever the caller's umask (a DBA's shell, cron): every file
    opsd creates is its own alone (0600/0700); the directories that must be shared say so with an explicit
    mode (the state directory: 0750)."""
    os.umask(0o077)
    main()


def main(argv: list[str] | None = None) -> None:
    """The one error boundary: one line per error (plus a hint), a documented exit code, never a traceback."""
    try:
        cli.main(args=argv, prog_name="opsd", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("opsd: aborted", err=True)
        sys.exit(ExitCode.FAILED)
    except click.ClickException as e:
        click.echo(f"opsd: error: {e.format_message()}", err=True)
        sys.exit(ExitCode.USAGE if isinstance(e, click.UsageError) else e.exit_code)
    except OpsdError as e:
        click.echo(f"opsd: error: {e}", err=True)
        if e.hint:
            click.echo(f"hint: {e.hint}", err=True)
        sys.exit(e.exit_code)
    except Interrupted as e:
        click.echo(f"opsd: interrupted by {signal.Signals(e.signum).name}: its child processes were stopped", err=True)
        sys.exit(e.code)
    except KeyboardInterrupt:
        click.echo("opsd: interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # a bug: still one line, the details go to the debug log
        from opsd import log

        log.get_logger().debug("internal_error", exc_info=True)
        click.echo(f"opsd: internal error: {type(e).__name__}: {e} (rerun with --log-level debug)", err=True)
        sys.exit(ExitCode.FAILED)
    sys.exit(ExitCode.OK)
