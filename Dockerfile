# opsd for drill hosts, and for CI where a Docker engine exists: PostgreSQL 15 server and client binaries,
# pgBackRest and opsd in a virtualenv, running as the non-root 'postgres' user.
#   docker build -t opsd .
#   docker run --rm -v /etc/opsd:/etc/opsd:ro -v /etc/pgbackrest:/etc/pgbackrest:ro -v opsd-state:/var/lib/opsd \
#     opsd drill run --target latest
# Release builds pin the base image by digest (this build machine cannot reach a registry to read it):
#   docker build --build-arg BASE=debian:12-slim@sha256:<digest of 'docker buildx imagetools inspect debian:12-slim'> .
ARG BASE=debian:12-slim
FROM ${BASE}

ARG DEBIAN_FRONTEND=noninteractive
# Debian's security updates replace exact versions, so packages are not pinned (see .hadolint.yaml).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      postgresql-15 postgresql-client-15 pgbackrest python3 python3-venv ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY opsd ./opsd
RUN python3 -m venv /opt/opsd \
 && /opt/opsd/bin/pip install --no-cache-dir /src \
 && ln -s /opt/opsd/bin/opsd /usr/local/bin/opsd \
 && install -d -o postgres -g postgres -m 750 /var/lib/opsd /etc/opsd

ENV OPSD_CONFIG=/etc/opsd/opsd.toml \
    PATH=/usr/lib/postgresql/15/bin:$PATH
USER postgres
WORKDIR /var/lib/opsd
VOLUME ["/var/lib/opsd"]
EXPOSE 9187
# tini is PID 1: it reaps the orphans a crashed drill can leave (a postmaster whose parent died), which the
# container's opsd would otherwise see as zombies forever.
ENTRYPOINT ["/usr/bin/tini", "--", "opsd"]
CMD ["daemon"]
