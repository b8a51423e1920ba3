# opsd image for drill hosts and CI elsewhere (the production image is completed in issue 7).
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 postgresql-client-15 pgbackrest python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN python3 -m venv /opt/opsd && /opt/opsd/bin/pip install --no-cache-dir /src && ln -s /opt/opsd/bin/opsd /usr/local/bin/opsd
USER postgres
ENTRYPOINT ["opsd"]
CMD ["daemon"]
