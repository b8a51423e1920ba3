"""What a rehearsed migration would do to production, from what it did on the copy: the ordinary traffic each
lock blocks and for how long, the known hazards each with its safer pattern, and the one verdict."""

from __future__ import annotations

from dataclasses import dataclass

from opsd.core.records.rehearse import (
    FAILED,
    HAZARDS,
    PASSED,
    ConstraintAdded,
    Hazard,
    IndexBuilt,
    LockHeld,
    Rewrite,
    Statement,
    Verdict,
)
from opsd.core.rehearse.locks import short
from opsd.core.rehearse.statements import changes_type, dml_verb
from opsd.core.units import human_bytes

ADVICE = {
    "rewrite": "add the column without a default (or with a constant one: PostgreSQL 11+ stores it without a "
               "rewrite), backfill in batches of a few thousand rows, then SET DEFAULT / SET NOT NULL",
    "type-change": "add a new column of the new type, backfill it in batches, switch reads and writes, then drop "
                   "the old column (or use a type change PostgreSQL makes without a rewrite, e.g. varchar(n) to "
                   "text)",
    "index-not-concurrent": "CREATE INDEX CONCURRENTLY, outside a transaction (TypeORM: `transaction = false` on "
                            "the migration class); check afterwards that the index is valid",
    "constraint-validated": "ADD CONSTRAINT ... NOT VALID (a short lock, no scan), then ALTER TABLE ... VALIDATE "
                            "CONSTRAINT in a later transaction (SHARE UPDATE EXCLUSIVE: reads and writes go on)",
    "long-update": "update in batches (by key ranges, a few thousand rows per transaction), outside the schema "
                   "change's transaction",
    "long-lock": "keep the statement that takes this lock short, and set lock_timeout (e.g. SET lock_timeout = "
                 "'2s') so it gives up instead of queueing every query behind it",
}


@dataclass(frozen=True)
class Limits:
    """``lock_budget``: a lock that blocks reads or writes for longer is a hazard (the service-level objective's
    threshold); ``large_table``: any rewrite, scan or index build under such a lock on a table this large is one;
    ``long_statement``: a data change in one statement longer than this."""

    lock_budget: float = 0.1
    large_table: int = 100 * 1024**2
    long_statement: float = 1.0


def _lock(locks: list[LockHeld], relation: str, *modes: str) -> LockHeld | None:
    found = [lk for lk in locks if lk.relation == relation and lk.mode in modes]
    return max(found, key=lambda lk: lk.seconds) if found else None


def _held(lk: LockHeld | None, size: int | None) -> str:
    parts = [f"{short(lk.mode)} held {lk.seconds:.1f} s" if lk else "its lock held less than a sampling interval"]
    if size is not None:
        parts.append(f"table {human_bytes(size)}")
    if lk is not None and lk.rows is not None:
        parts.append(f"~{lk.rows:,} rows")
    return ", ".join(parts)


def _big(lk: LockHeld | None, size: int | None, limits: Limits) -> bool:
    return (lk is not None and lk.seconds >= limits.lock_budget) or (size or 0) >= limits.large_table


def hazards(locks: list[LockHeld], rewrites: list[Rewrite], indexes: list[IndexBuilt], *,
            constraints: list[ConstraintAdded], statements: list[Statement], limits: Limits) -> list[Hazard]:
    out = _rewrites(locks, rewrites, statements, limits) + _indexes(locks, indexes, limits)
    out += _constraints(locks, constraints, limits) + _updates(statements, limits)
    return out + _long_locks(locks, {h.relation for h in out}, limits)


def _rewrites(locks: list[LockHeld], rewrites: list[Rewrite], statements: list[Statement], limits: Limits
              ) -> list[Hazard]:
    retyped = any(changes_type(s.text) for s in statements if s.phase == "migrate")
    out = []
    for r in rewrites:
        lk = _lock(locks, r.relation, "AccessExclusiveLock")
        if r.kind == "table" and _big(lk, r.bytes_before, limits):
            code = "type-change" if retyped else "rewrite"
            out.append(Hazard(code=code, relation=r.relation, advice=ADVICE[code],
                              message=f"{r.relation} rewritten under ACCESS EXCLUSIVE (reads and writes blocked): "
                                      f"{_held(lk, r.bytes_before)}"))
    return out


def _indexes(locks: list[LockHeld], indexes: list[IndexBuilt], limits: Limits) -> list[Hazard]:
    out = []
    for ix in indexes:
        lk = _lock(locks, ix.table, "ShareLock")
        if not ix.concurrently and lk is not None and lk.bytes is not None and _big(lk, lk.bytes, limits):
            out.append(Hazard(code="index-not-concurrent", relation=ix.table, advice=ADVICE["index-not-concurrent"],
                              message=f"index {ix.index} built without CONCURRENTLY on {ix.table} (writes "
                                      f"blocked): {_held(lk, lk.bytes)}"))
    return out


def _constraints(locks: list[LockHeld], constraints: list[ConstraintAdded], limits: Limits) -> list[Hazard]:
    out = []
    for c in constraints:
        lk = _lock(locks, c.table, "ShareRowExclusiveLock", "AccessExclusiveLock")
        if c.kind not in ("foreign key", "check") or c.not_valid or lk is None or lk.bytes is None:
            continue
        if _big(lk, lk.bytes, limits):
            out.append(Hazard(code="constraint-validated", relation=c.table, advice=ADVICE["constraint-validated"],
                              message=f"{c.kind} {c.name} added without NOT VALID on {c.table}: every row checked "
                                      f"under {short(lk.mode)} ({_held(lk, lk.bytes)})"))
    return out


def _updates(statements: list[Statement], limits: Limits) -> list[Hazard]:
    return [Hazard(code="long-update", relation=None, advice=ADVICE["long-update"],
                   message=f"{dml_verb(s.text)} in one statement for {(s.ms or 0) / 1000:.1f} s: {s.text[:120]}")
            for s in statements
            if s.phase == "migrate" and s.ms is not None and s.ms >= limits.long_statement * 1000 and dml_verb(s.text)]


def _long_locks(locks: list[LockHeld], named: set[str | None], limits: Limits) -> list[Hazard]:
    out = []
    for lk in locks:
        if lk.phase != "migrate" or lk.relation in named or lk.bytes is None or lk.seconds < limits.lock_budget \
                or not _blocks_traffic(lk):
            continue
        named.add(lk.relation)
        out.append(Hazard(code="long-lock", relation=lk.relation, advice=ADVICE["long-lock"],
                          message=f"{short(lk.mode)} on {lk.relation} for {lk.seconds:.1f} s blocks "
                                  f"{', '.join(lk.blocks)} ({_held(lk, lk.bytes)})"))
    return out


def _blocks_traffic(lk: LockHeld) -> bool:
    return "reads" in lk.blocks or any(b.startswith("writes") for b in lk.blocks)


def impact(locks: list[LockHeld]) -> list[str]:
    """One line a lock that would block production's ordinary traffic."""
    out = []
    for lk in locks:
        if not lk.blocks or lk.bytes is None:  # a relation the migration created: nobody uses it yet
            continue
        size = f" ({human_bytes(lk.bytes)}{f', ~{lk.rows:,} rows' if lk.rows is not None else ''})"
        out.append(f"{short(lk.mode)} on {lk.relation}{size} for {lk.seconds:.1f} s ({lk.phase}): blocks "
                   f"{', '.join(lk.blocks)}")
    return out


def wal_impact(wal_bytes: int, push_rate: float | None, replay_rate: float | None) -> str:
    """The WAL the migration writes against the rates opsd measured (bytes per second): the repository's write
    rate (the last full backup) and WAL replay (the last drill)."""
    text = f"{human_bytes(wal_bytes)} of WAL"
    if push_rate:
        text += f"; archiving at the repository's measured {human_bytes(int(push_rate))}/s (the last full " \
                f"backup) lags by about {wal_bytes / push_rate / 60:.1f} min"
    else:
        text += "; archiving lag unknown (no full backup in opsd's history to measure the repository's rate)"
    if replay_rate:
        text += f"; a standby replaying at the last drill's {human_bytes(int(replay_rate))}/s lags by about " \
                f"{wal_bytes / replay_rate / 60:.1f} min"
    else:
        text += "; standby lag unknown (no drill in opsd's history to measure WAL replay)"
    return text


def verdict(failures: list[str], found: list[Hazard]) -> Verdict:
    return FAILED if failures else HAZARDS if found else PASSED
