"""Peer authentication as run_as: only the connecting thread changes its effective uid."""

from __future__ import annotations

import os
import pwd
import threading

import pytest

from opsd.db.connection import identity


@pytest.mark.skipif(os.geteuid() != 0, reason="switching identity needs root")
def test_identity_switches_only_the_connecting_thread() -> None:
    postgres = pwd.getpwnam("postgres").pw_uid
    inside: list[int] = []
    others: list[int] = []
    entered, checked = threading.Event(), threading.Event()

    def connecting() -> None:
        with identity("postgres", "/var/run/postgresql"):
            inside.append(os.geteuid())
            entered.set()
            checked.wait(10)

    def other() -> None:
        entered.wait(10)
        others.append(os.geteuid())
        checked.set()

    threads = [threading.Thread(target=connecting), threading.Thread(target=other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert inside == [postgres] and others == [0] and os.geteuid() == 0


def test_no_switch_over_tcp_or_for_root() -> None:
    me = os.geteuid()
    with identity("postgres", "127.0.0.1"):
        assert os.geteuid() == me
    with identity("root", "/var/run/postgresql"):
        assert os.geteuid() == me
