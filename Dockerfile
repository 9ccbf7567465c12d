# kafka-parquet-archiver: the daemon in a slim Python image, running as an unprivileged user.
#
#   docker build -t kafka-parquet-archiver .
#   docker run --rm -v archive:/var/lib/kafka-parquet-archiver \
#     -v "$PWD/my.toml:/etc/kafka-parquet-archiver/archiver.toml:ro" kafka-parquet-archiver
#
# The default command reads /etc/kafka-parquet-archiver/archiver.toml, which holds
# config/docker.toml until a file is mounted over it; single keys can also be overridden with
# ARCHIVER_<SECTION>__<KEY> variables. docker-compose.yml runs this image; docs/operations.md
# describes the settings, the memory limit to give the container and the health check.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/kafka-parquet-archiver/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY consumer ./consumer
# Every dependency ships binary wheels (librdkafka comes inside confluent-kafka): no compiler needed.
RUN /opt/kafka-parquet-archiver/venv/bin/pip install .

FROM ${PYTHON_IMAGE}
ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" kafka-parquet-archiver \
    && useradd --system --uid "${APP_UID}" --gid kafka-parquet-archiver --no-create-home \
        --home-dir /var/lib/kafka-parquet-archiver --shell /usr/sbin/nologin kafka-parquet-archiver \
    && install -d -o kafka-parquet-archiver -g kafka-parquet-archiver -m 0750 /var/lib/kafka-parquet-archiver \
    && install -d -m 0755 /etc/kafka-parquet-archiver
COPY --from=build /opt/kafka-parquet-archiver/venv /opt/kafka-parquet-archiver/venv
COPY config/docker.toml /etc/kafka-parquet-archiver/archiver.toml
ENV PATH=/opt/kafka-parquet-archiver/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /var/lib/kafka-parquet-archiver
# A new named volume takes this folder's owner, so the daemon can write the archive inside it.
VOLUME ["/var/lib/kafka-parquet-archiver"]
EXPOSE 9108
USER ${APP_UID}:${APP_UID}
STOPSIGNAL SIGTERM
# Healthy while /healthz on the metrics port answers 200; it answers 503 when the poll loop has
# stalled for metrics.health_stall_s. The port and host come from the same file the command reads,
# so the check follows the mounted config (metrics.port = 0 turns the endpoint off: unhealthy).
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; from pathlib import Path; from consumer.config import load_settings; m = load_settings(Path(sys.argv[1])).metrics; m.port or sys.exit('metrics.port = 0: /healthz is off'); h = {'0.0.0.0': '127.0.0.1', '::': '::1'}.get(m.host, m.host); h = f'[{h}]' if ':' in h else h; urllib.request.urlopen(f'http://{h}:{m.port}/healthz', timeout=4)", "/etc/kafka-parquet-archiver/archiver.toml"]
ENTRYPOINT ["kafka-parquet-archiver"]
CMD ["run", "--config", "/etc/kafka-parquet-archiver/archiver.toml"]
