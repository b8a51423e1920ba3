"""pgBackRest exit codes (src/build/error/error.yaml) and what they mean for a DBA."""

from __future__ import annotations

import re
from collections.abc import Sequence

from opsd.errors import PgBackRestError, PgBackRestLockError

# code -> (pgBackRest's name, a hint for the DBA)
ERRORS: dict[int, tuple[str, str]] = {
    26: ("checksum", "a file in the repository does not match its checksum: run 'pgbackrest verify'"),
    27: ("config", "pgbackrest.conf is invalid"),
    28: ("file-invalid", "repository info files do not match this database: is this the right stanza/repository?"),
    29: ("format", "a repository file is damaged or not in the expected format"),
    31: ("option-invalid", "an option is not valid for this command (secrets belong in pgbackrest.conf or env)"),
    32: ("option-invalid-value", "an option has an invalid value"),
    37: ("option-required", "a required pgBackRest option is missing from pgbackrest.conf"),
    38: ("pg-running", "PostgreSQL is running in the target directory"),
    39: ("protocol", "pgBackRest's remote/local protocol failed"),
    40: ("path-not-empty", "the destination directory is not empty"),
    44: ("archive-mismatch", "the WAL archive does not match this database (system id / version)"),
    45: ("archive-duplicate", "a WAL segment with different contents is already in the archive"),
    49: ("host-connect", "cannot connect to the repository host or S3 endpoint"),
    50: ("lock-acquire", "another pgBackRest command holds the stanza lock"),
    51: ("backup-mismatch", "backup.info does not match the database"),
    55: ("file-missing", "a file is missing (is the stanza created? is the repository reachable?)"),
    56: ("db-connect", "pgBackRest cannot connect to PostgreSQL (pg1-path/pg1-port/pg1-socket-path)"),
    57: ("db-query", "a query pgBackRest ran on PostgreSQL failed"),
    58: ("db-mismatch", "pgbackrest.conf does not match the running cluster (pg1-path or port)"),
    62: ("stop", "the stanza is stopped ('pgbackrest stop'); run 'pgbackrest --stanza=... start' to resume"),
    63: ("term", "pgBackRest was terminated by a signal"),
    64: ("file-write", "cannot write a file: disk full or permissions?"),
    68: ("archive-command-invalid", "archive_command does not call pgBackRest archive-push"),
    75: ("backup-set-invalid", "no valid backup set to use: take a full backup first"),
    80: ("db-missing", "the database to restore does not exist in the backup"),
    82: ("archive-timeout", "WAL was not archived in time: check archive_command, the archiver and the repository"),
    87: ("archive-disabled", "archive_mode is off, or archiving was stopped for the stanza"),
    89: ("user-missing", "the OS user pgBackRest runs as does not exist"),
    95: ("crypto", "TLS or encryption failure: check the CA file, certificate host names and cipher passphrase"),
    101: ("service", "the S3 service answered with an error (5xx, missing bucket, ...)"),
    103: ("repo-invalid", "no valid repository could be reached"),
    104: ("command", "the command finished with errors"),
    105: ("access", "the S3 endpoint denied access (credentials or bucket policy)"),
    106: ("clock", "clock skew between this host and the S3 endpoint"),
}

# What the message says wins over what the code usually means: pgBackRest reports PostgreSQL going away in the
# middle of a backup as [101 service] or [57 db-query], which alone would send the DBA to S3.
_BY_MESSAGE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"NULL result required|server closed the connection|terminating connection|"
                r"database system is (starting up|shutting down|in recovery mode)|no connection to the server|"
                r"connection to server .* failed", re.I),
     "PostgreSQL went away during the command (crashed, restarted or shut down): check its log and that it is "
     "running again; the next backup starts over"),
    (re.compile(r"WAL timeline \d+ does not match pg_control timeline \d+", re.I),
     "the cluster was just promoted and has not checkpointed on its new timeline yet: run CHECKPOINT (opsd "
     "does before a backup it starts itself) and try again"),
    (re.compile(r"No space left on device", re.I), "a disk is full: the repository's, or pg_wal's"),
)

_ERROR_LINE = re.compile(r"^(?:\S+\s+\S+\s+P\d+\s+)?ERROR:\s*\[(\d{3})\]:\s*(.*)$")
_CAUSE = re.compile(
    r"(unable to (connect to|get address for) '[^']+'[^\n]*|unable to find hostname[^\n]*|"
    r"HTTP request failed with \d+[^\n]*|TLS error[^\n]*|timeout after \d+ms[^\n]*|"
    r"Permission denied|No space left on device)"
)

# A host that could not be reached (the S3 endpoint, a TLS server, a repository host): a network fault, not damage
_UNREACHABLE = re.compile(r"unable to (connect to|get address for) '|timeout connecting to '|"
                          r"timeout after \d+ms waiting for (read|write) from '|\[(49|103) [a-z-]+\]")


def unreachable(message: str) -> bool:
    """Whether a pgBackRest failure (its output, or opsd's message of it) says a host could not be reached."""
    return bool(_UNREACHABLE.search(message))


def parse_error(stdout: str, stderr: str) -> tuple[int | None, str]:
    """The first ``ERROR: [NNN]: message`` in pgBackRest's output, plus the most telling cause line."""
    lines = (stderr + "\n" + stdout).splitlines()
    for i, line in enumerate(lines):
        m = _ERROR_LINE.match(line.strip())
        if not m:
            continue
        code, msg = int(m.group(1)), m.group(2).strip().rstrip(":")
        rest = "\n".join(lines[i + 1 : i + 40])
        cause = _CAUSE.search(rest)
        if cause and cause.group(1) not in msg:
            msg = f"{msg}: {cause.group(1).strip()}"
        return code, msg
    tail = [ln.strip() for ln in lines if ln.strip()]
    return None, (tail[-1] if tail else "no output")


def to_error(returncode: int, stdout: str, stderr: str, argv: Sequence[str], command: str) -> PgBackRestError:
    code, msg = parse_error(stdout, stderr)
    code = code if code is not None else returncode
    name, hint = ERRORS.get(code, ("unknown", "see the pgBackRest log for details"))
    hint = next((h for pattern, h in _BY_MESSAGE if pattern.search(msg) or pattern.search(stderr)), hint)
    cls = PgBackRestLockError if code == 50 else PgBackRestError
    return cls(
        f"pgbackrest {command} failed [{code} {name}]: {msg}",
        code=code, name=name, argv=list(argv), returncode=returncode, stderr=stderr, hint=hint,
    )
