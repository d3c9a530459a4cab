# Prometheus and the Pushgateway from Debian's packages, for machines that cannot pull prom/prometheus and
# prom/pushgateway (debian.yaml builds them on the stockcast images' base). Each runs as `nobody`, with the
# flags and paths the prom/ images use, so compose.yaml's mounts and volumes fit both.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS debian-monitoring
# Debian's security updates replace package versions: pinning them would break rebuilds. wget: the health checks.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus prometheus-pushgateway wget \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /prometheus && chown nobody:nogroup /prometheus

FROM debian-monitoring AS prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]

FROM debian-monitoring AS pushgateway
USER nobody
EXPOSE 9091
ENTRYPOINT ["prometheus-pushgateway"]
