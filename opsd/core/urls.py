"""URLs that may carry secrets (webhook tokens in the path, ``user:password@``): checked and shown safely."""

from __future__ import annotations

from urllib.parse import urlsplit


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook (None: it can). The answer never contains the URL."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "it contains spaces, tabs or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "it cannot be parsed (bad port or brackets)"
    if parts.scheme not in ("http", "https"):
        return "the scheme must be http or https"
    if not parts.hostname:
        return "it names no host"
    return None


def _tokenish(segment: str) -> bool:
    """A path segment that looks like a key: long, or letters and digits mixed (Slack's T024BE7LD)."""
    mixed = any(c.isdigit() for c in segment) and any(c.isalpha() for c in segment)
    return len(segment) >= 20 or (len(segment) >= 8 and mixed)


def safe_url(url: str) -> str:
    """``url`` to show: scheme, host and port; user info, path tokens and the query masked."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    path = "/".join("***" if _tokenish(seg) else seg for seg in parts.path.split("/"))
    user = "***@" if parts.username or parts.password else ""
    query = "?***" if parts.query else ""
    return f"{parts.scheme}://{user}{host}{port}{path}{query}"
