"""A statement's text as opsd keeps it (pure): pg_stat_statements' normalised text, with whatever literal it still
carries masked. PostgreSQL 15 replaces the constants of SELECT/INSERT/UPDATE/DELETE/MERGE by $1, $2...; utility
statements (ALTER ROLE ... PASSWORD '...', COPY ... FROM '...', SET ... = '...') keep theirs, and one of those
may be a password or a customer's e-mail. Quoted strings (standard, E'', U&'') and dollar-quoted bodies become
``'…'``, and so do quoted values in comments (sqlcommenter's ``/*user='…'*/``: the comment of the first
execution seen is kept); identifiers in double quotes and placeholders stay. Long texts are cut."""

from __future__ import annotations

import re

MASK = "'…'"
MAX_CHARS = 16_000
HIDDEN = "<insufficient privilege>"
_DOLLAR = re.compile(r"\$([A-Za-z_\x80-\uffff][A-Za-z_0-9\x80-\uffff]*)?\$")
_IN_COMMENT = re.compile(r"'[^']*(?:'|$)")


def _skip_quoted(text: str, i: int, backslashes: bool) -> int:
    """The index after the string literal whose opening quote is at ``i``."""
    j = i + 1
    while j < len(text):
        ch = text[j]
        if backslashes and ch == "\\":
            j += 2
            continue
        if ch == "'":
            if j + 1 < len(text) and text[j + 1] == "'":
                j += 2
                continue
            return j + 1
        j += 1
    return len(text)


def _skip_comment(text: str, i: int) -> int:
    if text.startswith("--", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end
    depth, j = 0, i
    while j < len(text):  # /* */ comments nest in PostgreSQL
        if text.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif text.startswith("*/", j):
            depth, j = depth - 1, j + 2
            if depth == 0:
                return j
        else:
            j += 1
    return len(text)


def _literal_at(text: str, i: int) -> tuple[int, int] | None:
    """(start, end) of a literal starting at ``i`` (its prefix included), or None."""
    ch = text[i]
    prev_ident = i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_$")
    if ch == "'":
        return i, _skip_quoted(text, i, False)
    if ch in "eE" and text.startswith("'", i + 1) and not prev_ident:
        return i, _skip_quoted(text, i + 1, True)
    if ch in "uU" and text.startswith("&'", i + 1) and not prev_ident:
        return i, _skip_quoted(text, i + 2, False)
    if ch == "$" and not prev_ident and (m := _DOLLAR.match(text, i)):
        close = text.find(m.group(0), m.end())
        return i, len(text) if close < 0 else close + len(m.group(0))
    return None


def mask_literals(text: str) -> str:
    """``text`` with every string literal and dollar-quoted body replaced by ``'…'``."""
    if "'" not in text and "$" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            end = text.find('"', i + 1)
            end = len(text) if end < 0 else end + 1
            out.append(text[i:end])
            i = end
        elif text.startswith("--", i) or text.startswith("/*", i):
            end = _skip_comment(text, i)
            out.append(_IN_COMMENT.sub(MASK, text[i:end]))
            i = end
        elif (lit := _literal_at(text, i)) is not None:
            out.append(MASK)
            i = lit[1]
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def kept_text(text: str) -> str:
    """What opsd stores of a normalised text: literals masked, at most MAX_CHARS characters."""
    masked = mask_literals(text)
    return masked if len(masked) <= MAX_CHARS else masked[:MAX_CHARS - 1] + "…"
