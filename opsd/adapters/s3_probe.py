"""Probe the pgBackRest repository's S3 endpoint directly: a few cheap listings of the stanza's backup folder,
each tried once (no retries), timed, and their errors counted by HTTP status and S3 error code.

pgBackRest retries throttling and 5xx answers for up to ``io-timeout``: a flaky endpoint makes archiving and
backups slow long before anything fails. This probe is how ``opsd check`` sees that early. It only reads."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from opsd.adapters.pgbackrest_conf import option
from opsd.adapters.s3 import flag, repo_endpoint
from opsd.core.records.jobs import EndpointProbe
from opsd.core.urls import safe_url
from opsd.settings import Settings

DEFAULT_REPO_PATH = "/var/lib/pgbackrest"
BUDGET = 20.0  # seconds: a hung endpoint ends the probe early, with the requests made so far


def is_s3(s: Settings) -> bool:
    return (option(s.pgbackrest.config, s.pgbackrest.stanza, "repo1-type") or "posix").strip() == "s3"


def probe(s: Settings, requests: int, clock: Callable[[], float] = time.monotonic) -> EndpointProbe:
    conf, stanza = s.pgbackrest.config, s.pgbackrest.stanza
    endpoint = repo_endpoint(conf, stanza) or ""
    bucket = option(conf, stanza, "repo1-s3-bucket") or ""
    path = (option(conf, stanza, "repo1-path") or DEFAULT_REPO_PATH).strip("/")
    prefix = "/".join(p for p in (path, "backup", stanza) if p) + "/"
    ca = option(conf, stanza, "repo1-storage-ca-file")
    c = boto3.client(
        "s3", endpoint_url=endpoint or None, region_name=option(conf, stanza, "repo1-s3-region") or "us-east-1",
        aws_access_key_id=option(conf, stanza, "repo1-s3-key"),
        aws_secret_access_key=option(conf, stanza, "repo1-s3-key-secret"),
        verify=(ca or True) if flag(option(conf, stanza, "repo1-storage-verify-tls"), True) else False,
        config=Config(s3={"addressing_style": "path" if option(conf, stanza, "repo1-s3-uri-style") == "path"
                          else "auto"},
                      retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=10))
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    start = clock()
    while len(latencies) < requests and clock() - start < BUDGET:
        t = clock()
        errors.update(_one(c, bucket, prefix))
        latencies.append(clock() - t)
    return EndpointProbe(endpoint=safe_url(endpoint) if endpoint else f"s3 bucket {bucket}", requests=len(latencies),
                         failed=sum(errors.values()), errors=dict(errors),
                         median_latency=statistics.median(latencies) if latencies else None,
                         max_latency=max(latencies, default=None))


def _one(c: object, bucket: str, prefix: str) -> list[str]:
    """The error of one listing, as "<status> <code>" or the exception's name; [] when it worked."""
    try:
        c.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)  # type: ignore[attr-defined]
    except ClientError as e:
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        return [f"{status} {e.response.get('Error', {}).get('Code', 'error')}"]
    except BotoCoreError as e:
        return [type(e).__name__]
    return []


