"""Reading a configuration back to a person: every validation problem with its key path, problems between keys
(also when some key is itself invalid), and the effective values for 'opsd config show' (secrets masked)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr, ValidationError

from opsd.core.units import format_duration

if TYPE_CHECKING:
    from opsd.settings import Settings


def cross_field_problems(s: Settings) -> list[tuple[str, set[str]]]:
    """Problems between keys: each with the keys it depends on (so a key that was itself invalid, and replaced by
    its default to check the rest, does not produce a false problem)."""
    out = []
    if s.opsd.role == "primary" and s.drill.port == s.postgres.port:
        out.append((f"drill.port: {s.drill.port} is the production port (postgres.port)",
                    {"drill.port", "postgres.port", "opsd.role"}))
    scratch, data = s.scratch_dir.resolve(), s.postgres.data_dir.resolve()
    if scratch == data or data in scratch.parents or scratch in data.parents:
        out.append((f"drill.scratch_dir: {scratch} overlaps the production data directory {data} (postgres.data_dir)",
                    {"drill.scratch_dir", "opsd.state_dir", "postgres.data_dir"}))
    return out + _fleet_problems(s)


def _fleet_problems(s: Settings) -> list[tuple[str, set[str]]]:
    f, out = s.fleet, []
    if not f.enabled:
        return []
    if f.role == "drill" and s.opsd.role != "drill":
        out.append(('fleet.role: "drill" needs [opsd] role = "drill" (a drill host runs no production cluster)',
                    {"fleet.role", "opsd.role"}))
    if f.role_for(s.opsd.role) == "drill" and not f.repositories:
        out.append(("fleet.repositories: a drill host needs the pgbackrest.conf of at least one repository",
                    {"fleet.repositories", "fleet.role", "opsd.role"}))
    if f.username and any(e.startswith("http://") for e in f.endpoints):
        out.append(("fleet.endpoints: with fleet.username the password would cross the network in clear: use "
                    "https:// endpoints", {"fleet.endpoints", "fleet.username"}))
    if bool(f.cert) != bool(f.key):
        out.append(("fleet.cert, fleet.key: a client certificate needs both", {"fleet.cert", "fleet.key"}))
    return out


def format_errors(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (typo?)"
        elif e["type"] == "missing":
            msg = "required key missing"
        if not e["loc"]:  # whole-model checks already name their keys
            problems += msg.split("; ")
            continue
        problems.append(f"{loc}: {msg}")
    return problems


def problems_despite(data: dict[str, Any], err: ValidationError, model: type[Settings]) -> list[str]:
    """Pydantic skips whole-model checks when a field is invalid: check them anyway, with every invalid key
    replaced by its default, and report only problems that do not depend on a replaced key."""
    pruned: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    dropped: set[str] = set()
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        if not loc:
            return []  # a whole-model problem: already reported
        if len(loc) >= 2 and isinstance(pruned.get(loc[0]), dict):
            pruned[loc[0]].pop(loc[1], None)
            dropped.add(f"{loc[0]}.{loc[1]}")
        else:
            pruned.pop(loc[0], None)
            dropped.update(f"{loc[0]}.{k}" for k in (data.get(loc[0]) or {}) if isinstance(data.get(loc[0]), dict))
            dropped.add(loc[0])
    try:
        lenient = model.model_validate(pruned, context={"skip_cross": True})
    except ValidationError:
        return []
    return [message for message, keys in cross_field_problems(lenient)
            if not keys & dropped and not {k.split(".")[0] for k in keys} & dropped]


def to_display(settings: Settings) -> dict[str, dict[str, Any]]:
    """The effective config as plain data: durations as '15m', secrets masked (the alert webhook URL, which may
    carry a token; pgBackRest's repository secrets stay in the DBA's pgbackrest.conf)."""
    def show(v: Any) -> Any:
        if isinstance(v, timedelta):
            return format_duration(v)
        if isinstance(v, SecretStr):
            return "********" if v.get_secret_value() else ""
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, BaseModel):
            return {k: show(x) for k, x in dict(v).items()}
        if isinstance(v, list):
            return [show(x) for x in v]
        return "" if v is None else v

    return {section: {k: show(v) for k, v in dict(getattr(settings, section)).items()}
            for section in type(settings).model_fields if section != "source"}
