"""S3 with boto3: report uploads, and opsd's own files in the repository (repo_files). By default the
pgBackRest repository's endpoint, region, credentials and CA file are reused from the DBA's pgbackrest.conf;
[report] overrides them (credentials then come from the standard AWS environment variables or files). Secrets
are never logged."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from opsd.adapters import secrets
from opsd.adapters.pgbackrest_conf import option
from opsd.core.urls import scrub_urls
from opsd.errors import OpsdError
from opsd.settings import Settings


def flag(v: str | None, default: bool) -> bool:
    return default if v is None else v.strip().lower() in ("y", "yes", "true", "1")


def repo_endpoint(conf: Path, stanza: str) -> str | None:
    host = option(conf, stanza, "repo1-s3-endpoint")
    if not host:
        return None
    port = option(conf, stanza, "repo1-storage-port") or option(conf, stanza, "repo1-s3-port")
    return f"https://{host}" + (f":{port}" if port else "")


def client(s: Settings) -> Any:
    """The [report] uploads' client: the repository's, with [report]'s overrides."""
    conf, stanza, r = s.pgbackrest.config, s.pgbackrest.stanza, s.report
    # systemd credentials win over pgbackrest.conf's keys (and over the AWS environment boto3 would read)
    return repo_client(conf, stanza, endpoint=r.endpoint_url, region=r.region, ca_file=r.ca_file,
                       key=secrets.credential(secrets.REPORT_S3_KEY),
                       secret=secrets.credential(secrets.REPORT_S3_KEY_SECRET))


def repo_client(conf: Path, stanza: str, *, endpoint: str | None = None, region: str | None = None,
                ca_file: Path | None = None, key: str | None = None, secret: str | None = None) -> Any:
    """A client for the repository ``conf`` describes for ``stanza`` (repo1): its endpoint, region, keys, CA
    file, TLS verification and URI style. ``endpoint`` (another endpoint) drops the repository's keys and its
    verify flag; ``key``/``secret`` win over the repository's keys."""
    own = not endpoint
    if not endpoint:
        endpoint = repo_endpoint(conf, stanza)
        key = key or option(conf, stanza, "repo1-s3-key")
        secret = secret or option(conf, stanza, "repo1-s3-key-secret")
    region = region or option(conf, stanza, "repo1-s3-region") or "us-east-1"
    verify: bool | str = True
    ca = ca_file or (Path(p) if (p := option(conf, stanza, "repo1-storage-ca-file")) else None)
    if ca is not None:
        verify = str(ca)
    if not flag(option(conf, stanza, "repo1-storage-verify-tls"), True) and own:
        verify = False
    path_style = (option(conf, stanza, "repo1-s3-uri-style") or "host") == "path"
    return boto3.client(
        "s3", endpoint_url=endpoint or None, region_name=region, aws_access_key_id=key,
        aws_secret_access_key=secret, verify=verify,
        config=Config(s3={"addressing_style": "path" if path_style else "auto"},
                      retries={"max_attempts": 3}, connect_timeout=10, read_timeout=60))


def split_uri(uri: str) -> tuple[str, str]:
    rest = uri.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/")


CONTENT_TYPES = {".md": "text/markdown; charset=utf-8", ".html": "text/html; charset=utf-8",
                 ".json": "application/json", ".svg": "image/svg+xml"}


def host_segment() -> str:
    """This host's name as a key segment: every node of an HA pair publishes, none overwrites another's."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "host"


def upload(s: Settings, files: list[Path]) -> list[str]:
    """Upload ``files`` under ``report.s3_uri``/<host>/; the keys written."""
    bucket, prefix = split_uri(s.report.s3_uri)
    c = client(s)
    keys = []
    for f in files:
        key = "/".join(p for p in (prefix, host_segment(), f.name) if p)
        try:
            c.upload_file(str(f), bucket, key,
                          ExtraArgs={"ContentType": CONTENT_TYPES.get(f.suffix, "application/octet-stream")})
        except (BotoCoreError, ClientError) as e:
            raise OpsdError(f"uploading {f.name} to s3://{bucket}/{key} failed: {scrub_urls(str(e))}",
                            hint="check [report] s3_uri and the endpoint/credentials (pgbackrest.conf or "
                                 "[report] overrides)") from None
        keys.append(f"s3://{bucket}/{key}")
    return keys
