"""The sample report's service levels (docs/reports.md): a month of health probes recorded through the real
availability store (two outages and an hour the daemon was stopped for an upgrade), and the live readers'
answers as the sample's host would have given them (an index report read when the report was made)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opsd.actions.report.service import Sources, default_sources
from opsd.adapters.stores.availability import AvailabilityStore
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


def _index_report(ctx: Context) -> IndexReport:
    at = ctx.now()
    since = at - timedelta(days=30)
    unused = [UnusedIndex(dbname="supply", schema="supply", table_name="stock_movements", name=name, definition=d,
                          size_bytes=size, write_rows=212_000_000, seen=timedelta(days=30),
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
    month = timedelta(days=30)
    verdict = UnusedVerdict(decided=True, reason="statistics cover 30 d on every node", min_span=timedelta(days=7),
                            covered=month, nodes=[NodeSpan(node=n, read=True, span=month) for n in ("db1", "db2")])
    totals = IndexTotals(indexes=64, index_bytes=61_000_000_000, unused=len(unused),
                         unused_bytes=sum(u.size_bytes for u in unused), redundant=1, redundant_bytes=720_000_000,
                         invalid=1, invalid_bytes=412_000_000, missing=1, not_valid=1)
    return IndexReport(generated_at=at, since=since, until=at, databases=["supply"], unused_verdict=verdict,
                       unused=unused, redundant=[], invalid=invalid, missing=[], not_valid=not_valid, totals=totals)


def sources() -> Sources:
    return Sources(objectives=default_sources().objectives, indexes=_index_report,
                   tables=default_sources().tables)
