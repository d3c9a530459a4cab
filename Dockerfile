# stockcast's TorchServe image, from a fresh clone with no step before it:
#   docker build -t stockcast .
#   docker run -d --name stockcast -p 8080:8080 stockcast
# The `train` stage installs the training side and trains the default configuration on the committed VALE3
# sample (downloads off, a fixed end date: the same model on every build) and archives it; the final stage
# carries only what serving needs: Java 17, torch, TorchServe and that archive. `docker build --target train`
# is the image of compose.yaml's `admin` (retrain, status, rollback) and MLflow server.
# Only the inference API listens beyond the container; management and metrics stay on its loopback unless
# TS_MANAGEMENT_ADDRESS / TS_METRICS_ADDRESS say otherwise (compose.yaml, on the stack's own network).
# Runs as the non-root user `app` (uid 10001); token authorization stays on. docs/containers.md.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS python
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python3 -m venv /opt/venv && useradd --create-home --uid 10001 app
WORKDIR /home/app/stockcast
COPY pyproject.toml README.md ./

FROM python AS train
# torch first, the CPU wheel: the plain PyPI one pulls gigabytes of CUDA libraries.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY src/ src/
RUN pip install torch==2.13.0 --extra-index-url "$TORCH_INDEX_URL" && pip install -e '.[train]'
COPY configs/ configs/
COPY scripts/ scripts/
COPY train.py evaluate.py config.properties model-config.yaml log4j2.xml ./
# The portfolios the daily job's monitor scores (make monitor reads the same file)
COPY monitoring/portfolios.yaml monitoring/
# The served model: the default configuration on the packaged sample, which ends on 2025-11-07. data/ is the
# download cache (compose.yaml's `prices` volume), owned by `app` so the volume is writable.
RUN GIT_PYTHON_REFRESH=quiet python train.py end=2025-11-07 data.downloader.online=false \
        +trainer.enable_progress_bar=false "~callbacks.progress_bar" \
    && python scripts/archive.py \
    && mkdir -p data serve /home/app/mlflow/db /home/app/mlflow/artifacts && chown -R app:app . /home/app/mlflow
USER 10001:10001

FROM python AS serve
# Debian's security updates replace package versions: pinning them would break rebuilds.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless tini \
    && rm -rf /var/lib/apt/lists/*
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY src/ src/
RUN pip install torch==2.13.0 --extra-index-url "$TORCH_INDEX_URL" && pip install .
# The committed server config with the inference API on all of the container's interfaces, settings from
# TS_* variables (enable_envvars_config); management, metrics and gRPC stay on loopback.
COPY config.properties log4j2.xml ./
RUN sed -e 's#^inference_address=http://127.0.0.1:#inference_address=http://0.0.0.0:#' config.properties \
        > config.docker.properties \
    && printf '\n# The container: TS_MANAGEMENT_ADDRESS etc. override the lines above.\nenable_envvars_config=true\n' \
        >> config.docker.properties \
    && mkdir serve model_store data && chown app:app serve model_store data
# The price store by-name requests are forecast from (model-config.yaml's handler.price_store): the compose
# stack mounts its `prices` volume here read-only; empty otherwise (every request then sends its bars).
ENV STOCKCAST_PRICE_STORE=/home/app/stockcast/data
COPY --from=train --chown=app:app /home/app/stockcast/model_store/lstm.mar model_store/

USER 10001:10001
# TorchServe writes key_file.json and logs/ where it starts: serve/. Mount a volume on model_store/ to
# serve archives of your own (its lstm.mar is loaded at start).
WORKDIR /home/app/stockcast/serve
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-m", "stockcast.serving.healthcheck", "--config", "../config.docker.properties", \
         "--key-file", "key_file.json"]
# tini as PID 1 passes SIGTERM to the whole process group: the launcher, Java's frontend (which stops its
# workers) and the workers, so `docker stop` ends it in seconds, not after the 10 s SIGKILL timeout.
ENTRYPOINT ["tini", "-g", "--"]
CMD ["torchserve", "--foreground", "--ts-config", "../config.docker.properties", "--model-store", \
     "../model_store", "--log-config", "../log4j2.xml", "--ncs"]
