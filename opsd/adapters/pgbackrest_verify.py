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

from opsd.core.records.jobs import VerifyItem, VerifyResult

_COUNTS = ("missing", "checksum invalid", "size invalid", "other")


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
            items.append(VerifyItem(kind="archive", name=m["name"], status="ok", checked=int(m["checked"]),
                                    valid=int(m["valid"])))
        elif m := _BACKUP.match(line):
            items.append(VerifyItem(kind="backup", name=m["name"], status=m["status"].strip(),
                                    checked=int(m["checked"]), valid=int(m["valid"])))
        elif items and (counts := _COUNT.findall(line)):
            last = items[-1]
            problems = {k: int(v) for k, v in counts}
            archive_status = "error" if last.kind == "archive" and any(problems.values()) else last.status
            items[-1] = last.model_copy(update={"status": archive_status, "problems": problems})
    if not stanza or not status:
        raise ValueError("no 'stanza:'/'status:' lines in pgbackrest verify output")
    damaged = tuple(m["msg"].strip() for line in stderr.splitlines() if (m := _DAMAGE.match(line.strip())))
    return VerifyResult(stanza=stanza, status=status, items=tuple(items), damaged=damaged)
