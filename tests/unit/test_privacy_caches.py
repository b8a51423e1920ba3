"""Caches of the repository are keyed by the cluster's system identifier as well as the stanza and archive id: a
stanza deleted and created again reuses archive id 15-1, and the old cluster's cached restore points and WAL
facts must never be listed as the new one's. A cache of an older format (without the system identifier) or of
another cluster is read as empty, never mixed in."""

from __future__ import annotations

import json
from pathlib import Path

from opsd.actions.wal.points import CACHE_VERSION, _load
from opsd.adapters.pgbackrest import parse_info
from opsd.adapters.walcache import VERSION, SegmentCache, cache_name

OLD, NEW = 7390000000000000001, 7390000000000000002
SEG = "000000010000000000000004"
POINTS = {SEG: [["before-x", "0/406FF80", None]]}


def _info(system_id: int) -> str:
    return json.dumps([{"name": "main", "status": {"code": 0, "message": "ok"},
                        "db": [{"id": 1, "repo-key": 1, "system-id": system_id, "version": "15"}],
                        "archive": [{"id": "15-1", "min": SEG, "max": SEG, "database": {"id": 1}}],
                        "backup": []}])


def test_pgbackrest_info_gives_the_system_identifier_of_the_current_archive() -> None:
    [old], [new] = parse_info(_info(OLD)), parse_info(_info(NEW))
    assert old.current_archive_id == new.current_archive_id == "15-1"
    assert (old.current_system_id, new.current_system_id) == (OLD, NEW)


def test_the_same_stanza_and_archive_id_of_two_clusters_are_two_caches() -> None:
    assert cache_name("points", "main", "15-1", OLD) != cache_name("points", "main", "15-1", NEW)
    assert cache_name("segments", "main", "15-1", OLD) != cache_name("segments", "main", "15-1", NEW)
    assert str(OLD) in cache_name("segments", "main", "15-1", OLD)


def test_restore_points_cached_for_one_cluster_are_not_read_for_another(tmp_path: Path) -> None:
    f = tmp_path / "points.json"
    f.write_text(json.dumps({"version": CACHE_VERSION, "system_id": OLD, "segments": POINTS}))
    assert _load(f, OLD) == POINTS
    assert _load(f, NEW) == {}


def test_an_old_format_point_cache_is_read_as_empty(tmp_path: Path) -> None:
    f = tmp_path / "points-main-15-1.json"  # what opsd wrote before: no version, no system identifier
    f.write_text(json.dumps({"segments": POINTS}))
    assert _load(f, OLD) == {} and _load(f, None) == {}


def test_segment_facts_of_one_cluster_are_not_read_for_another(tmp_path: Path) -> None:
    f = tmp_path / cache_name("segments", "main", "15-1", OLD)
    stamps = {SEG: 1_700_000_000}
    c = SegmentCache.load(f, stamps, "root", OLD)
    c.put("facts", SEG, {"ended": [], "restarts": []})
    c.save()
    assert SegmentCache.load(f, stamps, "root", OLD).entries
    assert SegmentCache.load(f, stamps, "root", NEW).entries == {}


def test_an_old_format_segment_cache_is_read_as_empty(tmp_path: Path) -> None:
    f = tmp_path / "segments.json"
    f.write_text(json.dumps({"version": 1, "segments": {f"{SEG}@1700000000": {"facts": None}}}))
    assert VERSION != 1
    assert SegmentCache.load(f, {SEG: 1_700_000_000}, "root", OLD).entries == {}
