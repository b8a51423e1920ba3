"""The migration's way to its copy (actions/rehearse/gate.py): its environment, its argv (namespaces, dropped
privileges, production's sockets hidden), and the names the copy's pg_hba.conf would hold."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from opsd.actions.rehearse import gate
from opsd.errors import RefusedError, UsageError
from opsd.settings import Settings


def _ctx(tmp_path: Path, **rehearse: Any) -> Any:
    s = Settings.model_validate({"postgres": {"host": str(tmp_path / "prod-socket")}, "rehearse": rehearse})
    (tmp_path / "prod-socket").mkdir(exist_ok=True)
    return SimpleNamespace(settings=s)


def _gate(tmp_path: Path) -> gate.Gate:
    root = tmp_path / "gate"
    return gate.Gate(root, root / "socket", tmp_path / "x.hba", tmp_path / "x.ident", root / "home", "nobody")


def test_the_environment_never_takes_libpqs_settings_from_the_operator() -> None:
    assert gate.check_env(("NODE_ENV=production", "A_B=x=y")) == {"NODE_ENV": "production", "A_B": "x=y"}
    with pytest.raises(UsageError, match="PGHOST"):
        gate.check_env(("PGHOST=/var/run/postgresql",))
    with pytest.raises(UsageError, match="NAME=VALUE"):
        gate.check_env(("JUSTANAME",))


@pytest.mark.skipif(os.geteuid() != 0, reason="the namespaces and the user switch are root's")
def test_as_root_the_command_gets_no_network_production_sockets_hidden_and_no_privileges(tmp_path: Path) -> None:
    ctx, g = _ctx(tmp_path), _gate(tmp_path)
    argv = gate.argv(ctx, g, "npx typeorm migration:run", tmp_path / "app", {"PGHOST": str(g.socket_dir)})
    assert argv[:5] == ["unshare", "--net", "--mount", "--", "sh"]
    mounts = argv[6]
    assert f"opsd-hidden {tmp_path / 'prod-socket'}" in mounts  # production's socket directory, hidden
    drop = argv.index("setpriv")
    assert "--no-new-privs" in argv[drop:] and "--inh-caps=-all" in argv[drop:]
    body = argv[argv.index("env"):]
    assert body[:3] == ["env", "-i", f"--chdir={tmp_path / 'app'}"] and body[-3:] == ["sh", "-c",
                                                                                    "npx typeorm migration:run"]
    assert f"PGHOST={g.socket_dir}" in body and not any(a.startswith("PGPASSWORD") for a in body)
    plain = gate.argv(_ctx(tmp_path, isolate_network=False), g, "true", tmp_path, {})
    assert plain[0] == "setpriv"


def test_a_socket_directory_the_command_needs_is_never_hidden(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    prod = tmp_path / "prod-socket"
    assert prod in gate.hidden_dirs(ctx, [tmp_path / "gate" / "socket"])
    assert prod not in gate.hidden_dirs(ctx, [prod / "inside"])  # hiding it would hide the gate too


def test_role_names_that_pg_hba_cannot_hold_safely_are_refused(tmp_path: Path) -> None:
    ctx = SimpleNamespace(settings=Settings())
    with pytest.raises(RefusedError, match=r"pg_hba\.conf"):
        gate.close_gate(ctx, _gate(tmp_path), 'owner"\nlocal all all trust', {"postgres"})  # type: ignore[arg-type]
