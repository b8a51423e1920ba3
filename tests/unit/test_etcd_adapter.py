"""The etcd adapter against a fake v3 JSON gateway in this process (the answers' shapes are etcd 3.4.23's, as
tests/integration/test_etcd.py sees them): the wire encoding, failover and its memory, the bound of a call, the
sorting of failures into Unavailable and Refused, re-authentication, and secrets kept out of every message."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from opsd.adapters.etcd import KV, Etcd, EtcdRefused, EtcdUnavailable, range_end
from tests.unit.receiver import free_port

HANG = object()  # the fake holds the request without answering (a member without quorum)
Answer = tuple[int, Any] | tuple[int, Any, float] | object
Script = Callable[[str, dict[str, Any], str], Answer]  # (path, body, Authorization header) -> answer
HEADER = {"cluster_id": "1", "member_id": "17829842378585436105", "revision": "41", "raft_term": "2"}
OK: Answer = (200, {"header": HEADER})
PASSWORD = "pw-Secr3t-e7"


def b64(b: bytes | str) -> str:
    return base64.b64encode(b.encode() if isinstance(b, str) else b).decode()


def err(status: int, code: int, msg: str) -> Answer:
    return status, {"error": msg, "message": msg, "code": code}


class Fake:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.seen: list[tuple[str, dict[str, Any], str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                path = self.path.removeprefix("/v3/")
                auth = self.headers.get("Authorization", "")
                fake.seen.append((path, body, auth))
                answer = fake.script(path, body, auth)
                if answer is HANG:
                    time.sleep(1.0)
                    return
                assert isinstance(answer, tuple)
                status, payload, *delay = answer  # (status, payload[, seconds before answering])
                time.sleep(delay[0] if delay else 0)
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"

    def paths(self) -> list[str]:
        return [p for p, _, _ in self.seen]


@contextmanager
def fakes(*scripts: Script) -> Iterator[list[Fake]]:
    out = [Fake(s) for s in scripts]
    for f in out:
        threading.Thread(target=f.srv.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield out
    finally:
        for f in out:
            f.srv.shutdown()
            f.srv.server_close()


def always(answer: Answer) -> Script:
    return lambda _p, _b, _a: answer


DEAD = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused


# --------------------------------------------------------------------------- the wire
def test_keys_and_values_go_base64_and_int64_strings_come_back_as_ints() -> None:
    kv = {"key": b64("/f/é"), "value": b64(b"\xff\x00bin"), "create_revision": "9007199254740993",
          "mod_revision": "12", "version": "1", "lease": "7587862072711215406"}
    with fakes(always((200, {"header": HEADER, "kvs": [kv, {**kv, "value": ""}], "count": "2"}))) as [f]:
        e = Etcd([f.url], timeout=1)
        assert e.get("/f/é") == KV("/f/é", b"\xff\x00bin", 9007199254740993, 12, 7587862072711215406)
        assert f.seen[-1][1] == {"key": b64("/f/é")}
        got = e.range("/f/é")
        assert got[1] == KV("/f/é", b"", 9007199254740993, 12, 7587862072711215406)  # an empty value is absent
        assert f.seen[-1][1]["key"] == b64("/f/é") and f.seen[-1][1]["range_end"] == b64(b"/f/\xc3\xaa")
        assert "serializable" not in f.seen[-1][1]
        e.range("/f/", serializable=True)
        assert f.seen[-1][1]["serializable"] is True


def test_put_sends_bytes_and_lease_and_returns_the_header_revision() -> None:
    with fakes(always(OK)) as [f]:
        assert Etcd([f.url], timeout=1).put("/k", b"\x80\xfe", lease=7587862072711215406) == 41
    assert f.seen[0] == ("kv/put", {"key": b64("/k"), "value": b64(b"\x80\xfe"), "lease": "7587862072711215406"},
                         "")


def test_range_end_is_computed_on_bytes() -> None:
    assert range_end("/a/") == b"/a0"
    assert range_end("é") == b"\xc3\xaa"  # not the text "Ãª" that latin-1 decoding would give
    assert range_end("") == b"\0"  # every key


def test_leases_ttl_absent_is_zero_and_a_revoked_lease_is_not_an_error() -> None:
    def script(path: str, body: dict[str, Any], _a: str) -> Answer:
        if path == "lease/grant":
            return 200, {"header": HEADER, "ID": "7587862072711215406", "TTL": str(body["TTL"])}
        if path == "lease/keepalive" and body["ID"] == "1":
            return 200, {"result": {"header": HEADER, "ID": "1", "TTL": "29"}}
        if path == "lease/keepalive":
            return 200, {"result": {"header": HEADER, "ID": body["ID"]}}  # expired: no TTL at all
        return err(404, 5, "etcdserver: requested lease not found")

    with fakes(script) as [f]:
        e = Etcd([f.url], timeout=1)
        assert e.grant(30) == 7587862072711215406 and f.seen[0][1] == {"TTL": "30"}
        assert e.keepalive(1) == 29
        assert e.keepalive(2) == 0
        e.revoke(2)
        with pytest.raises(EtcdRefused, match="lease not found"):  # not found elsewhere is a refusal
            e.put("/k", b"v", lease=2)


def test_create_and_put_if_held_are_transactions_on_the_create_revision() -> None:
    def script(path: str, body: dict[str, Any], _a: str) -> Answer:
        cmp = body["compare"][0]
        held = cmp.get("create_revision") in ("0", "40")
        return 200, {"header": HEADER, **({"succeeded": True} if held else {})}

    with fakes(script) as [f]:
        e = Etcd([f.url], timeout=1)
        assert e.create("/c", b"me", lease=5) == 41
        assert f.seen[-1][1] == {
            "compare": [{"key": b64("/c"), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            "success": [{"request_put": {"key": b64("/c"), "value": b64("me"), "lease": "5"}}],
            "failure": [{"request_range": {"key": b64("/c")}}]}
        assert e.put_if_held("/c", 40, puts=[("/r", b"x")], deletes=["/c"]) is True
        assert f.seen[-1][1]["success"] == [{"request_put": {"key": b64("/r"), "value": b64("x")}},
                                            {"request_delete_range": {"key": b64("/c")}}]
        assert e.put_if_held("/c", 39, puts=[("/r", b"x")]) is False  # "succeeded" absent: false


def test_create_that_existed_is_none_unless_a_lost_answer_was_ours() -> None:
    mine = {"key": b64("/c"), "value": b64("me"), "create_revision": "40", "mod_revision": "40", "lease": "5"}
    existed = (200, {"header": HEADER, "responses": [{"response_range": {"header": HEADER, "kvs": [mine]}}]})
    with fakes(always(HANG), always(existed)) as [slow, f]:
        assert Etcd([DEAD, f.url], timeout=0.3).create("/c", b"me", lease=5) is None  # never reached: not ours
        assert Etcd([f.url], timeout=0.3).create("/c", b"me", lease=6) is None  # another lease's key
        # the first attempt reached an etcd that applied it and its answer was lost: the key is ours
        assert Etcd([slow.url, f.url], timeout=0.3).create("/c", b"me", lease=5) == 40


# --------------------------------------------------------------------------- endpoints, bounds, failures
def test_failover_to_the_second_endpoint_and_remembering_it() -> None:
    with fakes(always(HANG), always(OK)) as [slow, good]:
        e = Etcd([slow.url, good.url], timeout=0.3)
        t0 = time.monotonic()
        assert e.put("/k", b"1") == 41
        assert 0.3 <= time.monotonic() - t0 < 1.0
        t0 = time.monotonic()
        for _ in range(3):
            e.put("/k", b"1")
        assert time.monotonic() - t0 < 0.3  # the hung member is not asked again while the other answers
        assert len(slow.seen) == 1 and len(good.seen) == 4


def test_every_endpoint_hung_ends_within_the_bound_naming_each() -> None:
    with fakes(always(HANG), always(HANG)) as [a, b]:
        e = Etcd([a.url, b.url, DEAD], timeout=0.3)
        assert e.bound == pytest.approx(0.9)
        t0 = time.monotonic()
        with pytest.raises(EtcdUnavailable) as info:
            e.put("/k", b"1")
        assert time.monotonic() - t0 < e.bound + 0.3
    msg = str(info.value)
    assert "\n" not in msg and msg.count("no answer within 0.3s") == 2 and "Connection refused" in msg
    assert a.url in msg and b.url in msg and DEAD in msg


def test_authentication_counts_in_the_bound() -> None:
    def script(path: str, _b: dict[str, Any], _a: str) -> Answer:
        return (200, {"header": HEADER, "token": "t.1"}, 0.25) if path == "auth/authenticate" else HANG

    with fakes(script) as [f]:
        e = Etcd([f.url], timeout=0.4, username="opsd", password=PASSWORD)
        t0 = time.monotonic()
        with pytest.raises(EtcdUnavailable, match=r"no answer within 0\.1s"):  # what was left of the 0.4 s
            e.put("/k", b"1")
        assert time.monotonic() - t0 < e.bound + 0.1


@pytest.mark.parametrize("answer", [
    err(503, 14, "etcdserver: request timed out"),
    err(503, 14, "etcdserver: no leader"),
    err(500, 2, "context deadline exceeded"),  # a lease grant without quorum
    (503, {"error": {"grpc_code": 14, "http_code": 503, "message": "etcdserver: no leader"}}),  # keepalive's shape
    (502, b"<html>bad gateway</html>"),
    (200, b"not json"),
])
def test_answers_another_member_may_not_give_are_unavailable_after_trying_every_one(answer: Answer) -> None:
    with fakes(always(answer), always(answer)) as [a, b]:
        with pytest.raises(EtcdUnavailable):
            Etcd([a.url, b.url], timeout=1).keepalive(1)
        assert len(a.seen) == len(b.seen) == 1


@pytest.mark.parametrize("answer", [
    err(403, 7, "etcdserver: permission denied"),
    err(400, 3, "etcdserver: duplicate key given in txn request"),
    err(412, 9, "etcdserver: authentication is not enabled"),
    (400, b"CommonName of client sending a request against gateway will be ignored and not used as expected\n"),
])
def test_answers_every_member_would_give_are_refused_at_once(answer: Answer) -> None:
    with fakes(always(answer), always(OK)) as [a, b]:
        with pytest.raises(EtcdRefused):
            Etcd([a.url, b.url], timeout=1).put("/k", b"v")
        assert len(a.seen) == 1 and b.seen == []


def test_members_each_endpoints_own_status() -> None:
    leader = (200, {"header": HEADER, "version": "3.4.23", "leader": HEADER["member_id"], "raftIndex": "18"})
    lone = (200, {"header": {**HEADER, "member_id": "5"}, "version": "3.4.23", "raftIndex": "17",
                  "errors": ["etcdserver: no leader"]})
    with fakes(always(leader), always(lone)) as [a, b]:
        health = Etcd([a.url, DEAD, b.url], timeout=1).members()
    assert [(m.reachable, m.leader, m.raft_index, m.error) for m in health] == [
        (True, True, 18, ""), (False, False, 0, health[1].error), (True, False, 17, "etcdserver: no leader")]
    assert "Connection refused" in health[1].error and health[1].endpoint == DEAD


# --------------------------------------------------------------------------- authentication
def tokens(valid: set[str]) -> tuple[Script, list[str]]:
    issued: list[str] = []

    def script(path: str, body: dict[str, Any], auth: str) -> Answer:
        if path == "auth/authenticate":
            if body != {"name": "opsd", "password": PASSWORD}:
                return err(400, 3, "etcdserver: authentication failed, invalid user ID or password")
            issued.append(f"tok{len(issued) + 1}.{len(issued) + 10}")
            return 200, {"header": HEADER, "token": issued[-1]}
        return OK if auth in valid else err(401, 16, "etcdserver: invalid auth token")
    return script, issued


def test_a_token_once_then_again_once_when_etcd_no_longer_knows_it() -> None:
    valid = {"tok1.10"}
    script, issued = tokens(valid)
    with fakes(script) as [f]:
        e = Etcd([f.url], timeout=1, username="opsd", password=PASSWORD)
        e.put("/k", b"1")
        e.put("/k", b"2")
        assert issued == ["tok1.10"] and f.paths() == ["auth/authenticate", "kv/put", "kv/put"]
        valid.clear()
        valid.add("tok2.11")  # the member restarted: simple tokens are gone with it
        e.put("/k", b"3")
        assert issued == ["tok1.10", "tok2.11"] and f.seen[-1][2] == "tok2.11"
        valid.clear()  # no token works: one re-authentication, then a refusal (no loop)
        with pytest.raises(EtcdRefused) as info:
            e.put("/k", b"4")
        assert len(issued) == 3
    assert not any(t in str(info.value) for t in issued) and PASSWORD not in str(info.value)


def test_tokens_are_per_member() -> None:
    script_a, issued_a = tokens({"tok1.10"})
    with fakes(script_a, always(HANG)) as [a, _]:
        script_b, issued_b = tokens({"tok1.10"})
        with fakes(script_b) as [b]:
            e = Etcd([a.url, b.url], timeout=0.3, username="opsd", password=PASSWORD)
            e.put("/k", b"1")
            a.script = always(HANG)  # a is lost; b must get a token of its own, not a's
            e.put("/k", b"2")
            assert issued_b == ["tok1.10"] and b.paths() == ["auth/authenticate", "kv/put"]
    assert issued_a == ["tok1.10"]


def test_a_wrong_password_is_refused_and_no_secret_is_ever_shown() -> None:
    script, _ = tokens(set())
    with fakes(script) as [f]:
        e = Etcd([f.url, DEAD], timeout=1, username="opsd", password="wrong-Pa55word")
        with pytest.raises(EtcdRefused, match="authentication failed") as refused:
            e.get("/k")
        assert len(f.seen) == 1  # not asked again, nor the other endpoint
    down = Etcd([DEAD], timeout=1, username="opsd", password="wrong-Pa55word")
    with pytest.raises(EtcdUnavailable) as unavailable:
        down.get("/k")
    for text in (str(refused.value), str(unavailable.value), repr(e), repr(down), repr(e.__dict__)):
        assert "wrong-Pa55word" not in text and "Pa55" not in text
