"""The restore command's arguments: the target, where to, and the options that contradict each other."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import click

from opsd.actions.restore.plan import Request
from opsd.actions.targeted.targets import resolve, resolve_xid
from opsd.cli import App
from opsd.context import Context
from opsd.core.timeparse import parse_target_time
from opsd.errors import RefusedError, UsageError


def kind(kw: dict[str, object]) -> str:
    kinds = [k for k, v in (("--to-time", kw["to_time"]), ("--target-lsn", kw["target_lsn"]),
                            ("--target-xid", kw["target_xid"]), ("--to-name", kw["to_name"]),
                            ("--before-xid", kw["before_xid"]), ("--type immediate", kw["immediate"])) if v]
    if len(kinds) != 1:
        raise UsageError("give exactly one target: --to-time, --to-name, --to-lsn, --target-xid, --before-xid or "
                         f"--type immediate (got {', '.join(kinds) or 'none'})")
    return kinds[0]


_TYPES = {"--to-time": "time", "--target-lsn": "lsn", "--target-xid": "xid", "--to-name": "name",
          "--before-xid": "xid", "--type immediate": "immediate"}


def request(app: App, kw: dict[str, object], dest: Path | None = None, port: int | None = None) -> Request:
    k = kind(kw)
    _conflicts(kw)
    s = app.settings()
    in_place = bool(kw["in_place"])
    if dest is None:
        dest = s.postgres.data_dir if in_place else Path(str(kw["target_dir"])).absolute()
        port = kw["port"]  # type: ignore[assignment]
    to_time = kw["to_time"]
    value = kw["target_lsn"] or kw["target_xid"] or kw["to_name"] or kw["before_xid"]
    return Request(
        target_type=_TYPES[k], target_time=parse_target_time(str(to_time), s.opsd.tz) if to_time else None,
        target_value=str(value) if value is not None else None, set_label=kw["set_label"],  # type: ignore[arg-type]
        target_timeline=kw["target_timeline"], dest=dest, port=port, in_place=in_place,  # type: ignore[arg-type]
        delta=bool(kw["delta"]), start=bool(kw["start"]) or bool(kw["table"]), pause=bool(kw["pause"]),
        force=bool(kw["force"]), exclusive=k == "--before-xid")


def _conflicts(kw: dict[str, object]) -> None:
    """Options that contradict each other: one usage line naming them."""
    _where_conflicts(kw)
    if kw["delta"] and not (kw["in_place"] and kw["force"]):
        raise UsageError("--delta overwrites files in place: only with --in-place --force")
    if kw["force"] and not kw["in_place"]:
        raise UsageError("--force goes with --in-place")
    if kw["immediate"] and kw["target_timeline"]:
        raise UsageError("--type immediate stops at the backup's end on its own timeline: no --target-timeline")
    if kw["pause"] and not kw["start"]:
        raise UsageError("--pause needs --start")
    if kw["target_lsn"] and "/" not in str(kw["target_lsn"]):
        raise UsageError(f"invalid LSN {kw['target_lsn']!r}: use the X/Y form, e.g. 0/3000060")


def _where_conflicts(kw: dict[str, object]) -> None:
    in_place, target_dir, port = kw["in_place"], kw["target_dir"], kw["port"]
    if kw["table"]:
        given = [o for o, v in (("--in-place", in_place), ("--target-dir", target_dir), ("--port", port),
                                ("--start", kw["start"]), ("--pause", kw["pause"]), ("--delta", kw["delta"])) if v]
        if given:
            raise UsageError(f"--table restores into a scratch copy opsd manages: do not give {', '.join(given)}")
    elif kw["into_schema"] or kw["into_file"] or kw["dbname"]:
        raise UsageError("--into-schema, --into-file and --dbname go with --table")
    elif in_place and (target_dir or port):
        raise UsageError("--in-place restores over [postgres] data_dir; do not give --target-dir/--port")
    elif not in_place and (not target_dir or not port):
        raise UsageError("a side restore needs --target-dir DIR (empty or absent) and --port P")


def show_plan(console: str, json_doc: Callable[[], str], *, as_json: bool, dry_run: bool,
              refusals: list[str]) -> bool:
    """Print the plan (console, or JSON when the command stops here); True: stop (--dry-run; refused: exit 5)."""
    if not as_json:
        click.echo(console)
    if not (dry_run or refusals):
        return False
    if as_json:
        click.echo(json_doc())
    if refusals:
        raise RefusedError("refused: " + "; ".join(refusals))
    return True


def confirm(question: str, what: str) -> None:
    if not sys.stdin.isatty():
        raise UsageError(f"{what} asks for confirmation: pass --yes when not on a terminal")
    click.confirm(question, abort=True)


def resolved(app: App, ctx: Context, req: Request, kw: dict[str, object], quiet: bool) -> Request:
    """--to-name and --before-xid: placed in the archived WAL (a refusal there is exit 5)."""
    if req.target_type not in ("name", "xid"):
        if kw.get("since"):
            raise UsageError("--since goes with --to-name or --before-xid")
        return req
    since = parse_target_time(str(kw["since"]), app.settings().opsd.tz) if kw.get("since") else None
    return resolve(ctx, req, since, lambda m: None if quiet else click.echo(f"  {m}", err=True))


def resolved_xids(app: App, ctx: Context, req: Request, kw: dict[str, object], quiet: bool
                  ) -> tuple[Request, tuple[int, ...]]:
    """As :func:`resolved`; for --before-xid also the transaction and its subtransactions (the rows they deleted
    or changed are what the put-back of ``restore --table`` is limited to)."""
    if not (req.target_type == "xid" and req.exclusive and req.target_value):
        return resolved(app, ctx, req, kw, quiet), ()
    since = parse_target_time(str(kw["since"]), app.settings().opsd.tz) if kw.get("since") else None
    x = resolve_xid(ctx, int(req.target_value), since, lambda m: None if quiet else click.echo(f"  {m}", err=True))
    req = replace(req, stop_lsn=x.end.lsn, target_timeline=req.target_timeline or str(x.timeline))
    return req, (x.end.xid, *x.end.subxacts)
