"""Alert delivery: a JSON POST to a webhook (urllib, no extra dependency) and a command reading the alert as
JSON on stdin (started through the runner, as opsd's own user, with its timeout and cancellation). Each call
is one attempt; retries are the caller's. The webhook URL may carry a token (user info, path, query): errors
name its scheme, host and port only. User info is sent as HTTP Basic authentication, never as part of the
host; extra headers (a bearer token, an API key) come from a secret file or systemd credential."""

from __future__ import annotations

import base64
import http.client
import json
import re
import shlex
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from opsd.adapters import secrets
from opsd.adapters.runner import Runner
from opsd.core.urls import safe_url, scrub, split_credentials, url_problem
from opsd.errors import CommandError, OpsdError
from opsd.log import register_secret
from opsd.settings import AlertsSection

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_RESERVED_HEADERS = frozenset({"host", "content-length", "content-type", "transfer-encoding", "connection"})
_HEADERS_KEY = "alerts.webhook_headers_file"


def webhook_url(a: AlertsSection) -> str:
    """alerts.webhook_url, else the file alerts.webhook_url_file names, else the systemd credential webhook-url."""
    url = a.webhook or secrets.secret(secrets.WEBHOOK_URL, file=a.webhook_url_file,
                                      key="alerts.webhook_url_file") or ""
    register_secret(url)  # the whole URL is masked in any log line that would carry it
    return url


def parse_headers(text: str) -> dict[str, str]:
    """``Name: value`` a line (blank lines and ``#`` comments skipped). Errors name the line, never a value."""
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not _HEADER_NAME.match(name) or not value:
            raise OpsdError(f"{_HEADERS_KEY}: line {n} is not 'Name: value' (the line is not shown: it may hold a "
                            "token)", hint="for a bearer token: 'Authorization: Bearer <token>'")
        if name.lower() in _RESERVED_HEADERS:
            raise OpsdError(f"{_HEADERS_KEY}: line {n} sets {name}, which opsd sets itself")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise OpsdError(f"{_HEADERS_KEY}: line {n} holds control characters")
        out[name] = value
    return out


def webhook_headers(a: AlertsSection) -> dict[str, str]:
    """The extra headers: the systemd credential webhook-headers, else alerts.webhook_headers_file; each value
    (and the token after 'Bearer ') is masked in every log line from now on."""
    text = secrets.secret(secrets.WEBHOOK_HEADERS, file=a.webhook_headers_file, key=_HEADERS_KEY, private=True)
    headers = parse_headers(text or "")
    for value in headers.values():
        _mask(value)
        _mask(value.rpartition(" ")[2])
    return headers


def problems(a: AlertsSection) -> list[str]:
    """What ``opsd config check`` says of the alert channels' secrets: a webhook URL from its file or
    credential that cannot work, a headers file that does not parse or is readable by others. One line each,
    never a value."""
    try:
        url = webhook_url(a)
        headers = webhook_headers(a)
    except OpsdError as e:
        return [str(e)]
    out = []
    problem = url_problem(url) if url else None
    if problem:
        out.append(f"alerts.webhook_url (from its file or credential): not a usable webhook URL: {problem}")
    elif url and split_credentials(url).user is not None and any(k.lower() == "authorization" for k in headers):
        out.append("alerts: the webhook URL carries user info and the headers file an Authorization header: "
                   "keep one of them")
    return out


def _mask(value: str | None) -> None:
    """Masked in every log line from now on; not a short word ('prod', 'opsd') that would mask ordinary text."""
    if value and len(value) >= 6:
        register_secret(value)


def _request(url: str, body: dict[str, Any], headers: Mapping[str, str]) -> urllib.request.Request:
    """The POST for ``url``: its user info, if any, as an Authorization: Basic header, removed from the URL."""
    target = split_credentials(url)
    all_headers = {"Content-Type": "application/json", "User-Agent": "opsd", **headers}
    if target.user is not None:
        if any(k.lower() == "authorization" for k in headers):
            raise OpsdError(f"webhook at {safe_url(url)}: the URL holds user info and {_HEADERS_KEY} an "
                            "Authorization header; keep one")
        token = base64.b64encode(f"{target.user}:{target.password or ''}".encode()).decode()
        _mask(target.password)
        _mask(token)
        all_headers["Authorization"] = f"Basic {token}"
    return urllib.request.Request(  # noqa: S310 (scheme checked by url_problem)
        target.url, data=json.dumps(body, default=str).encode(), method="POST", headers=all_headers)


def webhook(url: str, body: dict[str, Any], timeout: float, headers: Mapping[str, str] | None = None) -> None:
    host = safe_url(url)  # errors name this: scheme, host and port
    problem = url_problem(url)
    if problem:
        raise OpsdError(f"alerts.webhook_url is not usable: {problem}")
    req = _request(url, body, headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (an operator-configured URL)
            if resp.status >= 300:
                raise OpsdError(f"webhook at {host} answered {resp.status}")
    except urllib.error.HTTPError as e:
        hint = " (authentication refused: check the URL's user info or the headers file)" \
            if e.code in (401, 403) else ""
        raise OpsdError(f"webhook at {host} answered {e.code}{hint}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = scrub(str(getattr(e, "reason", e)), url)
        raise OpsdError(f"webhook at {host} unreachable: {reason}") from None
    except (ValueError, http.client.HTTPException) as e:  # InvalidURL and friends: their text holds the URL
        raise OpsdError(f"webhook at {host} refused the request: {type(e).__name__}") from None


def command(runner: Runner, cmd: str, body: dict[str, Any], timeout: float) -> None:
    argv = shlex.split(cmd)
    try:
        res = runner.run(argv, timeout=timeout, as_user=False, stdin=json.dumps(body, default=str),
                         log_output=False)
    except CommandError as e:
        raise OpsdError(f"alert command {argv[0]} failed: {e}") from None
    if res.returncode != 0:
        last = (res.stderr.strip() or res.stdout.strip() or "no output").splitlines()[-1][:200]
        raise OpsdError(f"alert command {argv[0]} exited {res.returncode}: {last}")
