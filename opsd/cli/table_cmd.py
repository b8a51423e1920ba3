"""``opsd restore --table``: plan, confirm, recover a scratch copy, load beside the live tables, compare."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from opsd.actions.copies.partial import plan_partial
from opsd.actions.jobs import JobOutcome, run_job
from opsd.actions.restore.plan import make_plan
from opsd.actions.restore.service import gather_facts, load_window, measured_runs
from opsd.actions.restore.view import describe
from opsd.actions.targeted.table import (
    TablePlan,
    TableRequest,
    check_request,
    resolve_live,
    run_table,
    scratch_dest,
    table_verdicts,
)
from opsd.actions.targeted.view import table_plan_view
from opsd.cli import App
from opsd.cli.restore_args import confirm, request, resolved_xids, show_plan
from opsd.core.records.runs import Outcome
from opsd.core.records.targeted import TableRestoreResult
from opsd.db.tablecopy import qualified
from opsd.report import jsonout, targeted_console
from opsd.report.jsonout import TableRestoreView


def restore_tables(app: App, kw: dict[str, object], *, dry_run: bool, yes: bool, as_json: bool) -> None:
    s = app.settings()
    into_file = kw["into_file"]
    treq = TableRequest(tables=tuple(qualified(str(t)) for t in kw["table"]),  # type: ignore[attr-defined]
                        into_schema=str(kw["into_schema"]) if kw["into_schema"] else None,
                        into_file=Path(str(into_file)).absolute() if into_file else None,
                        dbname=str(kw["dbname"] or s.postgres.dbname))
    check_request(treq)
    ctx = app.context()
    req = request(app, kw, dest=scratch_dest(ctx), port=s.drill.port)
    treq = resolve_live(ctx, treq)  # before the WAL is read for --before-xid: a bad name fails fast
    req, xids = resolved_xids(app, ctx, req, kw, as_json)
    treq = replace(treq, xids=xids)
    info, window = load_window(ctx)
    facts = gather_facts(ctx, req)
    plan, part = plan_partial(ctx, make_plan(req, info, window, facts, measured_runs(ctx)), treq.dbname, facts)
    sizes, verdicts = table_verdicts(ctx, treq)
    tp = TablePlan(treq, plan, sizes, verdicts, describe(plan)["target"]["value"], part)
    view = table_plan_view(tp)
    if show_plan(targeted_console.table_plan(view), lambda: jsonout.dump("restore-table", TableRestoreView(plan=view)),
                 as_json=as_json, dry_run=dry_run, refusals=tp.refusals()):
        return
    if treq.into_schema and not yes:
        confirm(f"Load {', '.join(map(str, treq.tables))} as of {tp.target} into the new schema "
                f"{treq.into_schema} of {treq.dbname}? The live tables are not touched", "--into-schema")

    def body() -> JobOutcome:
        r = run_table(ctx, tp, lambda m: click.echo(f"  {m}", err=True))
        return JobOutcome(Outcome.OK, r.summary(), r)

    outcome = run_job(ctx, "restore-table", "cli", body)
    assert isinstance(outcome.details, TableRestoreResult)
    if as_json:
        click.echo(jsonout.dump("restore-table", TableRestoreView(plan=view, result=outcome.details)))
    else:
        click.echo(targeted_console.table_result(outcome.details))
