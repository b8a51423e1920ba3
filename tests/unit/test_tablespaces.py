"""Where a backup's tablespaces go (actions/restore/tablespaces.py) and how pgBackRest is told (pure)."""

from __future__ import annotations

from pathlib import Path

from opsd.actions.restore.plan import REFUSE, WARN, Request
from opsd.actions.restore.tablespaces import TablespaceFacts, _version_dirs, place, side_root
from opsd.adapters import pgbackrest as pb
from opsd.adapters.pgbackrest_restore import RestoreOptions, Tablespace, tablespace_bytes

TS = (Tablespace("ts_heap", 16400, "/srv/ts_heap"), Tablespace("ts_idx", 16401, "/srv/ts_idx"))


def test_a_side_copy_maps_every_tablespace_by_name_and_catches_any_other_and_restores_links_as_directories() -> None:
    argv = pb.restore_cmd(pb.Base("pgbackrest", "/c", "s"), RestoreOptions(
        pg1_path="/scratch/drill-x", target_type="immediate", tablespace_root="/scratch/drill-x.tablespaces/",
        tablespaces=TS))
    assert argv[-1] == "restore"
    assert "--tablespace-map-all=/scratch/drill-x.tablespaces" in argv
    assert "--tablespace-map=ts_heap=/scratch/drill-x.tablespaces/ts_heap" in argv
    assert "--tablespace-map=ts_idx=/scratch/drill-x.tablespaces/ts_idx" in argv
    assert "--no-link-all" in argv and "--reset-link-map" in argv


def test_in_place_the_dbas_own_layout_options_stay() -> None:
    argv = pb.restore_cmd(pb.Base("pgbackrest", "/c", "s"), RestoreOptions(pg1_path="/d", target_type="immediate"))
    assert not [a for a in argv if "tablespace" in a or "link" in a]


def test_the_backups_tablespaces_are_read_from_its_manifest_details() -> None:
    text = ('[{"name":"s","status":{"code":0,"message":"ok","lock":{"backup":{"held":false}}},"repo":[],'
            '"db":[{"id":1,"system-id":7,"version":"15"}],"archive":[],"backup":[{"label":"L","type":"full",'
            '"timestamp":{"start":1,"stop":2},"info":{"size":1,"delta":1,"repository":{"size":1,"delta":1}},'
            '"archive":{},"lsn":{},"database":{"id":1},"tablespace":[{"destination":"/srv/ts1","name":"ts1",'
            '"oid":16395}]},{"label":"M","type":"full","timestamp":{"start":1,"stop":2},"info":{},"archive":{},'
            '"lsn":{},"database":{"id":1},"tablespace":null},{"label":"N","type":"full","timestamp":{},'
            '"info":{},"archive":{},"lsn":{},"database":{"id":1}}]}]')
    [st] = pb.parse_info(text)
    assert {b.label: b.tablespaces for b in st.backups} == {
        "L": (Tablespace("ts1", 16395, "/srv/ts1"),), "M": (), "N": None}  # N: not asked ('info' without --set)


def test_a_side_copy_places_them_beside_its_data_directory_and_refuses_a_busy_one() -> None:
    req = Request("immediate", dest=Path("/scratch/drill-x"))
    placed, verdicts = place(req, TS, TablespaceFacts(root_exists=True, root_empty=True))
    assert side_root(req.dest) == Path("/scratch/drill-x.tablespaces")
    assert [(p.name, p.dest, p.how) for p in placed] == [
        ("ts_heap", "/scratch/drill-x.tablespaces/ts_heap", "mapped"),
        ("ts_idx", "/scratch/drill-x.tablespaces/ts_idx", "mapped")]
    assert not [v for v in verdicts if v.level == REFUSE]
    _, verdicts = place(req, TS, TablespaceFacts(root_exists=True, root_empty=False))
    assert [v.message for v in verdicts if v.level == REFUSE] == [
        "/scratch/drill-x.tablespaces (where this copy's tablespaces go) is not empty: remove it or choose another "
        "target directory"]


def test_a_side_copy_aimed_at_a_production_tablespace_is_refused() -> None:
    req = Request("immediate", dest=Path("/srv/x"))
    _, verdicts = place(req, (Tablespace("ts_heap", 1, "/srv/x.tablespaces/ts_heap"),), TablespaceFacts())
    assert [v.level for v in verdicts if "production tablespace location" in v.message] == [REFUSE]


def test_in_place_occupied_version_directories_are_moved_aside_unless_delta() -> None:
    facts = TablespaceFacts(occupied=(("/srv/ts_heap", ("/srv/ts_heap/PG_15_202209061",)), ("/srv/ts_idx", ())),
                            current=("/srv/ts_heap", "/srv/ts_idx", "/srv/ts_new"))
    req = Request("immediate", dest=Path("/var/lib/postgresql/15/main"), in_place=True)
    placed, verdicts = place(req, TS, facts)
    assert [(p.dest, p.how, p.aside) for p in placed] == [
        ("/srv/ts_heap", "moved aside", ("/srv/ts_heap/PG_15_202209061",)),
        ("/srv/ts_idx", "restored (location empty)", ())]
    assert [v.level for v in verdicts] == [WARN] and "/srv/ts_new is not in the backup" in verdicts[0].message
    placed, verdicts = place(Request("immediate", dest=req.dest, in_place=True, delta=True, force=True), TS, facts)
    assert placed[0].how == "overwritten (--delta)" and placed[0].aside == ()
    assert any("overwritten in place (--delta)" in v.message for v in verdicts)


def test_sizes_come_from_the_manifest_and_a_location_without_room_is_refused() -> None:
    manifest = ("[backup]\nx=1\n[target:file]\n"
                'pg_data/base/5/1259={"size":999,"timestamp":1}\n'
                'pg_tblspc/16400/PG_15_202209061/5/16396={"checksum":"a","size":3000000,"timestamp":1}\n'
                'pg_tblspc/16400/PG_15_202209061/5/16396_fsm={"size":24576,"timestamp":1}\n'
                'pg_tblspc/16401/PG_15_202209061/5/16500={"size":8192}\n'
                "[target:file:default]\ngroup=\"postgres\"\n[target:path]\npg_tblspc/16400={}\n")
    assert tablespace_bytes(manifest) == {16400: 3024576, 16401: 8192}
    facts = TablespaceFacts(free=(("/srv/ts_heap", 1_000_000), ("/srv/ts_idx", None)),
                            sizes=tuple(tablespace_bytes(manifest).items()))
    placed, verdicts = place(Request("immediate", dest=Path("/d"), in_place=True), TS, facts)
    assert [p.size for p in placed] == [3024576, 8192]
    assert [v.message for v in verdicts if v.level == REFUSE] == [
        "not enough space for tablespace ts_heap at /srv/ts_heap: it needs 3.2 MiB (size + 10%), 976.6 KiB free"]
    _, verdicts = place(Request("immediate", dest=Path("/d")), TS, TablespaceFacts(sizes=None))
    assert [v.level for v in verdicts if "sizes are unknown" in v.message] == [WARN]


def test_only_a_version_directory_with_files_counts_as_occupied(tmp_path: Path) -> None:
    (tmp_path / "PG_15_202209061" / "5").mkdir(parents=True)
    (tmp_path / "PG_15_202209061" / "5" / "16384").write_bytes(b"x")
    (tmp_path / "PG_16_202307071").mkdir()  # empty: nothing to collide with
    (tmp_path / "PG_15_202209061.before-restore-20261201T000000").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "x").write_text("x")
    assert _version_dirs(tmp_path) == (str(tmp_path / "PG_15_202209061"),)
    assert _version_dirs(tmp_path / "missing") == ()
