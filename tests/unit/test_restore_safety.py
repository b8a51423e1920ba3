"""Issue 12, pure parts: 'stopped' proven positively, the Debian layout, timelines and archive ids, the pinned end
of 'latest', DST, async archive-get detection and config validation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from opsd import settings as settings_mod
from opsd.actions.restore.plan import OK, REFUSE, WARN, DestFacts, Request, judge_stopped, make_plan
from opsd.actions.restore.window import compute_window
from opsd.adapters import pgbackrest as pb
from opsd.adapters.cluster import StopEvidence, detect_layout, layout_problems
from opsd.adapters.pgbackrest_conf import archive_async
from opsd.adapters.waldump import ended, segment_facts
from opsd.core.timeparse import parse_target_time
from opsd.core.wal import (
    ArchivedSegment,
    SegmentFacts,
    Stamped,
    Switch,
    archived_past_switch,
    divergences,
    judge,
    lost_past,
    parse_history,
    parse_segment,
    runs_and_gaps,
)
from opsd.errors import ConfigError, UsageError
from tests.unit.test_restore_pure import B1, B2, LAST_COMMIT, SEGS, T0, _at, _backup, _commit, _info

STOPPED = StopEvidence(pg_ctl_status=3, pid_file_pid=None, pid_alive=False, answering=None, control_state="shut down")
DATA = Path("/var/lib/postgresql/15/main")


# --------------------------------------------------------------------------- stopped, positively
def test_only_full_evidence_proves_stopped() -> None:
    assert judge_stopped(STOPPED, DATA, force=False) == []
    assert judge_stopped(STOPPED.__class__(3, None, False, None, "shut down in recovery"), DATA, False) == []
    cases = {
        "pg_ctl status exited 1": StopEvidence(1, None, False, None, "shut down"),  # run_as root, bad bin_dir
        "process 77, which is alive": StopEvidence(3, 77, True, None, "shut down"),  # another PID namespace
        "answers on 127.0.0.1:5432": StopEvidence(3, None, False, "127.0.0.1:5432", "shut down"),
        "'in production'": StopEvidence(3, None, False, None, "in production"),  # crashed, or running elsewhere
        "unreadable": StopEvidence(3, None, False, None, None),
    }
    for seen, evidence in cases.items():
        [v] = judge_stopped(evidence, DATA, force=False)
        assert v.level == REFUSE and seen in v.message, (seen, v.message)


def test_force_accepts_an_unclean_state_but_never_a_live_process() -> None:
    [v] = judge_stopped(StopEvidence(3, None, False, None, "in production"), DATA, force=True)
    assert v.level == WARN and "--force" in v.message
    [v] = judge_stopped(StopEvidence(3, 77, True, None, "in production"), DATA, force=True)
    assert v.level == REFUSE


def _in_place(facts: DestFacts, **kw: object):  # type: ignore[no-untyped-def]
    req = Request(target_type="immediate", dest=DATA, in_place=True, **kw)  # type: ignore[arg-type]
    return make_plan(req, _info(B1, B2), compute_window(_info(B1, B2), SEGS, _commit), facts, [])


def test_in_place_refuses_a_missing_dir_and_a_mount_point() -> None:
    missing = _in_place(DestFacts(False, True, 10**12))
    assert missing.refused and "does not exist" in missing.refusals()[0]
    mount = _in_place(DestFacts(True, False, 10**12, stop=STOPPED, mount_point=True, real_path=DATA))
    assert mount.refused and "mount point" in mount.refusals()[0] and "--delta --force" in mount.refusals()[0]
    delta = _in_place(DestFacts(True, False, 10**12, stop=STOPPED, mount_point=True, real_path=DATA), delta=True,
                      force=True)
    assert not delta.refused
    ok = _in_place(DestFacts(True, False, 10**12, stop=STOPPED, real_path=Path("/srv/pg/main")))
    assert not ok.refused and ok.real_path == Path("/srv/pg/main")


def test_space_is_measured_where_a_symlinked_data_dir_really_is() -> None:
    small = _in_place(DestFacts(True, False, 100, stop=STOPPED, real_path=Path("/srv/pg/main")))
    assert small.refused and "not enough space for /srv/pg/main" in small.refusals()[0]


# --------------------------------------------------------------------------- layout
def _etc(tmp_path: Path, data_dir: Path, name: str = "main") -> Path:
    conf_dir = tmp_path / "etc" / "15" / name
    conf_dir.mkdir(parents=True)
    (conf_dir / "postgresql.conf").write_text(f"data_directory = '{data_dir}'\nport = 5432\n")
    return conf_dir


def test_debian_layout_is_found_by_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _etc(tmp_path, tmp_path / "other", "other")
    conf_dir = _etc(tmp_path, data)
    layout = detect_layout(data, None, tmp_path / "etc")
    assert (layout.kind, layout.major, layout.cluster, layout.config_dir) == ("debian", "15", "main", conf_dir)
    assert "pg_ctlcluster 15 main start" in layout.describe()
    link = tmp_path / "link"
    link.symlink_to(data)
    assert detect_layout(link, None, tmp_path / "etc").kind == "debian"  # a symlinked data_dir is the same cluster
    assert detect_layout(tmp_path / "elsewhere", None, tmp_path / "etc").kind == "pgdata"


def test_explicit_config_dir_is_checked(tmp_path: Path) -> None:
    data = tmp_path / "data"
    conf_dir = _etc(tmp_path, data)
    assert layout_problems(detect_layout(data, conf_dir, tmp_path / "etc"), data) == []
    wrong = layout_problems(detect_layout(tmp_path / "x", conf_dir, tmp_path / "etc"), tmp_path / "x")
    assert wrong and "names data_directory" in wrong[0]
    hand = tmp_path / "hand"
    hand.mkdir()
    assert detect_layout(data, hand, tmp_path / "etc").kind == "config_dir"
    assert "no postgresql.conf" in layout_problems(detect_layout(data, hand, tmp_path / "etc"), data)[0]


# --------------------------------------------------------------------------- latest, pinned
def test_latest_is_pinned_to_its_transaction_or_the_backup_end() -> None:
    def plan(commit_at):  # type: ignore[no-untyped-def]
        w = compute_window(_info(B1, B2), SEGS, commit_at)
        assert w.latest is not None
        req = Request(target_type="time", target_time=w.latest.time, dest=Path("/r"), port=5499)
        return make_plan(req, _info(B1, B2), w, DestFacts(False, True, 10**12), [])

    by_xid = plan(_commit)
    assert by_xid.pin is not None and (by_xid.pin.target_type, by_xid.pin.target) == ("xid", "900")
    idle = plan(lambda n: _at(B2.start - timedelta(minutes=1)) if n.endswith("0A") else None)
    assert idle.pin is not None and idle.pin.target_type == "immediate" and idle.backup == B2
    blind = plan(lambda n: None)
    assert blind.pin is not None and blind.pin.target_type == "default"
    assert any(v.level == WARN and "end of the archived WAL" in v.message for v in blind.verdicts)
    assert any(v.level == OK and "transaction 900" in v.message for v in by_xid.verdicts)


def test_a_commit_before_the_newest_backup_is_consistent_is_not_the_latest_point() -> None:
    """Under load a commit lands in the second pgBackRest records as the backup's end (whole seconds) but before
    its stop LSN: PostgreSQL refuses to stop there. The latest point is then the backup's end, reached with
    an immediate target from that backup."""
    b2 = _backup("B2", T0 + timedelta(minutes=6), T0 + timedelta(minutes=9),
                 ("000000010000000000000007", "00000001000000000000000A"))
    b2 = b2.__class__(**{**b2.__dict__, "lsn_stop": "0/A000200"})
    w = compute_window(_info(B1, b2), SEGS, lambda n: _at(b2.stop + timedelta(seconds=0.5)) if n.endswith("0A")
                       else None)  # commit LSN 0/A000100, before the stop LSN, yet timed after the stop
    assert w.latest is not None and w.latest.time == b2.stop and w.latest.commit is None
    req = Request(target_type="time", target_time=w.latest.time, dest=Path("/r"), port=5499)
    plan = make_plan(req, _info(B1, b2), w, DestFacts(False, True, 10**12), [])
    assert plan.pin is not None and plan.pin.target_type == "immediate" and plan.backup == b2


def test_a_target_within_the_second_a_backup_ended_uses_the_one_before() -> None:
    w = compute_window(_info(B1, B2), SEGS, _commit)
    req = Request(target_type="time", target_time=B2.stop + timedelta(seconds=0.4), dest=Path("/r"), port=5499)
    safe = make_plan(req, _info(B1, B2), w, DestFacts(False, True, 10**12), [])
    assert safe.backup == B1 and not any("within a second" in v.message for v in safe.verdicts)
    only = make_plan(req, _info(B2), compute_window(_info(B2), SEGS, _commit), DestFacts(False, True, 10**12), [])
    assert only.backup == B2 and any(v.level == WARN and "within a second of backup B2" in v.message
                                     for v in only.verdicts)
    later = Request(target_type="time", target_time=B2.stop + timedelta(seconds=1), dest=Path("/r"), port=5499)
    assert make_plan(later, _info(B1, B2), w, DestFacts(False, True, 10**12), []).backup == B2


# --------------------------------------------------------------------------- timelines and archive ids
def test_history_file_parsing() -> None:
    text = "1\t0/5000000\tno recovery target specified\n\n2\t0/7000000\tbefore 2026-11-30 10:00:00+00\n"
    assert parse_history(3, text) == [Switch(2, 1, "0/5000000", "no recovery target specified"),
                                      Switch(3, 2, "0/7000000", "before 2026-11-30 10:00:00+00")]


def _arch(names: list[str], archive_id: str, minute0: int = 0) -> list[ArchivedSegment]:
    out = []
    for i, n in enumerate(names):
        seg = parse_segment(n)
        assert seg is not None
        out.append(ArchivedSegment(seg, 1, T0 + timedelta(minutes=minute0 + i), archive_id))
    return out


def test_each_archive_id_numbers_its_own_segments() -> None:
    old = _arch([f"0000000100000000000000{i:02X}" for i in range(1, 9)], "15-1")
    new = _arch([f"0000000100000000000000{i:02X}" for i in range(1, 4)], "15-2", minute0=20)
    runs, gaps = runs_and_gaps(old + new)
    assert not gaps and sorted((r.archive_id, r.count) for r in runs) == [("15-1", 8), ("15-2", 3)]
    b_new = _backup("N1", T0 + timedelta(minutes=20), T0 + timedelta(minutes=21),
                    ("000000010000000000000002", "000000010000000000000002"))
    b_new = pb.BackupInfo(**{**b_new.__dict__, "archive_id": "15-2"})
    info = pb.StanzaInfo("main", 0, "ok", False, (b_new,), (pb.ArchiveRange("15-1", None, None),
                                                            pb.ArchiveRange("15-2", None, None)), ())
    w = compute_window(info, old + new, lambda n: _at(T0 + timedelta(minutes=22)) if n.endswith("03") else None)
    [iv] = w.intervals
    assert iv.backups == ("N1",) and iv.latest.time == T0 + timedelta(minutes=22) and not w.gaps


def test_backup_archive_id_comes_from_its_database() -> None:
    text = ('[{"name":"main","status":{"code":0,"message":"ok"},"db":[{"id":1,"version":"14"},{"id":2,"version":'
            '"15"}],"archive":[{"id":"14-1","database":{"id":1}},{"id":"15-2","database":{"id":2}}],"backup":[{'
            '"label":"F","type":"full","database":{"id":2},"timestamp":{"start":1,"stop":2}}]}]')
    [st] = pb.parse_info(text)
    assert st.backups[0].archive_id == "15-2" and st.current_archive_id == "15-2"


def _two_timelines():  # type: ignore[no-untyped-def]
    """Timeline 1 has segments 1..10 (B1, B2 on it); timeline 2 branched at segment 8 and runs to 0C."""
    tl2 = _arch([f"0000000200000000000000{i:02X}" for i in range(8, 13)], "", minute0=12)
    w = compute_window(_info(B1, B2), SEGS + tl2, lambda n: _at(T0 + timedelta(minutes=17)) if n.endswith("0C")
                       else _commit(n))
    return w


def test_a_time_on_two_timelines_is_planned_on_one_named_timeline() -> None:
    w = _two_timelines()
    assert [i.timeline for i in w.intervals] == [1, 2]
    t = LAST_COMMIT - timedelta(minutes=1)  # on timeline 1 (before its end) and reachable along timeline 2
    req = Request(target_type="time", target_time=t, dest=Path("/r"), port=5499)
    plan = make_plan(req, _info(B1, B2), w, DestFacts(False, True, 10**12), [])
    assert plan.timeline == "2"
    assert any("timelines 1, 2" in v.message and "along timeline 2" in v.message for v in plan.verdicts)
    asked = make_plan(Request(target_type="time", target_time=t, dest=Path("/r"), port=5499, target_timeline="1"),
                      _info(B1, B2), w, DestFacts(False, True, 10**12), [])
    assert asked.timeline == "1" and asked.interval is not None and asked.interval.timeline == 1
    late = T0 + timedelta(minutes=16)  # only timeline 2 reaches it
    off = make_plan(Request(target_type="time", target_time=late, dest=Path("/r"), port=5499, target_timeline="1"),
                    _info(B1, B2), w, DestFacts(False, True, 10**12), [])
    assert off.refused and "not reachable on timeline 1" in off.refusals()[0]


# --------------------------------------------------------------------------- times
def test_times_in_the_autumn_overlap_are_ambiguous() -> None:
    with pytest.raises(UsageError, match=r"ambiguous.*\+02:00 or .*\+01:00"):
        parse_target_time("2026-10-25 02:30", ZoneInfo("Europe/Paris"))
    assert parse_target_time("2026-10-25 02:30+01:00", ZoneInfo("Europe/Paris")).utcoffset() == timedelta(hours=1)
    for bad in ("0001-01-01 00:00", "0001-01-01 00:00+01", "9999-12-31 23:59"):
        with pytest.raises(UsageError, match="invalid time"):
            parse_target_time(bad, ZoneInfo("UTC"))


# --------------------------------------------------------------------------- async archive-get
@pytest.mark.parametrize("section", ["global", "global:archive-get", "main", "main:archive-get"])
def test_archive_async_is_found_in_every_section_archive_get_reads(tmp_path: Path, section: str) -> None:
    conf = tmp_path / "pgbackrest.conf"
    conf.write_text(f"[global]\nrepo1-path=/r\nconfig-include-path={tmp_path / 'none'}\n[{section}]\n"
                    "archive-async=y\n")
    assert archive_async(conf, "main", env={})
    conf.write_text(f"[global]\nconfig-include-path={tmp_path / 'none'}\n[global:archive-push]\narchive-async=y\n")
    assert not archive_async(conf, "main", env={})


def test_archive_async_from_the_environment_and_included_files(tmp_path: Path) -> None:
    conf = tmp_path / "pgbackrest.conf"
    inc = tmp_path / "conf.d"
    inc.mkdir()
    conf.write_text(f"[global]\nconfig-include-path={inc}\n")
    assert not archive_async(conf, "main", env={})
    assert archive_async(conf, "main", env={"PGBACKREST_ARCHIVE_ASYNC": "y"})
    (inc / "async.conf").write_text("[global:archive-get]\narchive-async=y\n")
    assert archive_async(conf, "main", env={})


# --------------------------------------------------------------------------- config check
def test_config_refuses_root_a_bad_bin_dir_and_zero_timeouts_and_still_reports_cross_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        settings_mod.parse({
            "opsd": {"run_as": "root", "state_dir": str(tmp_path)},
            "postgres": {"bin_dir": str(tmp_path), "port": 5432},
            "pgbackrest": {"backup_timeout": "0s"},
            "drill": {"port": 5432, "scratch_dir": "/"},
        })
    text = "\n".join(ei.value.problems)
    for expected in ("opsd.run_as: 'root' is root", "postgres.bin_dir: no executable pg_ctl or postgres",
                     "pgbackrest.backup_timeout: must be longer than zero", "drill.port: 5432 is the production port",
                     "drill.scratch_dir: / overlaps"):
        assert expected in text, text


def test_a_cross_field_problem_on_a_replaced_key_is_not_invented() -> None:
    with pytest.raises(ConfigError) as ei:
        settings_mod.parse({"postgres": {"port": "x"}, "drill": {"port": 5432}})
    assert ei.value.problems == ["postgres.port: Input should be a valid integer, unable to parse string as an "
                                 "integer"]
    assert settings_mod.parse({"drill": {"heartbeat_interval": "0s"}}).drill.heartbeat_interval == timedelta(0)


def test_a_zombie_is_not_a_live_process() -> None:
    """PID 1 may reap late: an exited postmaster can stay a zombie with its postmaster.pid in place."""
    import os
    import subprocess
    import time

    from opsd.adapters.processes import alive

    child = subprocess.Popen(["true"])  # exits at once and stays a zombie until waited for
    deadline = time.monotonic() + 10
    while alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        os.kill(child.pid, 0)  # what the old check asked: the kernel still knows the pid
        assert not alive(child.pid)
    finally:
        child.wait()
    assert alive(os.getpid())


def test_wal_archived_on_an_old_timeline_after_a_switch_is_a_split_brain() -> None:
    switch = Switch(2, 1, "0/5000028", "no recovery target specified")  # timeline 2 branched in segment 5
    branched = T0 + timedelta(minutes=10)

    def seg(tl: int, segno: int, minute: int) -> ArchivedSegment:
        s = parse_segment(f"{tl:08X}00000000{segno:08X}")
        assert s is not None
        return ArchivedSegment(s, 1, T0 + timedelta(minutes=minute))

    failover = [seg(1, n, n) for n in range(1, 7)] + [seg(2, 5, 11), seg(2, 6, 12)]  # 1/6: before the switch
    assert divergences(failover, (switch,), {2: branched}) == []
    lone = [*failover, seg(1, 7, 15)]  # the old primary came back on its own and keeps archiving
    [d] = divergences(lone, (switch,), {2: branched})
    assert (d.switch, d.newest.segment.name, d.branched_at) == (switch, "000000010000000000000007", branched)
    assert divergences([*failover, seg(1, 4, 15)], (switch,), {2: branched}) == []  # before the switch: a lag
    [d] = divergences([*failover, seg(1, 5, 15)], (switch,), {2: branched})  # completed by a lone old primary
    assert d.newest.segment.name == "000000010000000000000005"
    assert divergences(lone, (switch,), {}) == []  # no .history time: nothing to compare with


def test_late_wal_is_judged_by_what_it_holds() -> None:
    """Patroni archives a crashed primary's '.ready' segments before pg_rewind: late, but everything in them
    ended before the promotion (no split brain; what is past the switch point was lost in the failover). A lone
    primary's segments hold transactions that ended after it. A segment that cannot be read proves nothing."""
    switch = Switch(2, 1, "0/5000028", "no recovery target specified")
    branched = T0 + timedelta(minutes=10)
    late = tuple(ArchivedSegment(s, 1, T0 + timedelta(minutes=20)) for s in (
        parse_segment("000000010000000000000005"), parse_segment("000000010000000000000006")) if s is not None)
    [d] = divergences(list(late), (switch,), {2: branched})
    assert d.to_read(3) == ["000000010000000000000005", "000000010000000000000006"]
    at = T0 + timedelta(minutes=9)
    before, lost = Stamped(700, "0/5000010", at), Stamped(701, "0/5000100", at)  # before / after the switch
    rewound = judge(d, {"000000010000000000000005": SegmentFacts((before, lost), ("0/5000000",)),
                        "000000010000000000000006": SegmentFacts()})  # its own checkpoint before the switch
    assert not rewound.split_brain and rewound.lost == (lost,) and rewound.after_promotion == ()
    within = Stamped(702, "0/6000100", branched + timedelta(seconds=1))  # the archive's times are whole seconds
    assert not judge(d, {"000000010000000000000006": SegmentFacts((within,))}).split_brain
    lone = Stamped(703, "0/6000200", branched + timedelta(seconds=2))
    v = judge(d, {"000000010000000000000005": SegmentFacts((before,)),
                  "000000010000000000000006": SegmentFacts((lone,))})
    assert v.split_brain and v.after_promotion == (lone,)
    started = judge(d, {"000000010000000000000006": SegmentFacts((), ("0/6000028",))})  # before any commit
    assert started.split_brain and started.restarted_at == ("0/6000028",)
    unread = judge(d, {"000000010000000000000005": SegmentFacts((before,)), "000000010000000000000006": None})
    assert unread.split_brain and unread.unread == ("000000010000000000000006",)
    many = tuple(ArchivedSegment(s, 1, T0 + timedelta(minutes=20)) for n in range(5, 12)
                 if (s := parse_segment(f"0000000100000000{n:08X}")) is not None)
    [d] = divergences(list(many), (switch,), {2: branched})
    assert d.to_read(3) == ["000000010000000000000005", "00000001000000000000000A", "00000001000000000000000B"]


def test_waldump_transactions_commit_abort_prepared() -> None:
    out = "\n".join([
        "rmgr: Transaction len (rec/tot):     34/    34, tx:        735, lsn: 0/05000028, prev 0/05000000, "
        "desc: COMMIT 2026-12-01 02:22:27.123456 UTC",
        "rmgr: Transaction len (rec/tot):     34/    34, tx:        736, lsn: 0/05000050, prev 0/05000028, "
        "desc: ABORT 2026-12-01 02:22:28.5 UTC",
        "rmgr: Transaction len (rec/tot):     54/    54, tx:          0, lsn: 0/05000078, prev 0/05000050, "
        "desc: COMMIT_PREPARED 737: 2026-12-01 02:22:29.000001 UTC",
        "rmgr: Heap        len (rec/tot):     54/    54, tx:        738, lsn: 0/050000B0, prev 0/05000078, "
        "desc: INSERT off 2 flags 0x00, blkref #0: rel 1663/5/16384 blk 0",
    ])
    got = ended(out)
    assert [(r.xid, r.lsn, r.time.second) for r in got] == [(735, "0/05000028", 27), (736, "0/05000050", 28),
                                                           (0, "0/05000078", 29)]
    assert [r.xid for r in ended(out, ("COMMIT",))] == [735, 0]
    boot = ("rmgr: XLOG        len (rec/tot):    114/   114, tx:          0, lsn: 0/0E000028, prev 0/0D04B378, "
            "desc: CHECKPOINT_SHUTDOWN redo 0/E000028; tli 3; prev tli 3; fpw true; xid 0:739; shutdown")
    switch = ("rmgr: XLOG        len (rec/tot):     24/    24, tx:          0, lsn: 0/0E0000A0, prev 0/0E000028, "
              "desc: SWITCH ")
    write = ("rmgr: Heap        len (rec/tot):     59/    59, tx:        739, lsn: 0/0E018248, prev 0/0E018200, "
             "desc: INSERT+INIT off 1 flags 0x00, blkref #0: rel 1663/5/24587 blk 0")
    # Patroni's crash recovery before pg_rewind: a checkpoint and a switch, no transaction: not a restart
    assert segment_facts("\n".join([boot, switch])) == SegmentFacts((), ())
    # a lone primary: it started, then took writes (its commit may be in the next segment)
    assert segment_facts("\n".join([out, boot, write, switch])) == SegmentFacts(tuple(got), ("0/0E000028",))


def test_what_a_failover_abandoned_in_wal_archived_before_it() -> None:
    """The old primary completed and archived the segment holding the switch point before it was lost: the
    transactions in it past the switch point never reached the new primary (lost, on the abandoned branch)."""
    switch = Switch(2, 1, "0/5000100", "no recovery target specified")
    branched = T0 + timedelta(minutes=10)

    def seg(tl: int, segno: int, minute: int) -> ArchivedSegment:
        s = parse_segment(f"{tl:08X}00000000{segno:08X}")
        assert s is not None
        return ArchivedSegment(s, 1, T0 + timedelta(minutes=minute))

    segments = [seg(1, 4, 1), seg(1, 5, 9), seg(2, 5, 11), seg(1, 6, 20)]
    assert [a.segment.name for a in archived_past_switch(segments, switch, branched)] == ["000000010000000000000005"]
    at = T0 + timedelta(minutes=9)
    kept, lost = Stamped(700, "0/5000080", at), Stamped(701, "0/5000200", at)
    assert lost_past(switch, [SegmentFacts((kept, lost))]) == (lost,)
