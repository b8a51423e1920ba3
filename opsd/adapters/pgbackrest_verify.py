"""Parse ``pgbackrest verify --output=text --verbose`` (pgBackRest 2.45 has no JSON output for verify).

The report on stdout looks like::

    stanza: main
    status: error
      archiveId: 15-1, total WAL checked: 6, total valid WAL: 5
        missing: 0, checksum invalid: 1, size invalid: 0, other: 0
      backup: 20261125-200154F, status: invalid, total files checked: 966, total valid files: 965
        missing: 0, checksum invalid: 1, size invalid: 0, other: 0

and the log on stderr (``--log-level-stderr=info``) names the damaged files, e.g.
``INFO: invalid checksum '20261125-200154F/pg_data/base/1/112.zst'``. pgBackRest exits 0 even when it
finds damage: the status line is what counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_COUNTS = ("missing", "checksum invalid", "size invalid", "other")


@dataclass(frozen=True)
class VerifyItem:
    kind: str  # archive | backup
    name: str  # archive id (15-1) or backup label
    status: str  # valid / invalid / ... for backups, ok / error for archives
    checked: int
    valid: int
    problems: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.checked == self.valid and not any(self.problems.values()) and self.status in ("valid", "ok")


@dataclass(frozen=True)
class VerifyResult:
    stanza: str
    status: str
    items: tuple[VerifyItem, ...]
    damaged: tuple[str, ...]  # the log lines naming damaged files

    @property
    def ok(self) -> bool:
        return self.status == "ok" and all(i.ok for i in self.items)

    @classmethod
    def from_details(cls, d: dict[str, Any]) -> VerifyResult:
        """Back from the run history's JSON."""
        return cls(d["stanza"], d["status"], tuple(VerifyItem(**i) for i in d.get("items", ())),
                   tuple(d.get("damaged", ())))

    def summary(self) -> str:
        backups = [i for i in self.items if i.kind == "backup"]
        wal = sum(i.checked for i in self.items if i.kind == "archive")
        text = f"stanza {self.stanza}: {self.status}; {len(backups)} backup(s), {wal} WAL file(s) checked"
        bad = [i for i in self.items if not i.ok]
        if bad:
            text += "; damaged: " + ", ".join(
                f"{i.kind} {i.name} ({', '.join(f'{k} {v}' for k, v in i.problems.items() if v) or i.status})"
                for i in bad)
        if self.damaged:
            text += "; first: " + self.damaged[0]
        return text


_ARCHIVE = re.compile(r"^\s+archiveId: (?P<name>\S+), total WAL checked: (?P<checked>\d+), "
                      r"total valid WAL: (?P<valid>\d+)")
_BACKUP = re.compile(r"^\s+backup: (?P<name>\S+), status: (?P<status>[\w ]+), total files checked: (?P<checked>\d+), "
                     r"total valid files: (?P<valid>\d+)")
_COUNT = re.compile(r"(missing|checksum invalid|size invalid|other): (\d+)")
_DAMAGE = re.compile(r"^(?:\S+ \S+ +P\d+ +)?INFO: (?P<msg>(?:invalid|missing|file|unable)\b.*)$")


def parse_verify(stdout: str, stderr: str = "") -> VerifyResult:
    stanza = status = ""
    items: list[VerifyItem] = []
    for line in stdout.splitlines():
        if line.startswith("stanza: "):
            stanza = line.split(": ", 1)[1].strip()
        elif line.startswith("status: "):
            status = line.split(": ", 1)[1].strip()
        elif m := _ARCHIVE.match(line):
            items.append(VerifyItem("archive", m["name"], "ok", int(m["checked"]), int(m["valid"])))
        elif m := _BACKUP.match(line):
            items.append(VerifyItem("backup", m["name"], m["status"].strip(), int(m["checked"]), int(m["valid"])))
        elif items and (counts := _COUNT.findall(line)):
            last = items[-1]
            problems = {k: int(v) for k, v in counts}
            archive_status = "error" if last.kind == "archive" and any(problems.values()) else last.status
            items[-1] = VerifyItem(last.kind, last.name, archive_status, last.checked, last.valid, problems)
    if not stanza or not status:
        raise ValueError("no 'stanza:'/'status:' lines in pgbackrest verify output")
    damaged = tuple(m["msg"].strip() for line in stderr.splitlines() if (m := _DAMAGE.match(line.strip())))
    return VerifyResult(stanza, status, tuple(items), damaged)
