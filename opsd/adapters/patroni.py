"""Patroni's REST API: ``GET /patroni`` on this node, read only. Plain urllib: one small JSON document."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from opsd.core.role import Member, PatroniState
from opsd.core.urls import safe_url
from opsd.errors import OpsdError


def _get(url: str, path: str, timeout: float, ca_file: Path | None) -> object:
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None) if url.startswith("https") \
        else None
    with urllib.request.urlopen(url.rstrip("/") + path, timeout=timeout, context=context) as resp:  # noqa: S310 (http(s) only, validated)
        return json.loads(resp.read(1_000_000))


def node_state(url: str, timeout: float, ca_file: Path | None = None) -> PatroniState:
    """This node as Patroni sees it. Raises OpsdError (one line, the URL masked) when Patroni does not answer."""
    where = safe_url(url)
    try:
        data = _get(url, "/patroni", timeout, ca_file)
    except urllib.error.HTTPError as e:  # /patroni answers 200 when Patroni runs; 503 while it cannot decide
        data = _json(e.read(1_000_000))
        if not data:
            raise OpsdError(f"Patroni at {where} answered HTTP {e.code}") from None
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise OpsdError(f"Patroni at {where} did not answer: {reason}") from None
    if not isinstance(data, dict):
        raise OpsdError(f"Patroni at {where} answered something that is not its status")
    timeline = data.get("timeline")
    me = data.get("patroni")
    return PatroniState(role=str(data.get("role") or "unknown"), state=str(data.get("state") or "unknown"),
                        paused=bool(data.get("pause")), timeline=timeline if isinstance(timeline, int) else None,
                        name=str(me.get("name") or "") if isinstance(me, dict) else "")


def _json(raw: bytes) -> dict[str, object] | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def cluster(url: str, timeout: float, ca_file: Path | None = None) -> list[Member] | None:
    """The cluster's members as Patroni's DCS knows them (``GET /cluster``); None when Patroni does not answer."""
    try:
        data = _get(url, "/cluster", timeout, ca_file)
    except (OSError, ValueError):
        return None
    raw = data.get("members") if isinstance(data, dict) else None
    return [Member(str(m.get("name", "?")), str(m.get("role", "?")), str(m.get("state", "?")))
            for m in (raw if isinstance(raw, list) else []) if isinstance(m, dict)]

