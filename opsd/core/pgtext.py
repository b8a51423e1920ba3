"""PostgreSQL's errors without the data they quote (pure).

A server error's DETAIL, CONTEXT, QUERY and STATEMENT parts (and psql's ``LINE n:`` echo) quote rows, keys and
SQL literals: ``Failing row contains (...)``, ``Key (email)=(...) already exists``, ``COPY t, line 3: "..."``.
None of that may reach a log event, an error message, the run history or an alert. What stays: the SQLSTATE,
the primary message and the relation/constraint names. One helper for a psycopg error (:func:`pg_error`), one for
a program's stderr (:func:`scrub`); log.py applies :func:`scrub` to every string as a last line of defence.
"""

from __future__ import annotations

import re

REDACTED = "(redacted)"
# the parts of a server message that quote data; HINT only when it quotes a value
_DATA_PART = re.compile(
    r"^\s*(?:psql:[^\n]*?:\d+:\s*)?(?:DETAIL|CONTEXT|QUERY|STATEMENT|LINE \d+|ROW|KEY)\s*:", re.I)
_HINT_WITH_DATA = re.compile(r"^\s*(?:psql:[^\n]*?:\d+:\s*)?HINT:.*(?:\)=\(|[\"'])", re.I)
# a line that starts a new message: the block of quoted data ends there
_NEW_MESSAGE = re.compile(
    r"^\s*(?:(?:psql|pg_dump|pg_restore|pg_ctl|pgbackrest|postgres|opsd)\b|P\d\d\s|\d{4}-\d\d-\d\d[ T]|"
    r"(?:\S+:\d+:\s*)?(?:ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|LOG|HINT)\s*:)")
_INLINE = (
    (re.compile(r"(Failing row contains\s*)\(.*", re.I), r"\1" + REDACTED),
    (re.compile(r"(Key\s*\([^)\n]*\)\s*=\s*)\(.*", re.I), r"\1" + REDACTED),
    (re.compile(r"\b(DETAIL|CONTEXT|QUERY|STATEMENT):.*", re.I), r"\1: " + REDACTED),
)


def scrub_line(line: str) -> str:
    """One line with quoted row data cut from where it starts."""
    for pattern, repl in _INLINE:
        line = pattern.sub(repl, line)
    return line


class Scrubber:
    """Line by line (a stream): ``feed`` returns the line to keep, scrubbed, or None for a line that quotes data.
    The lines that follow such a line (a multi-line value) go too, until the next message starts."""

    def __init__(self) -> None:
        self.dropping = False

    def feed(self, line: str) -> str | None:
        if _DATA_PART.match(line) or _HINT_WITH_DATA.match(line):
            self.dropping = True
            return None
        if self.dropping and line.strip() and not _NEW_MESSAGE.match(line):
            return None
        self.dropping = False
        return scrub_line(line)


def scrub(text: str) -> str:
    """``text`` (a program's stderr, an error message) without the lines that quote data."""
    s = Scrubber()
    return "\n".join(kept for line in text.split("\n") if (kept := s.feed(line)) is not None)


def last_line(text: str, default: str = "no output") -> str:
    """The last line of a program's stderr that says something, the data-quoting lines left out."""
    lines = [line for line in scrub(text).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else default


def pg_error(e: BaseException) -> str:
    """A psycopg error as one line: its primary message, the relation and constraint it names, its SQLSTATE;
    never its DETAIL, CONTEXT or the statement (which quote rows and literals). Duck-typed: core imports no
    driver."""
    diag = getattr(e, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if not primary:
        primary = last_line(str(e).strip().split("\n")[0], "") or type(e).__name__
    primary = scrub_line(primary.strip())
    names = [f"{what} {v}" for what, attr in (("relation", "table_name"), ("constraint", "constraint_name"))
             if (v := getattr(diag, attr, None)) and f"\"{v}\"" not in primary]
    state = getattr(e, "sqlstate", None)
    extra = ", ".join([*names, *([f"SQLSTATE {state}"] if state else [])])
    return f"{primary} ({extra})" if extra else primary


# SQL literals in a statement's text (strings, dollar-quoted bodies, numbers): what a statement may carry of a
# customer's data; the statement's shape stays
_LITERALS = re.compile(r"""(?x)
    [Ee]'(?:[^'\\]|\\.|'')*'           # E'escape \' string'
  | (?:[BbXxUu]&?)?'(?:[^']|'')*'      # 'string', B'...', X'...', U&'...'
  | \$(?P<tag>[A-Za-z_]*)\$.*?\$(?P=tag)\$  # $$dollar quoted$$
  | (?<![\w$.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w$])   # numbers (not inside identifiers or $1)
""", re.DOTALL)


def mask_literals(query: str) -> str:
    return _LITERALS.sub("?", query)
