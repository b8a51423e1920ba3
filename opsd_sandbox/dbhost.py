"""A PostgreSQL host as an operator makes one: a booted Debian 12 root (hosts.py) with Debian's cluster 15/main,
then opsd installed by ``playbooks/install.yml`` with a local connection, exactly as docs/install.md says.

What the playbook gets, all as files (nothing secret on a command line or in the unit's environment):
``/srv/opsd`` the checkout (read-only: the playbook and the unit), ``/srv/handoff`` the wheels, the inventory, the
variables, the S3 endpoint's CA and its keys (0600).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from opsd_sandbox.hosts import Host, wheelhouse
from opsd_sandbox.procs import run
from opsd_sandbox.stack import BUCKET, REGION, S3_KEY, S3_NAME, S3_SECRET, Sandbox

CHECKOUT = Path(__file__).resolve().parent.parent
HANDOFF = "/srv/handoff"  # where the host sees the handoff directory
SOURCE = "/srv/opsd"  # and the checkout
PLAYBOOK = (f"ansible-playbook -i {HANDOFF}/inventory.yml -e @{HANDOFF}/vars.yml "
            f"{SOURCE}/playbooks/install.yml")


@dataclass(frozen=True)
class Recap:
    """Ansible's own count of a run (its PLAY RECAP line for the host)."""

    ok: int
    changed: int
    failed: int
    output: str

    @classmethod
    def parse(cls, output: str) -> Recap:
        m = re.search(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", output)
        if m is None:
            raise RuntimeError(f"no PLAY RECAP in ansible-playbook's output: {output[-1500:]}")
        return cls(int(m[1]), int(m[2]), int(m[3]), output)

    def changed_tasks(self) -> list[str]:
        """The names of the tasks that reported a change (for a failed idempotence check's message)."""
        names, out = [], []
        for line in self.output.splitlines():
            if line.startswith(("TASK [", "RUNNING HANDLER [")):
                names.append(line.split("[", 1)[1].rsplit("]", 1)[0])
            elif line.startswith("changed:") and names:
                out.append(names[-1])
        return out


def handoff(directory: Path, sb: Sandbox, *, stanza: str = "main", **extra: object) -> Path:
    """Write what the playbook needs for a host whose repository is ``sb``'s S3 endpoint (seen as S3_NAME)."""
    directory.mkdir(parents=True, exist_ok=True)
    wheelhouse(CHECKOUT, directory / "wheels")
    (directory / "s3-key").write_text(S3_KEY)
    (directory / "s3-key-secret").write_text(S3_SECRET)
    for f in ("s3-key", "s3-key-secret"):
        (directory / f).chmod(0o600)
    shutil.copy(sb.ca_file, directory / "s3-ca.crt")
    whl = next((directory / "wheels").glob("opsd-*.whl")).name
    variables = {
        "opsd_package": f"{HANDOFF}/wheels/{whl}", "opsd_wheelhouse": f"{HANDOFF}/wheels",
        "opsd_apt_update": False, "opsd_pg_restart": True, "opsd_stanza": stanza,
        "opsd_repo_s3_endpoint": S3_NAME, "opsd_repo_s3_port": sb.tls_port, "opsd_repo_s3_bucket": BUCKET,
        "opsd_repo_s3_region": REGION, "opsd_repo_s3_uri_style": "path", "opsd_repo_path": f"/{stanza}",
        "opsd_repo_s3_ca_file": f"{HANDOFF}/s3-ca.crt", "opsd_repo_s3_key_file": f"{HANDOFF}/s3-key",
        "opsd_repo_s3_key_secret_file": f"{HANDOFF}/s3-key-secret", **extra,
    }
    (directory / "vars.yml").write_text("---\n" + "".join(f"{k}: {_yaml(v)}\n" for k, v in variables.items()))
    (directory / "inventory.yml").write_text(
        "---\nall:\n  children:\n    postgres:\n      hosts:\n        localhost:\n"
        "          ansible_connection: local\n          ansible_python_interpreter: /usr/bin/python3\n")
    return directory


def _yaml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def binds(directory: Path) -> list[tuple[Path, str]]:
    return [(CHECKOUT, SOURCE), (directory, HANDOFF)]


def install(host: Host, *, timeout: float = 600) -> Recap:
    """Run the playbook on the host, with a local connection; raises when a task failed."""
    return _play(host, PLAYBOOK, timeout)


def _play(host: Host, command: str, timeout: float) -> Recap:
    res = host.run(command + " 2>&1", check=False, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"[{host.name}] install.yml failed (rc {res.returncode}): {res.stdout[-3000:]}")
    return Recap.parse(res.stdout)


def release_wheel(commit: str, version: str, into: Path) -> Path:
    """A wheel of opsd as it was at ``commit``, labelled ``version`` (an earlier release, for an upgrade test:
    pip upgrades only to a higher version, as a real release would have)."""
    src = into / f"src-{commit}"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    run(["git", "-C", str(CHECKOUT), "archive", "--format=tar", "-o", str(into / "src.tar"), commit])
    run(["tar", "-x", "-C", str(src), "-f", str(into / "src.tar")])
    pyproject = src / "pyproject.toml"
    pyproject.write_text(re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', pyproject.read_text(), count=1))
    py = CHECKOUT / ".venv" / "bin" / "python"
    run([str(py), "-m", "pip", "-q", "--disable-pip-version-check", "wheel", "--no-deps", "--wheel-dir",
         str(into), str(src)], timeout=300)
    return next(into.glob(f"opsd-{version}-*.whl"))


def install_with(host: Host, directory: Path, name: str, **variables: object) -> Recap:
    """Run the playbook again with ``variables`` on top of the handoff's (a file beside it: ``-e @file``)."""
    (directory / name).write_text("---\n" + "".join(f"{k}: {_yaml(v)}\n" for k, v in variables.items()))
    return _play(host, f"{PLAYBOOK} -e @{HANDOFF}/{name}", 600)
