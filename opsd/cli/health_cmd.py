"""``opsd health [locks|pool|replication|incidents|sample]``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from opsd.adapters.stores.health import HealthStore
from opsd.cli import App
from opsd.cli.common import Interval, pass_app
from opsd.core.schedule import parse_duration
from opsd.core.timeparse import parse_target_time
from opsd.report import health_console

if TYPE_CHECKING:  # 'health incidents' reads the state file: no psycopg, no probe, no alert channels
    from opsd.context import Context
    from opsd.core.records.health import HealthSample

WATCH = click.option("--watch", type=Interval(min=1, max=86400), metavar="SECONDS",
                     help="Repeat every SECONDS until Ctrl-C (one probe connection throughout).")
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _show(app: App, *, locks: bool, pool: bool, watch: float | None, as_json: bool, replication: bool = True
          ) -> None:
    from opsd.actions.health.sample import last_deadlocks, take_sample
    from opsd.db.probe import probe_for

    ctx = app.context()
    probe = probe_for(ctx.settings)
    store = HealthStore(ctx.history.db)
    try:
        while True:
            s = take_sample(ctx, probe, locks=locks, pool=pool, replication=replication,
                            last_deadlocks=last_deadlocks(store))
            _print(ctx, s, as_json, clear=watch is not None and not as_json)
            if watch is None:
                break
            time.sleep(watch)
    except KeyboardInterrupt:
        pass
    finally:
        probe.close()


def _print(ctx: Context, s: HealthSample, as_json: bool, *, clear: bool) -> None:
    if as_json:
        from opsd.report import jsonout

        click.echo(jsonout.dump("health-sample", s))
        return
    if clear:
        click.clear()
    click.echo(health_console.sample(s, ctx.settings.opsd.tz, int(ctx.settings.health.slot_retained_max)))


@click.group("health", invoke_without_command=True)
@WATCH
@JSON
@click.pass_context
def health(cctx: click.Context, watch: float | None, as_json: bool) -> None:
    """Lock contention, connection/pool and replication health, now. Without a subcommand: all of them."""
    if cctx.invoked_subcommand is None:
        _show(cctx.find_object(App), locks=True, pool=True, watch=watch, as_json=as_json)  # type: ignore[arg-type]


@health.command("locks")
@WATCH
@JSON
@pass_app
def locks(app: App, watch: float | None, as_json: bool) -> None:
    """Blocking trees (root blocker, depth, waiters, longest wait, modes, relations), long and idle-in-transaction
    sessions, deadlocks."""
    _show(app, locks=True, pool=False, replication=False, watch=watch, as_json=as_json)


@health.command("replication")
@WATCH
@JSON
@pass_app
def replication(app: App, watch: float | None, as_json: bool) -> None:
    """On a primary: each standby's state and write/flush/replay lag, every replication slot and the WAL it
    retains. On a standby: what it received and replayed, its replay lag, and whether WAL streams or comes from
    the archive."""
    _show(app, locks=False, pool=False, replication=True, watch=watch, as_json=as_json)


@health.command("pool")
@WATCH
@JSON
@pass_app
def pool(app: App, watch: float | None, as_json: bool) -> None:
    """Server connections against max_connections, and PgBouncer pools ([pgbouncer] configured)."""
    _show(app, locks=False, pool=True, replication=False, watch=watch, as_json=as_json)


@health.command("sample")
@JSON
@pass_app
def sample(app: App, as_json: bool) -> None:
    """Take one sample and record it, opening and closing incidents (what the daemon's health job does)."""
    from opsd.actions.health.sample import last_deadlocks, record, take_sample
    from opsd.db.probe import probe_for

    ctx = app.context()
    probe = probe_for(ctx.settings)
    store = HealthStore(ctx.history.db)
    try:
        s = take_sample(ctx, probe, last_deadlocks=last_deadlocks(store))
    finally:
        probe.close()
    changes = record(ctx, store, s)
    if as_json:
        from opsd.report import jsonout

        click.echo(jsonout.dump("health-recorded", jsonout.SampleRecorded(
            sample=s, opened=[c.key for c in changes.opened], closed=[i.key for i in changes.closed])))
        return
    _print(ctx, s, False, clear=False)
    for c in changes.opened:
        click.echo(f"incident opened: {c.summary}")
    for i in changes.closed:
        click.echo(f"incident closed: {i.key}")


@health.command("incidents")
@click.option("--since", metavar="TIME|DURATION", help="Incidents open at or after this ('7d', or a time).")
@JSON
@pass_app
def incidents(app: App, since: str | None, as_json: bool) -> None:
    """Lock, pool, connection, replication slot and probe incidents, with the worst moment of each."""
    ctx = app.context()
    start = None
    if since:
        try:
            start = ctx.now() - parse_duration(since)
        except ValueError:
            start = parse_target_time(since, ctx.settings.opsd.tz)
    rows = HealthStore(ctx.history.db).incidents(start)
    if as_json:
        from opsd.report import jsonout

        click.echo(jsonout.dump("health-incidents", rows))
    else:
        click.echo(health_console.incidents(rows, ctx.settings.opsd.tz))


COMMANDS = [health]
