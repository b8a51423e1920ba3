"""URLs that may carry secrets (webhook tokens in the path or the query, ``user:password@``): checked, split
for sending, and shown safely: scheme, host and port only, whatever the rest looks like."""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")
_ENCODE_HINT = "a '/', '?', '#' or '@' in the user name or password must be written %2F, %3F, %23 or %40"


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook (None: it can), with the fix. The answer never contains the URL."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "it contains spaces, tabs or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        hint = f"; {_ENCODE_HINT}" if "@" in url else ""
        return f"it cannot be parsed (bad port or brackets{hint})"
    if parts.scheme not in ("http", "https"):
        return "the scheme must be http or https"
    if not parts.hostname:
        return "it names no host"
    if parts.username is not None and ":" in unquote(parts.username):
        return "the user name holds ':', which HTTP Basic authentication cannot carry; put the credentials in " \
               "alerts.webhook_headers_file instead"
    return None


class SplitURL(NamedTuple):
    """A URL to send to: without its user info, which travels as HTTP Basic credentials (None: none)."""

    url: str
    user: str | None
    password: str | None


def split_credentials(url: str) -> SplitURL:
    """``https://user:pw@host/p`` -> (``https://host/p``, user, pw), percent-decoded; the fragment dropped."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    if parts.username is None and parts.password is None:
        return SplitURL(bare, None, None)
    return SplitURL(bare, unquote(parts.username or ""), unquote(parts.password or ""))


def safe_url(url: str) -> str:
    """``url`` to show in a log line, an error, a metric or a report: ``scheme://host:port``, nothing else."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    if not host or not parts.scheme:
        return "<URL without a host>"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}"


def scrub(text: str, url: str) -> str:
    """``text`` (a library's error message) with every private piece of ``url`` replaced by what safe_url shows:
    the whole URL, its user info, path, query and fragment, raw and percent-decoded."""
    shown = safe_url(url)
    text = text.replace(url, shown)
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    userinfo = parts.netloc.rpartition("@")[0]
    pieces = {userinfo, parts.path, parts.query, parts.fragment, parts.username or "", parts.password or ""}
    pieces |= {unquote(p) for p in pieces}
    for piece in sorted(pieces, key=len, reverse=True):
        if len(piece) >= 2 and piece != "/":
            text = text.replace(piece, "***")
    return text


def scrub_urls(text: str) -> str:
    """Every ``scheme://...`` in ``text`` (a library's error message) shown as safe_url shows it."""
    return _URL_IN_TEXT.sub(lambda m: safe_url(m.group(0)), text)
