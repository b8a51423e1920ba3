"""What opsd keeps of a statement's text (core/queries/sqltext.py): pg_stat_statements' normalised text with the
literals a utility statement still carries masked (a password, a file name, a value in a comment), identifiers
and placeholders kept, long texts cut."""

from __future__ import annotations

import pytest

from opsd.core.queries.sqltext import MAX_CHARS, kept_text, mask_literals


@pytest.mark.parametrize(("text", "kept"), [
    ("SELECT $1 + $2 FROM t WHERE a = $3", "SELECT $1 + $2 FROM t WHERE a = $3"),
    ("ALTER ROLE bob PASSWORD 'se''cret'", "ALTER ROLE bob PASSWORD '…'"),
    ("COPY t FROM E'/tmp/a\\'b.csv'", "COPY t FROM '…'"),
    ("SET x = U&'d\\0061t'", "SET x = '…'"),
    ("DO $body$ BEGIN RAISE 'x'; END $body$", "DO '…'"),
    ("DO $$ x $$; SELECT $1", "DO '…'; SELECT $1"),
    ('SELECT "it\'s", $1 FROM "stockMovements"', 'SELECT "it\'s", $1 FROM "stockMovements"'),
    ("SELECT $1 -- don't\nFROM t", "SELECT $1 -- don'…'\nFROM t"),
    ("/*user='a@b.example',route='/x'*/ SELECT $1", "/*user='…',route='…'*/ SELECT $1"),
    ("SELECT foo$bar, 'a'", "SELECT foo$bar, '…'"),
    ("SELECT 'unterminated", "SELECT '…'"),
])
def test_literals_are_masked_identifiers_and_placeholders_kept(text: str, kept: str) -> None:
    assert mask_literals(text) == kept


def test_long_texts_are_cut() -> None:
    text = "SELECT " + ", ".join(f"${i}" for i in range(1, 5000))
    out = kept_text(text)
    assert len(out) == MAX_CHARS and out.endswith("…")
    assert kept_text("SELECT $1") == "SELECT $1"
