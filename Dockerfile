# opsd for drill hosts, and for CI where a Docker engine exists: PostgreSQL 15 server and client binaries,
# pgBackRest and opsd in a virtualenv, running as the non-root 'postgres' user under tini. See docs/container.md.
#   docker build -t opsd .
#   docker run --rm -v /etc/opsd:/etc/opsd:ro -v /etc/pgbackrest:/etc/pgbackrest:ro -v opsd-state:/var/lib/opsd \
#     opsd drill run --target latest
# Release builds pin the base image by digest (this build machine cannot reach a registry to read it):
#   docker build --build-arg BASE=debian:12-slim@sha256:<digest of 'docker buildx imagetools inspect debian:12-slim'> .
# Without a registry, any Debian 12 root imported locally serves as the base (the tests import their debootstrapped
# root: tar -C ROOT -c . | docker import - opsd-base:bookworm; docker build --network host --build-arg BASE=...).
ARG BASE=debian:12-slim
FROM ${BASE}

ARG DEBIAN_FRONTEND=noninteractive
# Debian's security updates replace exact versions, so packages are not pinned (see .hadolint.yaml).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      postgresql-15 postgresql-client-15 pgbackrest python3 python3-venv ca-certificates tzdata tini \
 && rm -rf /var/lib/apt/lists/*

# The container works on a host's data directory, socket and pgBackRest paths (bind-mounted): its 'postgres'
# must have the host's uid and gid, or it can neither read the cluster nor write pgBackRest's lock and log files.
# Empty: Debian's own numbers.
ARG PG_UID=""
ARG PG_GID=""
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN if [ -n "${PG_GID}" ] && [ "$(id -g postgres)" != "${PG_GID}" ]; then \
      old=$(id -g postgres) && groupmod -g "${PG_GID}" postgres \
      && find / -xdev -gid "${old}" -exec chgrp -h postgres {} + ; fi \
 && if [ -n "${PG_UID}" ] && [ "$(id -u postgres)" != "${PG_UID}" ]; then \
      old=$(id -u postgres) && usermod -u "${PG_UID}" postgres \
      && find / -xdev -uid "${old}" -exec chown -h postgres {} + ; fi

# opsd's dependencies first (a layer that changes with pyproject.toml only), then opsd itself without them.
WORKDIR /src
COPY pyproject.toml README.md ./
# Behind a TLS-inspecting proxy, pass the build machine's CA bundle as a build secret (never stored in the image):
#   docker build --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt ...
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && python3 -m venv /opt/opsd \
 && python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
      > /tmp/requirements.txt \
 && /opt/opsd/bin/pip install --no-cache-dir --disable-pip-version-check 'setuptools>=68' -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt
COPY opsd ./opsd
RUN /opt/opsd/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation /src \
 && rm -rf /src/build /src/*.egg-info \
 && ln -sf /opt/opsd/bin/opsd /usr/local/bin/opsd \
 && install -d -o postgres -g postgres -m 750 /var/lib/opsd /etc/opsd

ENV OPSD_CONFIG=/etc/opsd/opsd.toml \
    PATH=/usr/lib/postgresql/15/bin:$PATH
USER postgres
WORKDIR /var/lib/opsd
VOLUME ["/var/lib/opsd"]
EXPOSE 9187
# tini is PID 1: it reaps the orphans a crashed drill can leave (a postmaster whose parent died), which the
# container's opsd would otherwise see as zombies forever, and passes docker stop's SIGTERM on to opsd.
ENTRYPOINT ["/usr/bin/tini", "--", "opsd"]
CMD ["daemon"]
