"""Alert delivery: a JSON POST to a webhook (urllib, no extra dependency) and a command reading the alert as
JSON on stdin (started through the runner, as opsd's own user, with its timeout and cancellation). Each call
is one attempt; retries are the caller's. The webhook URL may carry a token, so errors name its host only."""

from __future__ import annotations

import http.client
import json
import shlex
import urllib.error
import urllib.request
from typing import Any

from opsd.adapters import secrets
from opsd.adapters.runner import Runner
from opsd.core.urls import safe_url, url_problem
from opsd.errors import CommandError, OpsdError
from opsd.log import register_secret
from opsd.settings import AlertsSection


def webhook_url(a: AlertsSection) -> str:
    """alerts.webhook_url, else the file alerts.webhook_url_file names, else the systemd credential webhook-url."""
    url = a.webhook or secrets.secret(secrets.WEBHOOK_URL, file=a.webhook_url_file,
                                      key="alerts.webhook_url_file") or ""
    register_secret(url)  # the whole URL is masked in any log line that would carry it
    return url


def webhook(url: str, body: dict[str, Any], timeout: float) -> None:
    host = safe_url(url)  # errors name this, never user info or path tokens
    problem = url_problem(url)
    if problem:
        raise OpsdError(f"alerts.webhook_url is not usable: {problem}")
    req = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, data=json.dumps(body, default=str).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "opsd"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (an operator-configured URL)
            if resp.status >= 300:
                raise OpsdError(f"webhook at {host} answered {resp.status}")
    except urllib.error.HTTPError as e:
        raise OpsdError(f"webhook at {host} answered {e.code}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = str(getattr(e, "reason", e)).replace(url, host)
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
