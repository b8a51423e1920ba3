"""The restore plan remembers what it read in archived WAL segments: a second reading decodes nothing, a
segment listed with another archive time (a stanza created again) is read again, and an unreadable cache
file is an empty cache."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opsd.adapters.runner import Completed
from opsd.adapters.walcache import SegmentCache
from opsd.adapters.waldump import archive_reader

SEG = "000000010000000000000003"
EMPTY = "000000010000000000000004"
DUMP = {
    SEG: ("rmgr: Transaction len (rec/tot):     34/    34, tx:        735, lsn: 0/03000060, prev 0/03000028, "
          "desc: COMMIT 2026-12-01 07:00:00.123456 UTC\n"),
    EMPTY: "rmgr: XLOG        len (rec/tot):     24/    24, tx:          0, lsn: 0/04000028, prev 0/03000060, "
           "desc: SWITCH\n",
}


class _Repo:
    def __init__(self) -> None:
        self.fetched: list[str] = []

    def archive_get(self, name: str, dest: str) -> bool:
        self.fetched.append(name)
        Path(dest).write_text(name)
        return name in DUMP


class _Runner:
    def __init__(self) -> None:
        self.dumped: list[str] = []

    def run(self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
            **_: Any) -> Completed:
        name = Path(argv[-1]).read_text()
        self.dumped.append(name)
        return Completed(tuple(argv), 0, DUMP[name], "", 0.01)


def _read(tmp: Path, stamps: dict[str, int], cache_file: Path) -> tuple[_Repo, _Runner, list[Any]]:
    repo, runner = _Repo(), _Runner()
    cache = SegmentCache.load(cache_file, stamps, "root")
    with archive_reader(repo, runner, Path("/bin"), tmp, "root", cache=cache) as rd:  # type: ignore[arg-type]
        got = [rd.last_commit(SEG), rd.last_commit(EMPTY), rd.facts(SEG), rd.last_commit("00000001000000000000000F")]
    return repo, runner, got


def test_a_second_reading_decodes_nothing_and_gives_the_same_answers(tmp_path: Path) -> None:
    stamps = {SEG: 1_764_572_400, EMPTY: 1_764_572_401}
    cache_file = tmp_path / "walcache" / "segments-15-1-main.json"
    _, runner1, first = _read(tmp_path, stamps, cache_file)
    assert runner1.dumped == [SEG, EMPTY, SEG] and cache_file.exists()
    assert first[0].xid == 735 and first[0].time == datetime(2026, 12, 1, 7, 0, 0, 123456, UTC)
    assert first[1] is None and first[3] is None  # no commit in it; not in the repository
    repo2, runner2, second = _read(tmp_path, stamps, cache_file)
    assert runner2.dumped == [] and second == first
    assert repo2.fetched == ["00000001000000000000000F"]  # not listed: never cached, asked again


def test_a_segment_archived_again_under_the_same_name_is_read_again(tmp_path: Path) -> None:
    cache_file = tmp_path / "segments.json"
    _read(tmp_path, {SEG: 100, EMPTY: 100}, cache_file)
    _, runner, _ = _read(tmp_path, {SEG: 200, EMPTY: 100}, cache_file)
    assert runner.dumped == [SEG, SEG]  # last_commit and facts of the new SEG; EMPTY came from the cache
    assert set(json.loads(cache_file.read_text())["segments"]) == {f"{SEG}@200", f"{EMPTY}@100"}  # old one pruned


def test_an_unreadable_cache_is_an_empty_one(tmp_path: Path) -> None:
    cache_file = tmp_path / "segments.json"
    cache_file.write_text("{not json")
    _, runner, got = _read(tmp_path, {SEG: 1, EMPTY: 1}, cache_file)
    assert runner.dumped == [SEG, EMPTY, SEG] and got[0].xid == 735
    _, runner, _ = _read(tmp_path, {SEG: 1, EMPTY: 1}, cache_file)
    assert runner.dumped == []  # and it was written whole again
