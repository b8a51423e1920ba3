"""What the metrics need of the last index report, kept in ``<state_dir>/index-figures.json``: invalid indexes,
constraints not validated, unused and redundant index bytes. The index report reads the live catalogs of every
database; a scrape never does: it reads this file (``opsd_invalid_indexes``, ``opsd_unused_index_bytes``, and
``opsd_index_figures_timestamp_seconds`` for its age). Written by every index report that saves them: the monthly
report's, and :func:`refresh` (for a scheduled job)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from opsd.adapters.files import ensure_dir, write_whole
from opsd.context import Context
from opsd.core.records.indexes import IndexReport
from opsd.core.records.service import IndexFigures
from opsd.errors import OpsdError
from opsd.log import get_logger
from opsd.settings import Settings


def path(s: Settings) -> Path:
    return s.opsd.state_dir / "index-figures.json"


def figures(report: IndexReport) -> IndexFigures:
    t, decided = report.totals, report.unused_verdict.decided
    return IndexFigures(at=report.generated_at, invalid=t.invalid, invalid_bytes=t.invalid_bytes,
                        not_valid=t.not_valid, unused=t.unused if decided else None,
                        unused_bytes=t.unused_bytes if decided else None, redundant_bytes=t.redundant_bytes)


def save(ctx: Context, report: IndexReport) -> None:
    """Keep the report's figures for the metrics; a failure is logged, never raised (the report goes on)."""
    try:
        ensure_dir(ctx.settings.opsd.state_dir, ctx.settings.opsd.run_as)
        write_whole(path(ctx.settings), figures(report).model_dump_json(indent=1), mode=0o644)
    except OpsdError as e:
        get_logger().warning("indexes.figures_not_saved", error=str(e))


def refresh(ctx: Context) -> IndexFigures:
    """Read the catalogs (the index report without hypothetical-index advice: a few catalog queries per database)
    and keep the figures: what a scheduled job calls to keep the metrics fresh. Raises (one line) when the server
    cannot be read at all."""
    from opsd.actions.queries.indexes import index_report

    report = index_report(ctx, advise=False)
    save(ctx, report)
    return figures(report)


def load(s: Settings) -> IndexFigures | None:
    """None before the first index report (or when the file is unreadable: logged)."""
    try:
        return IndexFigures.model_validate_json(path(s).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as e:
        get_logger().warning("indexes.figures_unreadable", path=str(path(s)), error=str(e).splitlines()[0])
        return None
