# syntax=docker/dockerfile:1
#
# The monitor daemon. Build from the repository root:
#   docker build -t monitor:0.1.0 .
#   docker run --rm -e MONITOR_KAFKA_BOOTSTRAP_SERVERS=kafka:9092 -p 9108:9108 monitor:0.1.0
# The same image runs the other commands, e.g. `feed --bootstrap-servers kafka:9092`
# (deploy/docker-compose.yml runs the demo producer that way).

# ---- build: a wheel of the project and of every dependency ------------------------------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor/ ./monitor/
RUN pip wheel --wheel-dir /wheels .

# ---- runtime: the wheels installed, nothing else ------------------------------------------
FROM python:3.11-slim

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# Installed from the build stage's wheels without copying them into a layer.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels monitor

RUN groupadd --system --gid 10001 monitor \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin monitor

WORKDIR /app
# /app/state: the checkpoint store (state.dir, default ./state under this WORKDIR). Mount a
# volume there to keep the streams' state across container restarts (docker-compose.yml: a
# named volume; Kubernetes: deploy/kubernetes/pvc.yaml, shared by every replica).
RUN mkdir -p /app/state && chown -R 10001:10001 /app

COPY configs/ /etc/monitor/

USER 10001:10001

EXPOSE 9108

# slim has no curl: Python fetches the metrics endpoint (non-2xx or no answer: exit 1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/metrics', timeout=4)"]

ENTRYPOINT ["monitor"]
CMD ["run", "--config", "/etc/monitor/default.yaml"]
