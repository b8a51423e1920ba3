"""core/urls: a URL is shown as scheme://host:port, whatever its path, query, fragment and user info look like
(issue 33, section 4); user info is split off for HTTP Basic; a URL that cannot work is refused in one line."""

from __future__ import annotations

import pytest

from opsd.adapters.alert_channels import parse_headers
from opsd.core.urls import safe_url, scrub, scrub_urls, split_credentials, url_problem
from opsd.errors import OpsdError

# (URL, what must be shown, the private pieces that must not): tokens of every shape, long and short
SHAPES = [
    ("https://hooks.example.org/hook/abcdefghijkl", "https://hooks.example.org", ["abcdefghijkl", "hook/"]),
    ("https://hooks.example.org/a/xy", "https://hooks.example.org", ["/a/xy"]),
    ("https://opsd:TOKEN@alerts.example.org/hook", "https://alerts.example.org", ["opsd", "TOKEN", "org/"]),
    ("https://tok@alerts.example.org", "https://alerts.example.org", ["tok@"]),
    ("https://alerts.example.org:8443/h?token=qwerty&x=1", "https://alerts.example.org:8443", ["qwerty", "?"]),
    ("https://alerts.example.org/h#frag-secret", "https://alerts.example.org", ["frag-secret", "#"]),
    ("http://u%40x:p%2Fw@[::1]:9/k", "http://[::1]:9", ["u%40x", "p%2Fw", "/k"]),
    ("https://hooks.slack.com/services/T024BE7LD/B01234567/abcdefghijklmnopqrstuvwx", "https://hooks.slack.com",
     ["T024BE7LD", "services"]),
    ("http://127.0.0.1:8080/alert", "http://127.0.0.1:8080", ["alert"]),
]


@pytest.mark.parametrize(("url", "shown", "private"), SHAPES)
def test_safe_url_shows_scheme_host_and_port_only(url: str, shown: str, private: list[str]) -> None:
    assert safe_url(url) == shown
    for piece in private:
        assert piece not in safe_url(url)


@pytest.mark.parametrize("url", ["hooks.example/T0KEN", "T0KEN:abc", "https://", "http://h:99999/T0KEN", ""])
def test_what_is_not_a_url_with_a_host_shows_nothing_of_it(url: str) -> None:
    assert "T0KEN" not in safe_url(url) and safe_url(url).startswith("<")


def test_scrub_removes_every_private_piece_from_a_library_message() -> None:
    url = "https://opsd:S3cr3tPw@alerts.example.org/hook/abcdefghijkl?sig=XyZ1#frag"
    msg = f"<urlopen error {url}> nonnumeric port: 'S3cr3tPw@alerts' path /hook/abcdefghijkl sig=XyZ1"
    out = scrub(msg, url)
    for secret in ("S3cr3tPw", "abcdefghijkl", "XyZ1", "opsd:"):
        assert secret not in out, secret
    text = 'Could not connect to the endpoint URL: "https://key:pw@s3.example:9000/bucket/k?X-Amz-Signature=abc"'
    assert scrub_urls(text) == 'Could not connect to the endpoint URL: "https://s3.example:9000"'


def test_user_info_is_split_off_for_basic_authentication() -> None:
    assert split_credentials("https://opsd:TO%40KEN@alerts.example.org:8443/hook?a=1#f") == (
        "https://alerts.example.org:8443/hook?a=1", "opsd", "TO@KEN")
    assert split_credentials("https://TOKEN@h/x") == ("https://h/x", "TOKEN", "")
    assert split_credentials("https://h/x") == ("https://h/x", None, None)


def test_user_info_is_accepted_and_what_cannot_work_is_refused_with_the_fix() -> None:
    assert url_problem("https://opsd:TOKEN@alerts.example.org/hook") is None
    unencoded = url_problem("https://opsd:TO/KEN@alerts.example.org/hook")  # '/' ends the host: port 'TO'
    assert unencoded is not None and "%2F" in unencoded and "TO" not in unencoded.replace("TOKEN", "")
    colon = url_problem("https://a%3Ab:pw@alerts.example.org/hook")
    assert colon is not None and "webhook_headers_file" in colon and "\n" not in colon


def test_a_headers_file_is_parsed_and_its_errors_never_repeat_a_value() -> None:
    assert parse_headers("# gateway\nAuthorization: Bearer abc.def\n\nX-Api-Key:  k1\n") == {
        "Authorization": "Bearer abc.def", "X-Api-Key": "k1"}
    for bad in ("Bearer s3cretvalue", "Bad Name: s3cretvalue", "X-Key:", "Host: s3cretvalue"):
        with pytest.raises(OpsdError) as e:
            parse_headers(bad)
        assert "s3cretvalue" not in str(e.value) and "line 1" in str(e.value)
