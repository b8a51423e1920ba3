"""One exception tree. Every error knows its exit code; only the CLI boundary prints them."""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the operation (or a check) failed
    USAGE = 2  # bad command line
    CONFIG = 3  # configuration invalid
    BUSY = 4  # another backup/restore holds the lock
    REFUSED = 5  # a preflight check refused the operation; nothing was touched


class OpsdError(Exception):
    """Base of every error opsd reports to a user."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(OpsdError):
    exit_code = ExitCode.USAGE


class ConfigError(OpsdError):
    """The configuration is invalid; ``problems`` holds every problem, with its key path."""

    exit_code = ExitCode.CONFIG

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = list(problems)
        n = len(self.problems)
        first = self.problems[0] if self.problems else "invalid"
        more = f" (and {n - 1} more; run 'opsd config check')" if n > 1 else ""
        super().__init__(f"config {path}: {first}{more}")


class BusyError(OpsdError):
    """Another operation holds the lock (exit 4)."""

    exit_code = ExitCode.BUSY


class CommandError(OpsdError):
    """An external command failed. ``argv`` is already redacted."""

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str] = (),
        returncode: int | None = None,
        stderr: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr


class CommandTimeout(CommandError):
    """The command ran past its timeout and was killed (with its whole process group)."""


class CommandCancelled(CommandError):
    """The command was cancelled (daemon shutdown) and was killed."""


class PgBackRestError(CommandError):
    """pgBackRest exited non-zero; ``code`` is its error code (see adapters/pgbackrest_errors.py)."""

    def __init__(self, message: str, *, code: int, name: str, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.code = code
        self.name = name


class PgBackRestLockError(PgBackRestError, BusyError):
    """pgBackRest error 50: another pgBackRest process holds the stanza lock."""

    exit_code = ExitCode.BUSY


class RepositoryError(OpsdError):
    """The backup repository cannot be read (unreachable endpoint, missing stanza, TLS...)."""


class DatabaseError(OpsdError):
    """PostgreSQL could not be reached or a query failed."""


class QueryTimeout(DatabaseError):
    """statement_timeout or lock_timeout cancelled a query: the probe gave up instead of queueing."""


class NotChecked(DatabaseError):
    """A verification query failed for a reason that says nothing about the data (no privilege, a timeout, the
    owner's own code raising, the server going away): the relation is unchecked, not corrupt."""


class RefusedError(OpsdError):
    """The plan refused the operation before anything was written (exit 5)."""

    exit_code = ExitCode.REFUSED


class CheckFailed(OpsdError):
    """One or more checks are critical (``opsd check``); the results were already printed."""


class UnsafeShellValue(OpsdError, ValueError):
    """A configured value cannot go into a command PostgreSQL runs through a shell (archive_command,
    restore_command): a newline, or a character that no quoting survives there. One line, exit 3."""

    exit_code = ExitCode.CONFIG
