# stockcast's TorchServe image: serves model_store/lstm.mar (run `make archive` first) on 0.0.0.0.
#   docker build -t stockcast-serve .
#   docker run -p 8080:8080 -p 8081:8081 -p 8082:8082 stockcast-serve
#   docker exec <container> cat serve/key_file.json    # the keys: token authorization stays on
# Python 3.11 and Java 17 (TorchServe 0.12.0's frontend); runs as the non-root user `app` (uid 10001).
FROM python:3.11-slim-bookworm

# Debian's security updates replace package versions: pinning them would break rebuilds.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 app
WORKDIR /home/app/stockcast

# torch first, from the CPU wheel index (a looser spec pulls CUDA wheels), then the project with TorchServe.
COPY pyproject.toml README.md ./
COPY src/ src/
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install .

# The committed server config, listening on all interfaces inside the container (gRPC stays on loopback).
COPY config.properties log4j2.xml ./
COPY model_store/ model_store/
RUN sed -e 's#^\(inference\|management\|metrics\)_address=http://127.0.0.1:#\1_address=http://0.0.0.0:#' \
        config.properties > config.docker.properties \
    && mkdir serve && chown app:app serve

USER 10001:10001
# TorchServe writes key_file.json and logs/ where it starts: serve/.
WORKDIR /home/app/stockcast/serve
EXPOSE 8080 8081 8082
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-m", "stockcast.serving.healthcheck", "--config", "../config.docker.properties", \
         "--key-file", "key_file.json"]
CMD ["torchserve", "--foreground", "--ts-config", "../config.docker.properties", "--model-store", \
     "../model_store", "--log-config", "../log4j2.xml", "--ncs"]
