"""structlog, set up once: a readable console on a TTY, one readable line an event when stderr is the systemd
journal (``<priority>event key=value ...``: journald takes the priority, adds its own timestamp), JSON lines
elsewhere (a file, a pipe) or when asked (``--log-format json``, ``OPSD_LOG_FORMAT=json``).

Logs go to stderr so that stdout stays for command output (tables, --json).
Secrets are redacted here, at the source: by key name, by ``key=value`` patterns inside strings,
and by value for every secret registered with :func:`register_secret` (e.g. from the environment).
A last line of defence drops the data PostgreSQL's errors quote (DETAIL, CONTEXT, ``Failing row contains``,
``Key (...)=(...)``) from every string of an event: the sources already leave them out (opsd/core/pgtext.py).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import MutableMapping
from typing import Any

# structlog.dev imports rich (about 50 ms) when it is installed, to format tracebacks that opsd never prints: a
# command's errors are one line at the boundary, a daemon job's are JSON events
if "rich" not in sys.modules:
    sys.modules["rich"] = None  # type: ignore[assignment]
import structlog

from opsd.core.pgtext import scrub

MASK = "********"
_SECRET_KEY = re.compile(r"(pass(word|phrase)?|secret|token|(^|[-_])key$|s3[-_]key|cipher[-_]pass)", re.I)
_SECRET_IN_TEXT = re.compile(
    r"(?P<k>(repo\d+-s3-key(-secret)?|repo\d+-cipher-pass|s3-token|password|passwd|"
    r"PGPASSWORD|PGBACKREST_REPO\d+_(S3_KEY(_SECRET)?|CIPHER_PASS|S3_TOKEN))\s*[=:]\s*)(?P<v>[^\s'\"&,]+)",
    re.I,
)
_SECRET_ENV = re.compile(
    r"^(PGPASSWORD|PGBACKREST_.*(KEY|SECRET|PASS|TOKEN).*|AWS_SECRET_ACCESS_KEY|OPSD_.*(PASS|SECRET).*)$")

_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Redact this exact value wherever it appears in a log event."""
    if value and len(value) >= 4:
        _secrets.add(value)


def register_env_secrets(environ: MutableMapping[str, str] | None = None) -> None:
    env = os.environ if environ is None else environ
    for k, v in env.items():
        if _SECRET_ENV.match(k):
            register_secret(v)


def redact_text(text: str) -> str:
    text = _SECRET_IN_TEXT.sub(lambda m: m.group("k") + MASK, text)
    for s in sorted(_secrets, key=len, reverse=True):  # the longest first: one secret may contain another
        if s in text:
            text = text.replace(s, MASK)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if isinstance(value, str):
        return MASK if _SECRET_KEY.search(key) and value else redact_text(scrub(value))
    if isinstance(value, list | tuple):
        return type(value)(_redact_value("", v) for v in value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    return value


def redact_processor(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for k in list(event_dict):
        event_dict[k] = _redact_value("" if k == "event" else k, event_dict[k])
    return event_dict


_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}  # sd-daemon(3) prefixes
_BARE = re.compile(r"^[^\s=\"\\]+$")


def on_journal(environ: MutableMapping[str, str] | None = None, fd: int = 2) -> bool:
    """Whether ``fd`` is the journal stream systemd connected (``$JOURNAL_STREAM`` names its device:inode)."""
    want = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return want == f"{st.st_dev}:{st.st_ino}"


def _logfmt(value: Any) -> str:
    import json as json_mod

    if not isinstance(value, str):  # numbers, booleans, lists, mappings: compact JSON, one line
        return json_mod.dumps(value, default=str, separators=(",", ":"))
    return value if _BARE.match(value) else json_mod.dumps(value)  # quoted, newlines escaped: always one line


def journal_renderer(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> str:
    """``<6>backup.finished type=full outcome=ok duration_s=12.3``: one line, the priority for journald (keys
    without a value left out)."""
    ev = dict(event_dict)
    prio = _PRIORITY.get(str(ev.pop("level", "info")), 6)
    ev.pop("timestamp", None)
    head = str(ev.pop("event", "")).replace("\n", " ")
    return f"<{prio}>{head}" + "".join(f" {k}={_logfmt(v)}" for k, v in ev.items() if v is not None)


def configure(level: str = "info", *, json: bool | None = None, fmt: str = "auto") -> None:
    """Set up structlog. ``fmt``: console, json, journal or auto (a terminal: console; the journal: journal;
    else JSON); ``json`` True/False is ``fmt`` json/console."""
    register_env_secrets()
    if json is not None:
        fmt = "json" if json else "console"
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "journal" if on_journal() else "json"
    renderer: Any = journal_renderer
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    elif fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(**initial: Any) -> Any:
    return structlog.get_logger(**initial)
