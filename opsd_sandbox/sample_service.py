"""The sample report's service levels (docs/reports.md): a month of health probes recorded through the real
availability store (two outages and an hour the daemon was stopped for an upgrade), and the live readers'
answers as the sample's host would have given them (an index report read when the report was made)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from opsd.actions.queries.slowlog import definitions
from opsd.actions.report.service import Sources, default_sources
from opsd.adapters.stores.availability import AvailabilityStore
from opsd.adapters.stores.database import StateDB
from opsd.adapters.stores.objectives import LogMark, ObjectiveStore
from opsd.adapters.stores.queries import QueryStore, SnapshotWrite
from opsd.context import Context
from opsd.core.availability import DOWN, UP, Reach
from opsd.core.records.indexes import (
    IndexReport,
    IndexTotals,
    InvalidIndex,
    NodeSpan,
    NotValidConstraint,
    UnusedIndex,
    UnusedVerdict,
)
from opsd.core.records.queries import StatementDelta
from opsd.settings_queries import QueriesSection

MONTH = datetime(2026, 10, 1, tzinfo=UTC)
_LONG = timedelta(days=40)  # any probe extends the span before it (the probes in between are implied)
_REFUSED = ("cannot connect to PostgreSQL at /var/run/postgresql:5432 as opsd: connection to server on socket "
            '"/var/run/postgresql/.s.PGSQL.5432" failed: FATAL:  the database system is shutting down')
_TIMEOUT = ("probe timed out: query sample timed out: canceling statement due to statement timeout")


def record_availability(store: AvailabilityStore) -> None:
    """Up all month but: a restart for a minor upgrade (4 min refused), an overloaded quarter hour (probes timed
    out), and 50 minutes the daemon was stopped (unknown)."""
    def at(day: int, hour: int, minute: int) -> datetime:
        return MONTH + timedelta(days=day, hours=hour, minutes=minute)

    events = [(MONTH - timedelta(minutes=1), UP, "", _LONG),
              (at(8, 2, 13), DOWN, _REFUSED, _LONG), (at(8, 2, 17), UP, "", _LONG),
              (at(16, 10, 2), DOWN, _TIMEOUT, _LONG), (at(16, 10, 21), UP, "", _LONG),
              (at(22, 4, 0), UP, "", _LONG),  # the daemon stops after this probe ...
              (at(22, 4, 50), UP, "", timedelta(seconds=90)),  # ... and samples again 50 minutes later
              (MONTH + timedelta(days=31, minutes=1), UP, "", _LONG)]
    for when, state, what, bound in events:
        store.note(Reach(state, what), when, bound)


# (queryid, role, normalised text, calls an hour at peak, share over 100 ms, share over 5 s)
STATEMENTS = [
    (7301, "wms", "SELECT * FROM supply.stock_levels WHERE sku = $1 AND site = $2", 30_000, 0.004, 0.0),
    (7302, "wms", "UPDATE supply.stock_levels SET qty = qty - $1 WHERE sku = $2 AND site = $3", 9_000, 0.02, 0.0),
    (7303, "wms", "SELECT m.* FROM supply.stock_movements m WHERE m.batch_ref = $1", 1_200, 0.35, 0.0),
    (7304, "reporting", "SELECT site, sum(qty) FROM supply.stock_movements WHERE moved_at >= $1 GROUP BY site", 30,
     1.0, 0.02)]
TABLES = [("stock_movements", 40 * 2**30, 220 * 2**20), ("order_lines", 18 * 2**30, 60 * 2**20),
          ("shipments", 7 * 2**30, 25 * 2**20), ("stock_levels", 2 * 2**30, 2 * 2**20),
          ("sku", 600 * 2**20, 0)]
MISSED_DAY, UNREAD = 13, (22, range(9, 15))  # the day a release made an update slow; the hours the log was lost


Over = dict[tuple[str, int, str, str], int]  # (objective, queryid, database, role) -> executions over


def _hour(day: int, hour: int, rng: random.Random) -> tuple[list[StatementDelta], Over]:
    """One hour of statements and their executions over each objective's threshold."""
    load = 1.0 if 7 <= hour < 20 else 0.15
    deltas: list[StatementDelta] = []
    over: Over = {}
    for qid, role, _text, peak, slow, very_slow in STATEMENTS:
        if role == "reporting" and not 8 <= hour < 18:
            continue
        calls = max(1, int(peak * load * rng.uniform(0.8, 1.2)))
        share = 0.3 if day == MISSED_DAY and qid == 7302 else slow
        deltas.append(StatementDelta(queryid=qid, dbname="supply", rolname=role, calls=calls,
                                     total_ms=calls * (300.0 if role == "reporting" else 4.0), rows=calls,
                                     shared_hit=calls * 20, shared_read=calls, temp_read=0, temp_written=0,
                                     wal_bytes=0))
        over[("all", qid, "supply", role)] = int(calls * share)
        if role == "reporting":
            over[("reporting", qid, "supply", role)] = round(calls * very_slow * rng.uniform(0, 2))
    return deltas, over


def record_queries(db: StateDB, rng: random.Random, q: QueriesSection) -> None:
    """Hourly snapshots of one node through the real stores: a day missed (a release made the stock update slow
    for a day), six hours whose duration log was rotated away before opsd read it (that day unknown), and the
    tables' daily sizes."""
    queries, objectives = QueryStore(db), ObjectiveStore(db)
    texts = {(qid, "supply", role): text for qid, role, text, *_ in STATEMENTS}
    prev_at = None
    counted = definitions(q)  # the objectives each window was counted under: the report's own
    with db.held():
        for i in range(31 * 24 + 1):
            at = MONTH - timedelta(hours=1) + timedelta(hours=i)
            day, hour = (at - MONTH).days, at.hour
            deltas, over = _hour(day, hour, rng) if prev_at else (list[StatementDelta](), Over())
            state = "unknown" if (day, hour) in {(UNREAD[0], h) for h in UNREAD[1]} else "complete"
            sizes = [("supply", "supply", t, size + grow * max(day, 0)) for t, size, grow in TABLES
                     ] if hour == 0 else []
            sid = queries.write(SnapshotWrite(node="db1", taken_at=at, since=prev_at, statements=True, log_state=state,
                                              statement_deltas=deltas, texts=texts if prev_at is None else {},
                                              sizes_day=at.date() if sizes else None, table_sizes=sizes),
                                queries.previous("db1"))
            objectives.record(sid, "db1", over if state == "complete" else {}, None, at,
                              mark=LogMark(None, counted=counted))
            prev_at = at


def _index_report(ctx: Context) -> IndexReport:
    at = ctx.now()
    since = at - timedelta(days=30)
    unused = [UnusedIndex(dbname="supply", schema="supply", table_name="stock_movements", name=name, definition=d,
                          size_bytes=size, write_rows=212_000_000, seen_seconds=30 * 86400.0,
                          statements=[f"DROP INDEX CONCURRENTLY supply.{name};"])
              for name, d, size in (
                  ("stock_movements_batch_idx", "CREATE INDEX stock_movements_batch_idx ON supply.stock_movements "
                                                "USING btree (batch_no)", 3_900_000_000),
                  ("stock_movements_note_idx", "CREATE INDEX stock_movements_note_idx ON supply.stock_movements "
                                               "USING btree (note)", 1_150_000_000))]
    invalid = [InvalidIndex(dbname="supply", schema="supply", table_name="shipments", name="shipments_carrier_ref_idx",
                            definition="CREATE UNIQUE INDEX shipments_carrier_ref_idx ON supply.shipments USING btree "
                                       "(carrier, carrier_ref)", size_bytes=412_000_000,
                            statements=["DROP INDEX CONCURRENTLY supply.shipments_carrier_ref_idx;"],
                            recreate="CREATE UNIQUE INDEX CONCURRENTLY shipments_carrier_ref_idx ON supply.shipments "
                                     "USING btree (carrier, carrier_ref);")]
    not_valid = [NotValidConstraint(dbname="supply", schema="supply", table_name="order_lines",
                                    name="order_lines_qty_positive", kind="check", definition="CHECK (qty > 0) NOT "
                                    "VALID", statements=["ALTER TABLE supply.order_lines VALIDATE CONSTRAINT "
                                                         "order_lines_qty_positive;"])]
    month = 30 * 86400.0
    verdict = UnusedVerdict(decided=True, reason="statistics cover 30 d on every node", min_span_seconds=7 * 86400.0,
                            covered_seconds=month,
                            nodes=[NodeSpan(node=n, read=True, span_seconds=month) for n in ("db1", "db2")])
    totals = IndexTotals(indexes=64, index_bytes=61_000_000_000, unused=len(unused),
                         unused_bytes=sum(u.size_bytes for u in unused), redundant=1, redundant_bytes=720_000_000,
                         invalid=1, invalid_bytes=412_000_000, missing=1, not_valid=1)
    return IndexReport(generated_at=at, since=since, until=at, databases=["supply"], unused_verdict=verdict,
                       unused=unused, redundant=[], invalid=invalid, missing=[], not_valid=not_valid, totals=totals)


def sources() -> Sources:
    """The recorded readers (objectives, table sizes); the index report as the host would have read it."""
    return Sources(objectives=default_sources().objectives, indexes=_index_report, tables=default_sources().tables)
