"""Before the migration against after its rollback: the schema as pg_dump prints it (normalised), and each
table's rows as a multiset of row checksums (two sorted streams merged: memory bounded whatever the size)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator

MAX_DIFF_LINES = 200


def normalised(dump: Iterable[str], ignore: tuple[str, ...] = ()) -> list[str]:
    """pg_dump --schema-only output without what differs between two dumps of one schema: comments, SET lines,
    blank lines; and without any line naming ``ignore`` (opsd's own amcheck schema, migration bookkeeping)."""
    out = []
    for raw in dump:
        line = raw.rstrip()
        if not line or line.startswith("--") or line.startswith("SET ") or \
                line.startswith(("SELECT pg_catalog.set_config", "\\restrict", "\\unrestrict")):
            continue
        if any(word in line for word in ignore):
            continue
        out.append(line)
    return out


def schema_diff(before: list[str], after: list[str]) -> list[str]:
    """A unified diff (empty: identical), cut at MAX_DIFF_LINES."""
    diff = list(difflib.unified_diff(before, after, "before the migration", "after the rollback", n=1, lineterm=""))
    return diff if len(diff) <= MAX_DIFF_LINES else [*diff[:MAX_DIFF_LINES], f"... {len(diff) - MAX_DIFF_LINES} "
                                                                                 "more line(s)"]


def removed_or_added(diff: list[str]) -> list[str]:
    """The changed lines of a diff, without its headers."""
    return [d for d in diff if d[:1] in "+-" and not d.startswith(("+++", "---"))]


def multiset_diff(before: Iterator[str], after: Iterator[str]) -> tuple[int, int, int, int]:
    """Two sorted streams of row checksums: (rows before, rows after, missing after, extra after)."""
    nb = na = missing = extra = 0
    b, a = next(before, None), next(after, None)
    while b is not None or a is not None:
        if a is None or (b is not None and b < a):
            nb, missing, b = nb + 1, missing + 1, next(before, None)
        elif b is None or a < b:
            na, extra, a = na + 1, extra + 1, next(after, None)
        else:
            nb, na, b, a = nb + 1, na + 1, next(before, None), next(after, None)
    return nb, na, missing, extra
