"""The copy's server log, read back as the statements one role sent: each with its duration, or the error it
ended with. The copy logs with ``log_min_duration_statement = 0`` and the prefix :data:`PREFIX`; parameters
(DETAIL lines) are never read, and statement text is kept only with its literals masked."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from opsd.core.pgtext import mask_literals, scrub

# epoch with milliseconds, pid, user, database: no spaces (the option goes through pg_ctl -o)
PREFIX = "opsd:%n:%p:%u:%d:"
_LINE = re.compile(r"^opsd:(?P<at>\d+(?:\.\d+)?):(?P<pid>\d+):(?P<user>[^:]*):(?P<db>[^:]*):"
                   r"(?P<level>[A-Z]+):\s+(?P<msg>.*)$")
_DURATION = re.compile(r"^duration: (?P<ms>[\d.]+) ms\s+(?:statement|execute [^:]*): (?P<text>.*)$", re.S)
_SKIP = re.compile(r"^duration: [\d.]+ ms\s+(?:parse|bind) ")
MAX_TEXT = 300


@dataclass(frozen=True)
class Entry:
    at: float
    pid: int
    user: str
    level: str
    msg: str


@dataclass(frozen=True)
class Logged:
    """A statement of the role: masked text, duration in ms (None: it failed), the error."""

    at: float
    pid: int
    text: str
    ms: float | None = None
    error: str | None = None


def entries(lines: Iterable[str]) -> Iterator[Entry]:
    """Log records: a line with the prefix, and the lines after it that have none (a statement over lines)."""
    cur: dict[str, str] | None = None
    body: list[str] = []
    for raw in lines:
        line = raw.rstrip("\n")
        m = _LINE.match(line)
        if m is None:
            if cur is not None:
                body.append(line)
            continue
        if cur is not None:
            yield _entry(cur, body)
        cur, body = m.groupdict(), [m.group("msg")]
    if cur is not None:
        yield _entry(cur, body)


def _entry(d: dict[str, str], body: list[str]) -> Entry:
    return Entry(float(d["at"]), int(d["pid"]), d["user"], d["level"], "\n".join(body))


def shown(text: str) -> str:
    """A statement as opsd keeps it: literals masked, whitespace folded, cut at MAX_TEXT."""
    flat = " ".join(mask_literals(text).split())
    return flat if len(flat) <= MAX_TEXT else flat[: MAX_TEXT - 1] + "…"


def statements(lines: Iterable[str], user: str) -> list[Logged]:
    """The statements ``user`` ran, in log order: each finished one with its duration; a failed one with its
    error (the ERROR line, data scrubbed) and its text (the STATEMENT line after it)."""
    out: list[Logged] = []
    failing: dict[int, Entry] = {}
    for e in entries(lines):
        if e.user != user:
            continue
        if e.level == "LOG":
            m = _DURATION.match(e.msg)
            if m is not None and not _SKIP.match(e.msg):
                out.append(Logged(e.at, e.pid, shown(m.group("text")), ms=float(m.group("ms"))))
        elif e.level in ("ERROR", "FATAL"):
            if e.pid in failing:  # an error whose statement was never logged
                out.append(_failed(failing.pop(e.pid), None))
            failing[e.pid] = e
        elif e.level == "STATEMENT" and e.pid in failing:
            out.append(_failed(failing.pop(e.pid), e.msg))
    out += [_failed(e, None) for e in failing.values()]
    return sorted(out, key=lambda s: s.at)


def _failed(err: Entry, text: str | None) -> Logged:
    first = scrub(err.msg).splitlines()[0] if err.msg else "error"
    return Logged(err.at, err.pid, shown(text) if text else "(statement not logged)", error=first)


# --------------------------------------------------------------------------- what a statement does
_CREATE_INDEX = re.compile(r"^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\b(?P<rest>.*)$", re.I | re.S)
_ADD_FK_OR_CHECK = re.compile(r"\bADD\b.*\b(?:FOREIGN\s+KEY|REFERENCES|CHECK)\b", re.I | re.S)
_TYPE_CHANGE = re.compile(r"\bALTER\s+(?:COLUMN\s+)?\S+\s+(?:SET\s+DATA\s+)?TYPE\b", re.I | re.S)
_DML = re.compile(r"^\s*(?:WITH\b.*?\)\s*)?(?P<verb>UPDATE|DELETE|INSERT)\b", re.I | re.S)


def creates_index(text: str) -> bool | None:
    """None: not a CREATE INDEX; else whether CONCURRENTLY."""
    m = _CREATE_INDEX.match(text)
    return None if m is None else bool(re.match(r"\s*CONCURRENTLY\b", m.group("rest"), re.I))


def adds_validated_constraint(text: str) -> bool:
    """An ALTER TABLE that adds a foreign key or CHECK without NOT VALID (it scans the table under its lock)."""
    return (re.match(r"^\s*ALTER\s+TABLE\b", text, re.I) is not None and _ADD_FK_OR_CHECK.search(text) is not None
            and re.search(r"\bNOT\s+VALID\b", text, re.I) is None)


def changes_type(text: str) -> bool:
    return re.match(r"^\s*ALTER\s+TABLE\b", text, re.I) is not None and _TYPE_CHANGE.search(text) is not None


def dml_verb(text: str) -> str | None:
    m = _DML.match(text)
    return m.group("verb").upper() if m else None
