"""The body of ``opsd rehearse``: the request checked, the copy planned with the restore machinery, the plan
shown (refused: exit 5), the rehearsal run and recorded as a ``rehearse`` run, its report printed."""

from __future__ import annotations

from pathlib import Path

import click

from opsd.actions.copies import registry
from opsd.actions.copies.partial import plan_partial
from opsd.actions.copies.room import facts
from opsd.actions.jobs import JobOutcome, run_job
from opsd.actions.rehearse.gate import SAFE_NAME, check_env, check_os_user, shown_command
from opsd.actions.rehearse.job import RehearsePlan, RehearseRequest, check_role_live, next_steps, run_rehearsal
from opsd.actions.rehearse.view import rehearse_plan_view
from opsd.actions.restore.plan import Request, make_plan
from opsd.actions.restore.service import load_window, measured_runs
from opsd.actions.restore.view import describe
from opsd.actions.targeted.targets import resolve
from opsd.cli import App
from opsd.cli.restore_args import show_plan
from opsd.context import Context
from opsd.core.records.rehearse import FAILED, RehearsalResult
from opsd.core.records.runs import Outcome
from opsd.core.schedule import parse_duration
from opsd.core.timeparse import parse_target_time
from opsd.errors import RefusedError, UsageError
from opsd.report import jsonout, rehearse_console
from opsd.report.jsonout import RehearseView


def _request(app: App, ctx: Context, kw: dict[str, object], workdir: Path) -> RehearseRequest:
    s = app.settings()
    try:
        timeout = parse_duration(str(kw["timeout"])).total_seconds() if kw["timeout"] else \
            s.rehearse.timeout.total_seconds()
    except ValueError as e:
        raise UsageError(f"--timeout: {e}") from None
    if timeout <= 0:
        raise UsageError("--timeout must be longer than zero")
    role = str(kw["role"]) if kw["role"] else s.rehearse.role
    if role is not None and not SAFE_NAME.fullmatch(role):
        raise UsageError(f"--role {role!r}: letters, digits and _ . $ @ - only")
    return RehearseRequest(migrate=str(kw["migrate"]), rollback=str(kw["rollback"]) if kw["rollback"] else None,
                           dbname=str(kw["dbname"] or s.postgres.dbname), role=role,
                           os_user=check_os_user(ctx, s.rehearse.os_user), workdir=workdir,
                           env=check_env(tuple(kw["env"])),  # type: ignore[arg-type]
                           timeout=timeout, keep=bool(kw["keep"]), tag=str(kw["tag"]) if kw["tag"] else None)


def _target(app: App, ctx: Context, kw: dict[str, object], dest: Path, port: int) -> Request:
    tz = app.settings().opsd.tz
    if kw["to_name"]:
        if kw["target"] != "latest":
            raise UsageError("give --target or --to-name, not both")
        req = Request(target_type="name", target_value=str(kw["to_name"]), dest=dest, port=port, start=True)
        return resolve(ctx, req, None, lambda m: click.echo(f"  {m}", err=True))
    if kw["target"] == "latest":
        return Request(target_type="time", dest=dest, port=port, start=True)
    return Request(target_type="time", target_time=parse_target_time(str(kw["target"]), tz), dest=dest, port=port,
                   start=True)


def run_rehearse(app: App, kw: dict[str, object], *, workdir: Path) -> str:
    ctx = app.context()
    rreq = _request(app, ctx, kw, workdir)
    check_role_live(ctx, rreq)
    dest = registry.scratch_root(ctx) / f"drill-rehearse-{ctx.now():%Y%m%dT%H%M%S}"
    req = _target(app, ctx, kw, dest, app.settings().drill.port)
    info, window = load_window(ctx)
    if req.target_type == "time" and req.target_time is None:
        if window.latest is None:
            raise RefusedError("nothing to recover: the repository has no backup with archived WAL after it")
        req = Request(target_type="time", target_time=window.latest.time, dest=dest, port=req.port, start=True)
    dest_facts = facts(ctx, req)
    plan, part = plan_partial(ctx, make_plan(req, info, window, dest_facts, measured_runs(ctx)), rreq.dbname,
                              dest_facts)
    rp = RehearsePlan(rreq, plan, part, describe(plan)["target"]["value"])
    view = rehearse_plan_view(rp, shown_command(rreq.migrate), shown_command(rreq.rollback) if rreq.rollback else None)
    as_json = bool(kw["as_json"])
    if show_plan(rehearse_console.rehearse_plan(view), lambda: jsonout.dump("rehearse", RehearseView(plan=view)),
                 as_json=as_json, dry_run=bool(kw["dry_run"]), refusals=plan.refusals()):
        return "PASSED"

    def body() -> JobOutcome:
        r = run_rehearsal(ctx, rp, lambda m: click.echo(f"  {m}", err=True))
        if r.verdict != FAILED:
            r = r.model_copy(update={"next_steps": next_steps(ctx, rreq)})
        return JobOutcome(Outcome.OK, r.summary(), r)  # the job ran: the verdict is the migration's

    outcome = run_job(ctx, "rehearse", "cli", body)
    assert isinstance(outcome.details, RehearsalResult)
    result = outcome.details
    if as_json:
        click.echo(jsonout.dump("rehearse", RehearseView(plan=view, result=result)))
    else:
        click.echo(rehearse_console.rehearse_result(result))
    return result.verdict
