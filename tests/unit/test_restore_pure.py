"""Restore decisions without processes: time parsing, WAL runs and gaps, the window, the plan, the argv."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from opsd.actions.restore.plan import REFUSE, WARN, DestFacts, Request, make_plan
from opsd.actions.restore.window import compute_window
from opsd.adapters import pgbackrest as pb
from opsd.adapters.cluster import StopEvidence
from opsd.adapters.pgbackrest_prefetch import Prefetch, archive_get_command
from opsd.adapters.waldump import Commit, last_commit
from opsd.core.timeparse import parse_target_time, pgbackrest_target, show
from opsd.core.wal import ArchivedSegment, Segment, parse_segment, runs_and_gaps
from opsd.errors import ExitCode, UsageError

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-25 14:03", datetime(2026, 11, 25, 14, 3, tzinfo=BERLIN)),
    ("2026-11-25T14:03:05+00:00", datetime(2026, 11, 25, 14, 3, 5, tzinfo=UTC)),
    ("2026-11-25 14:03:05+01", datetime(2026, 11, 25, 13, 3, 5, tzinfo=UTC)),
    ("2026-11-25 14:03:05.250Z", datetime(2026, 11, 25, 14, 3, 5, 250000, tzinfo=UTC)),
    ("2026-11-25 14:03:05 UTC", datetime(2026, 11, 25, 14, 3, 5, tzinfo=UTC)),
])
def test_target_times(text: str, expected: datetime) -> None:
    got = parse_target_time(text, BERLIN)
    assert got == expected and got.tzinfo is not None


@pytest.mark.parametrize("bad", ["yesterday", "2026-11-25", "25/11/2026 14:00", "2026-13-01 10:00", "now"])
def test_bad_target_times_are_usage_errors_naming_the_forms(bad: str) -> None:
    with pytest.raises(UsageError) as ei:
        parse_target_time(bad, UTC)  # type: ignore[arg-type]
    assert ei.value.exit_code == ExitCode.USAGE
    assert str(ei.value).startswith(f"invalid time {bad!r}")


def test_nonexistent_local_time_is_refused() -> None:
    with pytest.raises(UsageError, match="does not exist"):
        parse_target_time("2026-03-29 02:30", BERLIN)


def test_shown_with_offset_and_sent_to_pgbackrest_in_utc() -> None:
    t = parse_target_time("2026-11-25 14:03", BERLIN)
    assert show(t) == "2026-11-25 14:03:00+01:00"
    assert pgbackrest_target(t) == "2026-11-25 13:03:00.000000+00"


def test_segment_names_round_trip() -> None:
    seg = parse_segment("0000000200000001000000FF")
    assert seg == Segment(2, 511) and seg.name == "0000000200000001000000FF"
    assert parse_segment("000000010000000000000002.00000028.backup") == Segment(1, 2)
    assert parse_segment("00000002.history") is None


def _arch(names: list[str], start: datetime = T0) -> list[ArchivedSegment]:
    out = []
    for i, n in enumerate(names):
        seg = parse_segment(n)
        assert seg is not None
        out.append(ArchivedSegment(seg, 1000, start + timedelta(minutes=i)))
    return out


def test_runs_and_gaps() -> None:
    segs = _arch(["000000010000000000000001", "000000010000000000000002", "000000010000000000000005",
                  "000000020000000000000005", "000000020000000000000006"])
    runs, gaps = runs_and_gaps(segs)
    assert [(r.timeline, r.first.segment.segno, r.last.segment.segno) for r in runs] == [(1, 1, 2), (1, 5, 5), (2, 5, 6)]  # noqa: E501
    assert [(g.timeline, g.missing_from.name, g.count) for g in gaps] == [(1, "000000010000000000000003", 2)]


def _backup(label: str, start: datetime, stop: datetime, wal: tuple[str, str], size: int = 10_000) -> pb.BackupInfo:
    return pb.BackupInfo(label=label, type="full", start=start, stop=stop, size=size, delta=size, repo_size=1,
                         repo_delta=1, wal_start=wal[0], wal_stop=wal[1], lsn_start="0/2000028", lsn_stop="0/3000100",
                         prior=None, reference=(), error=False)


def _info(*backups: pb.BackupInfo) -> pb.StanzaInfo:
    return pb.StanzaInfo("main", 0, "ok", False, tuple(backups), (), ())


B1 = _backup("B1", T0, T0 + timedelta(minutes=1), ("000000010000000000000002", "000000010000000000000002"))
B2 = _backup("B2", T0 + timedelta(minutes=6), T0 + timedelta(minutes=7),
             ("000000010000000000000007", "000000010000000000000007"))
SEGS = _arch([f"0000000100000000000000{i:02X}" for i in range(1, 11)])
LAST_COMMIT = T0 + timedelta(minutes=9, seconds=30)


def _at(t: datetime) -> Commit:
    return Commit(t, 900, "0/A000100")


def _commit(name: str) -> Commit | None:
    return _at(LAST_COMMIT) if name == "00000001000000000000000A" else None


def test_window_from_backups_and_the_last_commit() -> None:
    w = compute_window(_info(B1, B2), SEGS, _commit)
    [iv] = w.intervals
    assert iv.earliest.time == B1.stop and "B1" in iv.earliest.source
    assert iv.latest.time == LAST_COMMIT and "pg_waldump" in iv.latest.source
    assert iv.backups == ("B1", "B2") and not w.gaps


def test_window_never_ends_before_the_newest_backup() -> None:
    # the last commit in the archive is older than B2's end (an idle database): B2's end is still reachable
    newest_before = _at(B2.start - timedelta(minutes=1))
    w = compute_window(_info(B1, B2), SEGS, lambda n: newest_before if n.endswith("0A") else None)
    assert w.latest is not None and w.latest.time == B2.stop and "no commit after it" in w.latest.source


def test_window_falls_back_to_earlier_segments_then_archive_time() -> None:
    w = compute_window(_info(B1), SEGS, lambda n: _at(LAST_COMMIT) if n == "000000010000000000000008" else None)
    assert w.intervals[0].latest.source.endswith("000000010000000000000008 (pg_waldump)")
    w = compute_window(_info(B1), SEGS, lambda n: None)
    assert "archive time" in w.intervals[0].latest.source


def _plan(req: Request, facts: DestFacts | None = None):  # type: ignore[no-untyped-def]
    w = compute_window(_info(B1, B2), SEGS, _commit)
    return make_plan(req, _info(B1, B2), w, facts or DestFacts(False, True, 10**12), [])


def _req(t: datetime | None, **kw: object) -> Request:
    return Request(target_type="time" if t else "immediate", target_time=t, dest=Path("/r"), port=5499,
                   **kw)  # type: ignore[arg-type]


def test_plan_picks_the_newest_backup_that_ended_before_the_target() -> None:
    p = _plan(_req(T0 + timedelta(minutes=8)))
    assert not p.refused and p.backup is not None and p.backup.label == "B2" and "ended before" in p.why
    assert p.wal_from == "000000010000000000000007"
    p = _plan(_req(T0 + timedelta(minutes=3)))
    assert p.backup is not None and p.backup.label == "B1"
    assert p.wal_from == "000000010000000000000002" and p.wal_to == "000000010000000000000004"


def test_plan_refuses_outside_the_window_with_the_window_in_the_message() -> None:
    early = _plan(_req(T0 - timedelta(hours=1)))
    assert early.refused and "before the earliest recoverable time" in early.refusals()[0]
    assert "window: timeline 1:" in early.refusals()[0]
    late = _plan(_req(LAST_COMMIT + timedelta(seconds=1)))
    assert late.refused and "after the latest recoverable time" in late.refusals()[0]
    assert _plan(_req(LAST_COMMIT)).refused is False  # inclusive


def test_forced_set_that_ended_after_the_target_is_refused() -> None:
    inside = _plan(_req(T0 + timedelta(seconds=30), set_label="B1"))  # B1 runs 10:00..10:01
    assert inside.refused and "ended at" in inside.refusals()[0] and "after the target" in inside.refusals()[0]
    forced = _plan(_req(T0 + timedelta(minutes=8), set_label="B1"))
    assert not forced.refused and forced.backup is not None and forced.backup.label == "B1"
    assert forced.why == "asked for with --set"


def test_target_during_a_later_backup_uses_the_earlier_one_and_says_why() -> None:
    p = _plan(_req(T0 + timedelta(minutes=6, seconds=30)))  # B2 runs 10:06..10:07
    assert p.backup is not None and p.backup.label == "B1"
    assert not [v for v in p.verdicts if v.level == WARN]
    assert any("inside backup B2" in v.message and "older one is used" in v.message for v in p.verdicts)
    after = _plan(_req(T0 + timedelta(minutes=8)))
    assert not any("inside backup" in v.message for v in after.verdicts)


def test_plan_destination_verdicts() -> None:
    full = _plan(_req(T0 + timedelta(minutes=8)), DestFacts(True, False, 10**12))
    assert full.refused and "not empty" in full.refusals()[0]
    small = _plan(_req(T0 + timedelta(minutes=8)), DestFacts(False, True, 100))
    assert small.refused and "not enough space" in small.refusals()[0] and "100 B free" in small.refusals()[0]
    port = _plan(_req(T0 + timedelta(minutes=8)), DestFacts(False, True, 10**12, port_in_use=True))
    assert port.refused and "port 5499 is in use" in port.refusals()[0]



def test_a_copy_beside_production_leaves_the_floor_free() -> None:
    """Enough room for the copy alone is not enough when the scratch area shares production's filesystem."""
    roomy = _plan(_req(T0 + timedelta(minutes=8)), DestFacts(False, True, 10**9))
    assert not roomy.refused
    floored = _plan(_req(T0 + timedelta(minutes=8)), DestFacts(False, True, 10**9, floor_bytes=10**9))
    why = floored.refusals()[0] if floored.refused else ""
    assert "must stay free" in why and "drill.space_floor" in why
    running = _plan(Request(target_type="immediate", dest=Path("/data"), in_place=True),
                    DestFacts(True, False, 10**12, stop=StopEvidence(0, 4242, True, None, "in production")))
    assert running.refused and "stop it first" in running.refusals()[0]
    assert [v.level for v in running.verdicts].count(REFUSE) == 1


def test_restore_argv_side_restore() -> None:
    base = pb.Base("pgbackrest", "/etc/pgbackrest.conf", "main")
    argv = pb.restore_cmd(base, pb.RestoreOptions(
        pg1_path="/r", set="B1", target_type="time", target="2026-11-25 10:03:00.000000+00", port=5499,
        lock_path="/s/lock"))
    assert argv == ["pgbackrest", "--config=/etc/pgbackrest.conf", "--stanza=main", "--log-level-console=detail",
                    "--pg1-path=/r", "--type=time", "--target-action=promote", "--set=B1",
                    "--target=2026-11-25 10:03:00.000000+00", "--archive-mode=off", "--recovery-option=port=5499",
                    "--lock-path=/s/lock", "restore"]
    with pytest.raises(ValueError, match="needs a target"):
        pb.restore_cmd(base, pb.RestoreOptions(pg1_path="/r", target_type="time"))
    with pytest.raises(ValueError, match="takes no"):
        pb.restore_cmd(base, pb.RestoreOptions(pg1_path="/r", target_type="immediate", target="x"))


def test_last_commit_from_waldump_output() -> None:
    out = ("rmgr: Heap ... desc: INSERT off 3\n"
           "rmgr: Transaction len (rec/tot): 34/34, tx: 724, lsn: 0/03017E68, desc: COMMIT 2026-11-25 19:40:43.797486 UTC\n"  # noqa: E501
           "rmgr: Transaction len (rec/tot): 34/34, tx: 725, lsn: 0/03019918, desc: COMMIT 2026-11-25 19:40:43.856639 UTC\n"  # noqa: E501
           "rmgr: XLOG desc: SWITCH\n")
    assert last_commit(out) == Commit(datetime(2026, 11, 25, 19, 40, 43, 856639, tzinfo=UTC), 725, "0/03019918")
    assert last_commit("rmgr: XLOG desc: SWITCH\n") is None
    ddl = ("rmgr: Transaction len (rec/tot): 530/530, tx: 731, lsn: 0/0A0001C8, desc: COMMIT 2026-11-25 20:12:30.5 UTC;"
           " inval msgs: catcache 7 catcache 6 relcache 16390\n")
    got = last_commit(ddl)
    assert got is not None and (got.time, got.xid) == (datetime(2026, 11, 25, 20, 12, 30, 500000, tzinfo=UTC), 731)


def test_repo_ls_parsing_keeps_only_segments() -> None:
    text = ('{".":{"type":"path"},"15-1/0000000100000000/000000010000000000000001-78bc.zst":{"type":"file","size":5,'
            '"time":1795635639},"15-1/0000000100000000/000000010000000000000002.00000028.backup":{"type":"file",'
            '"size":370,"time":1795635643},"archive.info":{"type":"file","size":253,"time":1795635643}}')
    rows = pb.parse_repo_ls(text)
    assert [(r.segment.name, r.size) for r in rows] == [("000000010000000000000001", 5)]


def test_the_prefetching_restore_command_is_pgbackrests_own_plus_the_asynchronous_options() -> None:
    base = pb.Base("pgbackrest", "/etc/pgbackrest/pgbackrest.conf", "main")
    got = archive_get_command(base, "/srv/copy", "/var/lib/opsd/restores/lock",
                              Prefetch("/var/lib/opsd/restores/spool/ab12", 1024**3, 4))
    assert got == ("pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=main --pg1-path=/srv/copy "
                   "--archive-async --spool-path=/var/lib/opsd/restores/spool/ab12 --archive-get-queue-max=1073741824 "
                   "--process-max=4 --lock-path=/var/lib/opsd/restores/lock archive-get %f \"%p\"")
    assert "--lock-path" not in archive_get_command(base, "/srv/copy", None, Prefetch("/s", 16 * 1024**2, 1))
    # restore_command is one quoted line in postgresql.auto.conf, split by the shell: no path may break it
    for bad in ("/srv/it's", "/srv/a b", "/srv/100%", "/srv/a\nrestore_command='x'"):
        with pytest.raises(ValueError, match="cannot hold"):
            archive_get_command(base, bad, None, Prefetch("/s", 16 * 1024**2, 1))
    with pytest.raises(ValueError, match="at least one segment"):
        archive_get_command(base, "/srv/copy", None, Prefetch("/s", 1024, 1))
