# syntax=docker/dockerfile:1
# Multi-stage: dependencies are resolved from uv.lock in a builder, the runtime image has no
# build tools and runs as an unprivileged user.
FROM python:3.11-slim-bookworm AS builder
ENV UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY archive ./archive
COPY api ./api
COPY config ./config
COPY proactive ./proactive
COPY retention ./retention
RUN uv sync --frozen --no-dev

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --home-dir /app parley && mkdir -p /data && chown parley /data
WORKDIR /app
COPY --from=builder --chown=parley:parley /app /app
ENV PATH=/app/.venv/bin:$PATH \
    PARLEY_DATA_DIR=/data \
    PARLEY_HOST=0.0.0.0 \
    PARLEY_PORT=8000 \
    PARLEY_LOG_FORMAT=json
USER parley
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
CMD ["parley", "serve"]
